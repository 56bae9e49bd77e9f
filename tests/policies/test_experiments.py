"""A/B experiment specs: the shape the policy YAML, the admin API and the db share.

Errors name the field at fault; a variant's name (headers, counts, stats) is derived
from its model and version or label unless given.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.experiments import ExperimentSpec, ExperimentUpdate


def _locs(spec: dict[str, object]) -> list[tuple[object, ...]]:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(spec)
    return [e["loc"] for e in info.value.errors()]


def test_experiment_errors_name_the_field() -> None:
    ok = [{"model": "a", "weight": 90}, {"model": "b", "weight": 10}]
    assert _locs({"name": "e", "variants": [{"model": "a", "weight": 90}]}) == [("variants",)]
    assert _locs({"name": "e", "variants": [ok[0], {"model": "b", "weight": 101}]}) == [
        ("variants", 1, "weight")]
    assert _locs({"name": "e", "variants": [ok[0], {"model": "../x", "weight": 10}]}) == [
        ("variants", 1, "model")]
    assert _locs({"name": "bad name", "variants": ok}) == [("name",)]
    assert _locs({"name": "e", "variants": ok, "shadow": {"model": "s", "percent": 0}}) == [
        ("shadow", "percent")]
    assert _locs({"name": "e", "variants": [ok[0], {"model": "a", "weight": 10}]}) == [
        ("variants",)]
    assert _locs({"name": "e", "variants": ok, "colour": 1}) == [("colour",)]
    assert _locs({"name": "e", "variants": [{"model": "a", "weight": 100, "version": 1,
                                             "label": "x"}]}) == [("variants", 0)]


def test_experiment_variant_names() -> None:
    spec = ExperimentSpec.model_validate({"name": "e", "variants": [
        {"model": "m", "version": 1, "weight": 50}, {"model": "m", "version": 2, "weight": 50}],
        "shadow": {"model": "m", "label": "next", "percent": 5}})
    assert [v.variant_name for v in spec.variants] == ["m.v1", "m.v2"]
    assert spec.shadow is not None and spec.shadow.variant_name == "m.next"
    assert ExperimentSpec.model_validate(spec.stored()) == spec


def test_a_given_name_wins_and_must_not_clash() -> None:
    spec = ExperimentSpec.model_validate({"name": "e", "variants": [
        {"model": "m", "weight": 90}, {"model": "m", "version": 2, "weight": 10,
                                       "name": "candidate"}]})
    assert [v.variant_name for v in spec.variants] == ["m", "candidate"]
    with pytest.raises(ValidationError, match="variant names must be unique"):
        ExperimentSpec.model_validate({"name": "e", "variants": [
            {"model": "a", "weight": 50, "name": "x"}, {"model": "b", "weight": 50,
                                                        "name": "x"}]})
    with pytest.raises(ValidationError, match=r"clashes with a variant.s; set shadow\.name"):
        ExperimentSpec.model_validate({"name": "e", "variants": [{"model": "a", "weight": 100}],
                                       "shadow": {"model": "a", "percent": 10}})


def test_update_is_the_spec_without_its_name() -> None:
    body = {"variants": [{"model": "a", "weight": 100}], "sticky_header": "X-Session"}
    update = ExperimentUpdate.model_validate(body)
    spec = ExperimentSpec.model_validate({"name": "e", **update.model_dump(exclude_none=True)})
    assert spec.stored() == {"name": "e", **body}
    with pytest.raises(ValidationError):
        ExperimentUpdate.model_validate({**body, "name": "e"})


@given(st.lists(st.integers(0, 100), min_size=1, max_size=8))
def test_weights_must_sum_to_100(weights: list[int]) -> None:
    variants = [{"model": f"m{i}", "weight": w} for i, w in enumerate(weights)]
    if sum(weights) == 100:
        spec = ExperimentSpec.model_validate({"name": "e", "variants": variants})
        # What the db stores reads back as the same spec (the wire format is stable).
        assert ExperimentSpec.model_validate(spec.stored()) == spec
        assert spec.stored()["variants"] == variants
    else:
        with pytest.raises(ValidationError, match="weights must sum to 100"):
            ExperimentSpec.model_validate({"name": "e", "variants": variants})
