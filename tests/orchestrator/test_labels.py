"""Hot servers of labelled models: a --model_config_file with version_labels and a specific
version policy (pure parts, the container spec), and a real process-runtime server that
answers by label."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from orchestrator.container_spec import CONFIG_INSIDE, ModelMount, container_spec
from orchestrator.process_runtime import ProcessRuntime
from orchestrator.runtime import InstanceSpec
from policies.schema import ContainerSettings, Policy
from pools.model_server import config as configs
from pools.model_server.command import labelled_versions, model_config_text
from testkit import stores as testing
from tierserve import toy_models

from .realworld import wait_for


def test_labelled_versions_keep_every_label_the_store_holds_and_the_latest() -> None:
    assert labelled_versions({"stable": 1, "canary": 2}, [1, 2, 3]) == (
        [1, 2, 3], {"canary": 2, "stable": 1})
    assert labelled_versions({"stable": 3, "ghost": 9}, [1, 3]) == ([3], {"stable": 3})
    assert labelled_versions({"ghost": 9}, []) == ([], {})


def test_the_config_text_is_a_model_server_config() -> None:
    text = model_config_text("m", "s3://bucket/models/m", [1, 3], {"stable": 1, "canary": 3})
    (model,) = configs.validate(configs.parse_text(text))
    assert (model.name, model.base_path) == ("m", "s3://bucket/models/m")
    assert list(model.model_version_policy.specific.versions) == [1, 3]
    assert dict(model.version_labels) == {"stable": 1, "canary": 3}


def test_a_labelled_container_mounts_its_config_and_serves_from_it(tmp_path: Path) -> None:
    spec = InstanceSpec("m", "s3://bucket/models", ContainerSettings(args=["--x=1"]), "h", 1.0,
                        labels={"stable": 1})
    run = container_spec(spec, ModelMount("s3://bucket/models/m", {}), "sc",
                         config_file=tmp_path / "m.config")
    assert run["volumes"][str(tmp_path / "m.config")] == {"bind": CONFIG_INSIDE, "mode": "ro"}
    assert run["command"][-3:] == [f"--model_config_file={CONFIG_INSIDE}",
                                   "--allow_version_labels_for_unavailable_models=true",
                                   "--x=1"]
    assert "--model_name=m" in run["command"]  # kept: the runtimes recognize servers by it


def test_only_a_labelled_models_hash_follows_its_labels() -> None:
    base = {"store": "/s", "hot": {"max_models": 2, "promote": {"min_rate": 5},
                                   "demote": {"max_rate": 1}}}
    plain = Policy.model_validate(base)
    labelled = Policy.model_validate({**base, "labels": {"m": {"stable": 1}}})
    moved = Policy.model_validate({**base, "labels": {"m": {"stable": 2}}})
    assert labelled.container_hash("other") == plain.container_hash() == plain.container_hash("m")
    assert len({plain.container_hash(), labelled.container_hash("m"),
                moved.container_hash("m")}) == 3


@pytest.fixture
def labelled_store(tmp_path: Path) -> Path:
    return testing.make_local_store(tmp_path / "store", {"lab": {1: 1.0, 2: 2.0, 3: 3.0}})


def test_a_hot_process_serves_its_labels_with_every_labelled_version_loaded(
        tmp_path: Path, labelled_store: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "processes", "lab")
    spec = InstanceSpec("lab", str(labelled_store), ContainerSettings(), "h", 1.0,
                        labels={"stable": 1, "canary": 2, "ghost": 9})
    inst = runtime.start(spec)
    try:
        assert inst.endpoint is not None
        with httpx.Client(base_url=inst.endpoint, timeout=30) as http:
            def versions() -> list[str] | None:
                try:
                    states = http.get("/v1/models/lab").json()["model_version_status"]
                except (httpx.HTTPError, KeyError, ValueError):
                    return None
                ready = sorted(s["version"] for s in states if s["state"] == "AVAILABLE")
                return ready if len(ready) == 3 else None

            assert wait_for("three versions AVAILABLE", versions, timeout=180) == ["1", "2", "3"]
            xs = [1.0, 4.0]
            for label, a in (("stable", 1.0), ("canary", 2.0)):
                r = http.post(f"/v1/models/lab/labels/{label}:predict", json={"instances": xs})
                assert r.status_code == 200, r.text
                assert r.json() == {"predictions": toy_models.expected(a, 0.0, xs)}
            latest = http.post("/v1/models/lab:predict", json={"instances": xs})
            assert latest.json() == {"predictions": toy_models.expected(3.0, 0.0, xs)}
            ghost = http.post("/v1/models/lab/labels/ghost:predict", json={"instances": xs})
            assert ghost.status_code == 400
            assert ghost.json() == {"error": "Unrecognized servable version label: ghost"}
    finally:
        runtime.stop(inst, timeout=5)
