"""The router's gRPC front with TF Serving's own client stubs, against a real router, a real
cold pool (`tierserve pool`, loading on demand) and a real hot model server."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from base.procs import ServerProcess, free_port, tierserve_command
from tests.router.conftest import REPO, RouterProcess, start_router
from tierserve import toy_models

HPT = "saved_model_half_plus_two_cpu"  # version 123: y = x/2 + 2, y2 = x/2 + 3
HPT2 = "saved_model_half_plus_two_2_versions"  # 123 and 124, served hot with labels
ARMS = {"grpc-arm-a": 10.0, "grpc-arm-b": 20.0}  # y = a * x
EXPERIMENT = "grpc-exp"
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, half_plus_two_models: Path,
          toy_template: Path) -> Path:
    root = tmp_path_factory.mktemp("grpc-store")
    for name in (HPT, HPT2):
        shutil.copytree(half_plus_two_models / name, root / name)
    for name, a in ARMS.items():
        toy_models.write_model(root, name, {1: a})
    return root


@pytest.fixture(scope="module")
def cold_pool(store: Path, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[str, str]]:
    """(REST URL, gRPC address) of a real cold pool over `store`."""
    port, grpc_port = free_port(), free_port()
    proc = ServerProcess(
        tierserve_command("pool", "--store", str(store),
                          "--cache-dir", str(tmp_path_factory.mktemp("grpc-cache")),
                          "--port", str(port), "--grpc-port", str(grpc_port),
                          "--model-servers", "1", "--model-server-nice", "0"),
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=log_dir / f"grpc-pool-{port}.log", cwd=str(REPO))
    proc.wait_ready(timeout=120)
    try:
        yield f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def hot(store: Path, log_dir: Path) -> Iterator[tuple[ServerProcess, str, str]]:
    """A model server for HPT2 with both versions and labels stable=123, canary=124."""
    rest, grpc_port = free_port(), free_port()
    config = store.parent / "grpc-hot.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "{HPT2}" base_path: "{store / HPT2}" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: 123 '
        'versions: 124 } } version_labels { key: "stable" value: 123 } '
        'version_labels { key: "canary" value: 124 } } }\n')
    proc = ServerProcess(
        tierserve_command("model-server", f"--port={grpc_port}", f"--rest_api_port={rest}",
                          f"--model_config_file={config}",
                          "--allow_version_labels_for_unavailable_models"),
        ready_url=f"http://127.0.0.1:{rest}/v1/models/{HPT2}",
        log_path=log_dir / f"grpc-hot-{rest}.log", cwd=str(REPO))
    proc.wait_ready(timeout=120)
    try:
        yield proc, f"http://127.0.0.1:{rest}", f"127.0.0.1:{grpc_port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, log_dir: Path,
           cold_pool: tuple[str, str], hot: tuple[ServerProcess, str, str]
           ) -> Iterator[RouterProcess]:
    db = tmp_path_factory.mktemp("grpc-router-db") / "tierserve.db"
    proc = start_router(log_dir, db, cold_pool[0], "--cold-grpc", cold_pool[1])
    try:
        with proc.admin() as admin:
            admin.put(f"/admin/placements/{HPT2}", json={
                "pool": "hot", "endpoint": hot[1], "grpc": hot[2]}).raise_for_status()
            admin.post("/admin/experiments", json={
                "name": EXPERIMENT, "variants": [{"model": m, "weight": 50} for m in ARMS]},
            ).raise_for_status()
        yield proc
    finally:
        proc.proc.stop()


@pytest.fixture(scope="module")
def channel(router: RouterProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(router.grpc) as chan:
        yield chan


@pytest.fixture(scope="module")
def predictions(channel: grpc.Channel) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(name: str, xs: list[float], version: int | None = None,
                    label: str | None = None) -> predict_pb2.PredictRequest:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    # half_plus_two's x is [batch, 1]; the toy models' (the experiment's arms) [batch].
    shape = [len(xs)] if name == EXPERIMENT else [len(xs), 1]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(xs, dtype=tf.float32, shape=shape))
    return request


def predict(stub: Any, request: predict_pb2.PredictRequest,
            metadata: tuple[tuple[str, str], ...] = ()) -> tuple[Any, dict[str, str]]:
    """The answer and its trailing metadata (x-tierserve-model, -variant, -pool)."""
    answer, call = stub.Predict.with_call(request, timeout=TIMEOUT, metadata=metadata)
    return answer, dict(call.trailing_metadata())


def values(answer: Any, key: str) -> list[float]:
    return [round(v, 4) for v in answer.outputs[key].float_val]


def test_predict_on_the_cold_pool(predictions: Any) -> None:
    answer, trailers = predict(predictions, predict_request(HPT, [1.0, 2.0, 5.0]))
    assert values(answer, "y") == [2.5, 3.0, 4.5]
    assert (answer.model_spec.name, answer.model_spec.version.value) == (HPT, 123)
    assert trailers["x-tierserve-pool"] == "cold"
    assert trailers["x-tierserve-model"] == HPT


def test_predict_on_the_hot_server_latest_version_and_label(predictions: Any) -> None:
    answer, trailers = predict(predictions, predict_request(HPT2, [4.0]))
    assert values(answer, "y") == [4.0]
    assert (answer.model_spec.name, answer.model_spec.version.value) == (HPT2, 124)
    assert trailers["x-tierserve-pool"] == "hot"
    # Labels are the hot server's (the cold pool has none).
    answer, trailers = predict(predictions, predict_request(HPT2, [4.0], label="stable"))
    assert answer.model_spec.version.value == 123
    assert trailers["x-tierserve-pool"] == "hot"
    answer, _ = predict(predictions, predict_request(HPT2, [4.0], version=123))
    assert answer.model_spec.version.value == 123


def test_classify_and_regress(predictions: Any) -> None:
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = HPT
    classify.model_spec.signature_name = "classify_x_to_y"
    classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(6.0)
    (row,) = predictions.Classify(classify, TIMEOUT).result.classifications
    assert [(c.label, round(c.score, 4)) for c in row.classes] == [("", 5.0)]

    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = HPT
    regress.model_spec.signature_name = "regress_x_to_y2"
    for x in (2.0, 4.0):
        regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    answer = predictions.Regress(regress, TIMEOUT)
    assert [round(r.value, 4) for r in answer.result.regressions] == [4.0, 5.0]
    assert answer.model_spec.name == HPT


def test_multi_inference_through_the_router(predictions: Any) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "classify"), ("regress_x_to_y2", "regress")):
        task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name = HPT
        task.model_spec.signature_name = signature
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
    classified, regressed = predictions.MultiInference(request, TIMEOUT).results
    (row,) = classified.classification_result.classifications
    assert [round(c.score, 4) for c in row.classes] == [3.0]  # y = x/2 + 2
    assert [round(r.value, 4) for r in regressed.regression_result.regressions] == [4.0]
    assert (classified.model_spec.name, regressed.model_spec.signature_name) == (
        HPT, "regress_x_to_y2")


def test_metadata_and_status(predictions: Any, channel: grpc.Channel) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = HPT
    answer = predictions.GetModelMetadata(request, TIMEOUT)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "classify_x_to_y", "regress_x_to_y2"} <= set(
        signatures.signature_def)
    assert answer.model_spec.version.value == 123

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = HPT2
    found = models.GetModelStatus(status, TIMEOUT).model_version_status
    state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert {(s.version, s.state) for s in found} == {(123, state), (124, state)}


def test_experiment_split_is_sticky_on_the_metadata_key(predictions: Any,
                                                        router: RouterProcess) -> None:
    seen: dict[str, str] = {}
    for user in range(12):
        key = (("x-user-id", f"user-{user}"),)
        first, trailers = predict(predictions, predict_request(EXPERIMENT, [1.0]), key)
        again, _ = predict(predictions, predict_request(EXPERIMENT, [1.0]), key)
        served = first.model_spec.name
        assert again.model_spec.name == served  # same key, same variant
        assert served in ARMS and trailers["x-tierserve-model"] == served
        assert trailers["x-tierserve-variant"] == served
        assert values(first, "y") == [ARMS[served]]  # the variant's model answered
        seen[f"user-{user}"] = served
    assert set(seen.values()) == set(ARMS)  # 12 users, 50/50: both variants (fixed hashes)
    # Counted as REST requests are: per variant, in the db.
    deadline = time.monotonic() + 30
    db = router.db_url.removeprefix("sqlite:///")
    while True:
        with sqlite3.connect(db) as conn:
            rows = dict(conn.execute(
                "SELECT variant, SUM(count) FROM request_counts_recent WHERE experiment = ? "
                "AND NOT shadow GROUP BY variant", (EXPERIMENT,)).fetchall())
        if sum(rows.values()) >= 24 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expected = {m: 2 * list(seen.values()).count(m) for m in ARMS}
    assert rows == expected


def test_errors_have_tf_servings_codes(predictions: Any, channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        predictions.Predict(predict_request("no-such-model", [1.0]), TIMEOUT)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        predictions.Predict(predict_pb2.PredictRequest(), TIMEOUT)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), TIMEOUT)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "orchestrator" in (caught.value.details() or "")


def test_killed_hot_server_falls_back_to_the_cold_pool(
        predictions: Any, router: RouterProcess, hot: tuple[ServerProcess, str, str]) -> None:
    hot[0].kill()
    answer, trailers = predict(predictions, predict_request(HPT2, [4.0]))
    assert values(answer, "y") == [4.0]
    assert (answer.model_spec.name, answer.model_spec.version.value) == (HPT2, 124)
    assert trailers["x-tierserve-pool"] == "cold"
    answer, trailers = predict(predictions, predict_request(HPT2, [2.0]))
    assert values(answer, "y") == [3.0] and trailers["x-tierserve-pool"] == "cold"
    with router.admin() as admin:
        deadline = time.monotonic() + 30
        while True:
            placements = {p["model"]: p for p in admin.get("/admin/routing").json()[
                "placements"]}
            if not placements[HPT2]["healthy"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert placements[HPT2]["healthy"] is False
    assert placements[HPT2]["grpc_endpoint"] == hot[2]
