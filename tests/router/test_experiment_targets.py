"""The experiments API refuses arms whose model, version or label does not exist (422 naming
the field), as the cold pool tells; what it cannot tell is accepted and said (`unchecked`).
The pure rule, then the router against a fake cold pool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from base.procs import free_port
from db import queries
from db.queries import Engine, make_engine
from policies.experiments import ExperimentSpec, Known, check_targets
from tests.router.conftest import start_fake_backend
from tests.router.test_app import running

LAB = Known(in_store=True, versions=frozenset({1, 2}), labels={"stable": 1})


def spec(*variants: dict[str, Any], shadow: dict[str, Any] | None = None) -> ExperimentSpec:
    body: dict[str, Any] = {"name": "pub", "variants": list(variants)}
    if shadow is not None:
        body["shadow"] = shadow
    return ExperimentSpec.model_validate(body)


def test_check_targets_names_each_bad_field() -> None:
    s = spec({"model": "lab", "label": "stable", "weight": 50},
             {"model": "lab", "label": "beta", "weight": 20},
             {"model": "lab", "version": 9, "weight": 20},
             {"model": "gone", "weight": 10},
             shadow={"model": "lab", "version": 2, "percent": 5})
    errors, unchecked = check_targets(s, {"lab": LAB, "gone": Known(in_store=False)})
    assert [loc for loc, _ in errors] == [("variants", 1, "label"), ("variants", 2, "version"),
                                          ("variants", 3, "model")]
    assert "its labels: stable" in errors[0][1] and "its versions: 1, 2" in errors[1][1]
    assert unchecked == []
    errors, unchecked = check_targets(
        spec({"model": "x", "version": 3, "weight": 50},
             {"model": "x", "label": "l", "weight": 50}), {})
    assert errors == [] and unchecked == ["variants.0.version", "variants.1.label"]


@pytest.fixture(scope="module")
def cold(log_dir: Path) -> Iterator[str]:
    proc, url = start_fake_backend(log_dir, 3.0, "cold")
    yield url
    proc.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'router.db'}")


def locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in json.loads(response.json()["error"])]


async def test_the_api_refuses_what_the_pool_says_is_missing(cold: str, engine: Engine) -> None:
    async with running(engine, cold_url=cold) as (client, _):
        def body(*variants: dict[str, Any]) -> dict[str, Any]:
            return {"name": "pub", "variants": list(variants)}

        r = await client.post("/admin/experiments", json=body(
            {"model": "lab", "label": "stable", "weight": 50},
            {"model": "lab", "label": "beta", "weight": 50}))
        assert locs(r) == [["body", "variants", 1, "label"]]
        assert "no label 'beta'" in r.json()["error"]
        r = await client.post("/admin/experiments", json=body(
            {"model": "lab", "version": 9, "weight": 100}))
        assert locs(r) == [["body", "variants", 0, "version"]]
        r = await client.post("/admin/experiments", json=body(
            {"model": "gone-1", "weight": 100}))
        assert locs(r) == [["body", "variants", 0, "model"]]
        assert queries.list_experiments(engine) == []  # nothing stored
        good = body({"model": "lab", "label": "stable", "weight": 50},
                    {"model": "lab", "version": 2, "weight": 50})
        r = await client.post("/admin/experiments", json=good)
        assert r.status_code == 201 and "unchecked" not in r.json()
        r = await client.put("/admin/experiments/pub", json={"variants": [
            {"model": "lab", "label": "canary", "weight": 100}]})
        assert locs(r) == [["variants", 0, "label"]]
        # The pool cannot tell about "other": accepted, and said.
        r = await client.put("/admin/experiments/pub", json={"variants": [
            {"model": "other", "version": 3, "weight": 100}]})
        assert r.status_code == 200 and r.json()["unchecked"] == ["variants.0.version"]
        events = queries.list_events(engine, 10, "pub")
        assert "not checked" in events[0].outcome


async def test_an_unreachable_pool_leaves_the_arms_unchecked(engine: Engine) -> None:
    async with running(engine, cold_url=f"http://127.0.0.1:{free_port()}") as (client, _):
        r = await client.post("/admin/experiments", json={"name": "pub", "variants": [
            {"model": "lab", "label": "beta", "weight": 100}]})
        assert r.status_code == 201 and r.json()["unchecked"] == ["variants.0.label"]
