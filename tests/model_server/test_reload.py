"""HandleReloadConfigRequest with TF Serving's semantics, on a server started with no models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2

from tests.model_server.helpers import (
    ModelServer,
    config_text,
    metric,
    reload_request,
    start_model_server,
)
from tierserve import toy_models

LOADS = "tierserve_model_server_model_loads_total"


@pytest.fixture(scope="module")
def empty_server(log_dir: Path) -> Iterator[ModelServer]:
    server = start_model_server(log_dir, "--num_load_threads", "3", name="ms-reload")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, toy_template: Path) -> Path:
    root = tmp_path_factory.mktemp("reload-store")
    for index, name in enumerate(["r1", "r2", "r3"], start=1):
        toy_models.write_model(root, name, {1: float(index)})
    return root


def reload(server: ModelServer, models: dict[str, str]) -> None:
    response = server.model_stub().HandleReloadConfigRequest(reload_request(models), 120)
    assert response.status.error_code == 0 and not response.status.error_message


def status_states(server: ModelServer, name: str) -> list[tuple[int, int]]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return [(s.version, s.state)
            for s in server.model_stub().GetModelStatus(request, 30).model_version_status]


AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def test_starts_empty(empty_server: ModelServer) -> None:
    assert empty_server.status("r1").status_code == 404


def test_reload_adds_then_replaces_the_list(empty_server: ModelServer, store: Path) -> None:
    reload(empty_server, {"r1": str(store / "r1"), "r2": str(store / "r2")})
    # The call returned: both are AVAILABLE now, no waiting.
    assert status_states(empty_server, "r1") == [(1, AVAILABLE)]
    assert empty_server.predict("r2", {"instances": [3.0]}).json() == {"predictions": [6.0]}
    loads = metric(empty_server, LOADS, 'outcome="ok"')

    reload(empty_server, {"r2": str(store / "r2"), "r3": str(store / "r3")})
    assert status_states(empty_server, "r1") == [(1, END)]  # left out: unloaded
    assert empty_server.predict("r1", {"instances": [1.0]}).status_code == 404
    assert empty_server.predict("r3", {"instances": [1.0]}).json() == {"predictions": [3.0]}
    # r2 was unchanged: not reloaded (one new load, r3's).
    assert metric(empty_server, LOADS, 'outcome="ok"') == loads + 1


def test_failed_models_are_named_and_others_load(empty_server: ModelServer, store: Path,
                                                 tmp_path: Path) -> None:
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "1" / "saved_model.pb").write_bytes(b"garbage")
    models = {"r2": str(store / "r2"), "broken": str(tmp_path / "broken"),
              "missing": str(tmp_path / "no-such-folder"), "r1": str(store / "r1")}
    with pytest.raises(grpc.RpcError) as caught:
        reload(empty_server, models)
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    details = caught.value.details()
    assert "2 model(s) did not become available" in details
    assert "broken" in details and "missing" in details and "r1" not in details
    assert empty_server.predict("r1", {"instances": [2.0]}).json() == {"predictions": [2.0]}
    (missing,) = empty_server.status("missing").json()["model_version_status"]
    assert missing["state"] == "END" and missing["status"]["error_code"] == "NOT_FOUND"
    (broken,) = empty_server.status("broken").json()["model_version_status"]
    assert broken["state"] == "END" and broken["status"]["error_message"]
    # The model and the reason; not where this server keeps it.
    for text in (details, missing["status"]["error_message"], broken["status"]["error_message"]):
        assert str(tmp_path) not in text and "no-such-folder" not in text, text


@pytest.mark.parametrize("models, words", [
    ({"a": "relative/path"}, "absolute"),
])
def test_relative_paths_are_invalid_argument(empty_server: ModelServer, models: dict[str, str],
                                             words: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        reload(empty_server, models)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.details()


def test_duplicate_names_are_invalid_argument_and_change_nothing(
        empty_server: ModelServer, store: Path) -> None:
    reload(empty_server, {"r1": str(store / "r1")})
    request = reload_request({"r2": str(store / "r2")})
    request.config.model_config_list.config.add(name="r2", base_path=str(store / "r3"))
    with pytest.raises(grpc.RpcError) as caught:
        empty_server.model_stub().HandleReloadConfigRequest(request, 60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "multiple times" in caught.value.details()
    assert status_states(empty_server, "r1") == [(1, AVAILABLE)]


def test_labels_by_reload_only_on_available_versions(empty_server: ModelServer,
                                                      store: Path) -> None:
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.config import model_server_config_pb2

    def with_labels(labels: dict[str, int]) -> model_management_pb2.ReloadConfigRequest:
        extra = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        text = config_text({"r1": str(store / "r1")}, {"r1": extra})
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
        return model_management_pb2.ReloadConfigRequest(config=config)

    reload(empty_server, {"r1": str(store / "r1")})
    stub = empty_server.model_stub()
    assert stub.HandleReloadConfigRequest(with_labels({"stable": 1}), 60).status.error_code == 0
    by_label = empty_server.predict("r1", {"instances": [2.0]}, "/labels/stable")
    assert by_label.json() == {"predictions": [2.0]}
    with pytest.raises(grpc.RpcError) as caught:
        stub.HandleReloadConfigRequest(with_labels({"stable": 1, "next": 9}), 60)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == ("Request to assign label to version 9 of model r1, "
                                      "which is not currently available for inference")
    assert empty_server.predict("r1", {"instances": [1.0]}, "/labels/next").status_code == 400


def test_reload_to_empty_unloads_everything(empty_server: ModelServer, store: Path) -> None:
    reload(empty_server, {"r3": str(store / "r3")})
    reload(empty_server, {})
    assert status_states(empty_server, "r3") == [(1, END)]
    assert metric(empty_server, "tierserve_model_server_loaded_models") == 0
