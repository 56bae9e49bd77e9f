"""The Docker runtime alone, against the real engine: the official-image path (sync from S3 to a
local volume, then `tensorflow_model_server` flags with a local base path), and adoption by
label across runtime objects."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from base.errors import TierserveError
from orchestrator.docker_runtime import DockerRuntime
from orchestrator.runtime import InstanceSpec
from testkit import docker_image as testimage
from testkit import stores as testing
from tierserve.toy_models import expected

from .conftest import MODELS
from .realworld import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime(test_image: str, tmp_path: Path) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(tmp_path / "state", scope=f"u{os.getpid()}")
    try:
        yield rt
    finally:
        for inst in rt.list_instances():
            rt.stop(inst, timeout=2)
        rt.close()


def available(endpoint: str | None, model: str) -> bool:
    try:
        return "AVAILABLE" in httpx.get(f"{endpoint}/v1/models/{model}", timeout=2).text
    except httpx.HTTPError:
        return False


def test_official_image_kind_syncs_from_s3_into_a_local_volume(
        runtime: DockerRuntime, moto_s3: str, s3_bucket: str, toy_store: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    testing.upload_tree(testing.s3_client(moto_s3), s3_bucket, "models/gamma",
                        toy_store / "gamma")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    # The test image stands in for tensorflow/serving: our server under that kind's contract
    # (TF Serving's flags, a local --model_base_path under /models, 0.0.0.0 inside).
    settings = testimage.container_settings(kind="tensorflow-serving", args=["--host=0.0.0.0"])
    spec = InstanceSpec("gamma", f"s3://{s3_bucket}/models", settings, "h", time.time())
    # The download runs in the background: prepare answers at once until it is done.
    assert runtime.prepare(spec) is False
    wait_for("gamma synced", lambda: runtime.prepare(spec), timeout=120)
    synced = runtime.state_dir / "models" / "gamma" / "1" / "saved_model.pb"
    assert synced.is_file()  # downloaded on the host before the container starts
    inst = runtime.start(spec)
    wait_for("gamma AVAILABLE", lambda: available(inst.endpoint, "gamma"), timeout=400)
    resp = httpx.post(f"{inst.endpoint}/v1/models/gamma:predict", json={"instances": [2.0]})
    assert resp.json()["predictions"] == expected(MODELS["gamma"], 0.0, [2.0])
    # It started with the mounted monitoring config (a server that cannot read it refuses
    # to start), so Prometheus scrapes it where TF Serving serves its metrics.
    metrics = httpx.get(f"{inst.endpoint}/monitoring/prometheus/metrics", timeout=10)
    assert metrics.status_code == 200 and ":tensorflow:serving:" in metrics.text


def test_failed_sync_is_reported_by_prepare(runtime: DockerRuntime, toy_store: Path) -> None:
    settings = testimage.container_settings(kind="tensorflow-serving")
    spec = InstanceSpec("no-such-model", str(toy_store), settings, "h", time.time())
    deadline = time.monotonic() + 60
    with pytest.raises(TierserveError, match="no-such-model"):
        while time.monotonic() < deadline:
            assert runtime.prepare(spec) is False  # never "ready" for a missing model
            time.sleep(0.1)
    assert runtime.prepare(spec) is False  # a new attempt starts (after the loop's backoff)


def test_second_runtime_object_adopts_by_label_and_name_prevents_duplicates(
        runtime: DockerRuntime, toy_store: Path) -> None:
    spec = InstanceSpec("beta", str(toy_store), testimage.container_settings(), "h1", 123.5)
    first = runtime.start(spec)
    other = DockerRuntime(runtime.state_dir, runtime.scope)
    try:
        (seen,) = other.list_instances()
        assert (seen.id, seen.model, seen.hot_since, seen.policy_hash) == \
            (first.id, "beta", 123.5, "h1")
        with pytest.raises(TierserveError, match=r"(?i)conflict|in use"):
            other.start(spec)  # the engine refuses a second container of the same name
        assert len(other.list_instances()) == 1
        # Another scope sees none of it.
        stranger = DockerRuntime(runtime.state_dir, "someone-else")
        assert stranger.list_instances() == []
        stranger.close()
    finally:
        other.close()


def test_container_gets_its_cpu_weight_and_limit_and_sizes_tf_to_the_limit(
        runtime: DockerRuntime, toy_store: Path) -> None:
    # Thread flags at 0 (auto, last wins): the server must find its 1-CPU quota in its cgroup
    # on this 2-CPU machine, as the official image and any server without flags would.
    settings = testimage.container_settings(
        cpus=1.0, cpu_shares=3072, args=["--tensorflow_intra_op_parallelism=0",
                                         "--tensorflow_inter_op_parallelism=0"])
    inst = runtime.start(InstanceSpec("alpha", str(toy_store), settings, "h", time.time()))
    host = runtime.client.containers.get(inst.id).attrs["HostConfig"]
    assert (host["CpuShares"], host["NanoCpus"]) == (3072, 1_000_000_000)
    line = wait_for("thread pools logged", lambda: next(
        (x for x in runtime.logs(inst, tail=200).splitlines()
         if "TensorFlow thread pools" in x), None), timeout=400)
    assert "intra_op=1 inter_op=2 (1 CPUs available)" in line


def test_a_labelled_model_gets_its_labelled_versions_and_a_mounted_config(
        runtime: DockerRuntime, moto_s3: str, s3_bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = testing.make_local_store(tmp_path / "store", {"lab": {1: 1.0, 2: 2.0, 3: 3.0}})
    testing.upload_tree(testing.s3_client(moto_s3), s3_bucket, "models/lab", store / "lab")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    settings = testimage.container_settings(kind="tensorflow-serving", args=["--host=0.0.0.0"])
    spec = InstanceSpec("lab", f"s3://{s3_bucket}/models", settings, "h", time.time(),
                        labels={"stable": 1})
    wait_for("lab synced", lambda: runtime.prepare(spec), timeout=120)
    synced = runtime.state_dir / "models" / "lab"
    assert sorted(p.name for p in synced.iterdir()) == ["1", "3"]  # labelled + latest
    inst = runtime.start(spec)
    wait_for("lab AVAILABLE", lambda: available(inst.endpoint, "lab"), timeout=400)
    xs = [2.0]

    def by_label() -> httpx.Response | None:
        r = httpx.post(f"{inst.endpoint}/v1/models/lab/labels/stable:predict",
                       json={"instances": xs}, timeout=10)
        return r if r.status_code == 200 else None

    assert wait_for("label served", by_label, timeout=120).json()["predictions"] == \
        expected(1.0, 0.0, xs)
    latest = httpx.post(f"{inst.endpoint}/v1/models/lab:predict", json={"instances": xs})
    assert latest.json()["predictions"] == expected(3.0, 0.0, xs)
