"""The cold pool's gRPC front with TF Serving's stubs: on-demand loads through the same lease
path as REST (single flight, bounded queue, shedding as UNAVAILABLE), versions, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from base.procs import ServerProcess, free_port, tierserve_command
from tierserve import toy_models

MODELS = {"g-one": {1: 2.0}, "g-two": {1: 3.0, 2: 5.0}, "g-crowd": {1: 7.0}}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory, log_dir: Path,
         toy_template: Path) -> Iterator[tuple[str, str]]:
    """(REST URL, gRPC address) of a pool whose queue for one model holds 2 requests."""
    store = tmp_path_factory.mktemp("grpc-cold-store")
    for name, versions in MODELS.items():
        toy_models.write_model(store, name, versions)
    labels = tmp_path_factory.mktemp("grpc-cold-labels") / "labels.yaml"
    labels.write_text("labels:\n  g-two: {stable: 1, canary: 2}\n")
    port, grpc_port = free_port(), free_port()
    proc = ServerProcess(
        tierserve_command("pool", "--store", str(store),
                          "--cache-dir", str(tmp_path_factory.mktemp("grpc-cold-cache")),
                          "--port", str(port), "--grpc-port", str(grpc_port),
                          "--model-servers", "1", "--model-server-nice", "0",
                          "--max-queued-per-model", "2", "--labels-file", str(labels)),
        ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_dir / f"pool-{port}.log")
    proc.wait_ready(timeout=120)
    try:
        yield f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def channel(pool: tuple[str, str]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(pool[1]) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def request(name: str, xs: list[float], version: int | None = None) -> Any:
    import tensorflow as tf

    out = predict_pb2.PredictRequest()
    out.model_spec.name = name
    if version is not None:
        out.model_spec.version.value = version
    out.inputs["x"].CopyFrom(tf.make_tensor_proto(xs, dtype=tf.float32))
    return out


def call(stub: Any, req: Any) -> tuple[Any, dict[str, str]]:
    answer, rpc = stub.Predict.with_call(req, timeout=TIMEOUT)
    return answer, dict(rpc.trailing_metadata())


def ys(answer: Any) -> list[float]:
    return [round(v, 4) for v in answer.outputs["y"].float_val]


def test_a_miss_loads_then_hits(stub: Any, pool: tuple[str, str]) -> None:
    answer, trailers = call(stub, request("g-one", [1.0, 3.0]))
    assert ys(answer) == [2.0, 6.0]
    assert (answer.model_spec.name, answer.model_spec.version.value) == ("g-one", 1)
    assert trailers["x-tierserve-cache"] == "miss"
    assert trailers["x-tierserve-model-version"] == "1"
    answer, trailers = call(stub, request("g-one", [2.0]))
    assert ys(answer) == [4.0] and trailers["x-tierserve-cache"] == "hit"
    listing = httpx.get(f"{pool[0]}/admin/models", timeout=30).json()
    [entry] = [m for m in listing["models"] if m["model"] == "g-one"]
    assert entry["loaded"] and entry["loads"] == 1


def test_versions_status_and_metadata(stub: Any, channel: grpc.Channel) -> None:
    answer, _ = call(stub, request("g-two", [1.0]))
    assert ys(answer) == [5.0] and answer.model_spec.version.value == 2  # latest
    answer, _ = call(stub, request("g-two", [1.0], version=1))
    assert ys(answer) == [3.0] and answer.model_spec.version.value == 1
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, request("g-two", [1.0], version=9))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "g-two"
    status.model_spec.version.value = 1
    found = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status, TIMEOUT)
    assert [(s.version, s.state) for s in found.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]

    meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    meta.model_spec.name = "g-two"
    answer = stub.GetModelMetadata(meta, TIMEOUT)
    assert (answer.model_spec.name, answer.model_spec.version.value) == ("g-two", 2)


def test_errors(stub: Any, channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, request("g-absent", [1.0]))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    labelled = request("g-one", [1.0])
    labelled.model_spec.version_label = "stable"  # g-one has no labels
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, labelled)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label: stable" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as caught:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(), TIMEOUT)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_one_load_for_a_crowd_and_the_excess_shed(stub: Any, pool: tuple[str, str]) -> None:
    futures = [stub.Predict.future(request("g-crowd", [1.0]), timeout=TIMEOUT)
               for _ in range(6)]
    served, shed = [], []
    for future in futures:
        try:
            served.append(ys(future.result()))
        except grpc.RpcError as exc:
            shed.append((exc.code(), exc.details() or ""))
    # Two wait for the one load (the queue's bound), the others are told to come back.
    assert served and all(y == [7.0] for y in served)
    assert len(served) >= 2
    assert shed and all(code is grpc.StatusCode.UNAVAILABLE and "retry later" in text
                        for code, text in shed), shed
    listing = httpx.get(f"{pool[0]}/admin/models", timeout=30).json()
    [entry] = [m for m in listing["models"] if m["model"] == "g-crowd"]
    assert entry["loads"] == 1
    assert listing["totals"]["shed"] == len(shed)


def test_labels_from_the_labels_file(stub: Any) -> None:
    for label, version, y in (("stable", 1, 3.0), ("canary", 2, 5.0)):
        labelled = request("g-two", [1.0])
        labelled.model_spec.version_label = label
        answer, trailers = call(stub, labelled)
        assert ys(answer) == [y]
        assert (answer.model_spec.name, answer.model_spec.version.value) == ("g-two", version)
        assert trailers["x-tierserve-model-version"] == str(version)
