"""Pure parts: experiment validation, config, metric labels (paths: tests/test_tfs_rest.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.config import RouterConfig
from router.experiments import ExperimentSpec
from router.metrics import OTHER, RouterMetrics, top_models


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


def test_experiment_arms() -> None:
    spec = ExperimentSpec.model_validate({"name": "e", "variants": [
        {"model": "m", "version": 1, "weight": 50}, {"model": "m", "version": 2, "weight": 50}],
        "shadow": {"model": "m", "label": "next", "percent": 5}})
    assert [v.arm for v in spec.variants] == ["m.v1", "m.v2"]
    assert spec.shadow is not None and spec.shadow.arm == "m.next"
    assert ExperimentSpec.model_validate(spec.stored()) == spec


def test_config_env_then_overrides() -> None:
    env = {"TIERSERVE_ADMIN_TOKEN": "t", "TIERSERVE_PORT": "9000",
           "TIERSERVE_COLD_URL": "http://127.0.0.1:1/"}
    config = RouterConfig.load({"port": 9100, "host": None}, environ=env)
    assert (config.admin_token, config.port, config.host, config.cold_url) == (
        "t", 9100, "127.0.0.1", "http://127.0.0.1:1")
    assert config.max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(ValidationError):
        RouterConfig.load({"cold_url": "ftp://x"}, environ={})


def test_metric_model_label_is_bounded() -> None:
    metrics = RouterMetrics(top_n=3)
    for i in range(50):
        for _ in range(50 - i):
            metrics.observe(f"m{i}", "cold", 200, 0.01)
    metrics.refresh_labels()
    assert top_models({"a": 3, "b": 5, "c": 1}, 2) == {"a", "b"}
    text = metrics.render().decode()
    labelled = {line.split('model="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("tierserve_router_requests_total{")}
    assert labelled == {"m0", "m1", "m2", OTHER}
    # Traffic moves: the new busiest model takes a label, the quiet one loses its series.
    for _ in range(10_000):
        metrics.observe("m40", "hot", 200, 0.01)
    metrics.refresh_labels()
    metrics.observe("m40", "hot", 200, 0.01)
    text = metrics.render().decode()
    labelled = {line.split('model="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("tierserve_router_requests_total{")}
    assert "m40" in labelled and len(labelled - {OTHER}) <= 3
