"""Version labels with TF Serving's rules: assigned only to AVAILABLE versions (unless
--allow_version_labels_for_unavailable_models), resolved per request, its errors."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from tensorflow_serving.apis import get_model_metadata_pb2

from base.errors import FailedPrecondition, InvalidArgument, NotFound
from base.procs import free_port, tierserve_command
from pools.model_server import config as configs
from pools.model_server.manager import ModelManager
from tests.model_server.helpers import ModelServer, config_text
from tests.model_server.test_grpc import predict_request
from tests.model_server.test_model_entry import FakeLoader

REFUSED = ("Request to assign label to version {v} of model m, which is not currently "
           "available for inference")


def config(base: Path, labels: dict[str, int], versions: tuple[int, ...] = (1, 2)) -> Any:
    policy = " ".join(f"versions: {v}" for v in versions)
    text = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
    return configs.parse_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
        f"model_version_policy {{ specific {{ {policy} }} }} {text} }} }}")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    for version in (1, 2, 3):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
    return tmp_path / "m"


def manager(tmp_path: Path, allow: bool = False) -> ModelManager:
    return ModelManager(FakeLoader(), tmp_path / "cache", allow_labels_for_unavailable=allow)


def test_labels_go_on_available_versions_in_a_later_reload(base: Path, tmp_path: Path) -> None:
    m = manager(tmp_path)
    m.reload(config(base, {}))
    m.reload(config(base, {"stable": 1, "canary": 2}))
    assert m.resolve("m", label="stable") == (1, "servable-1")
    assert m.resolve("m", label="canary") == (2, "servable-2")
    assert [s.version for s in m.labelled_status("m", "canary")] == [2]
    m.close()


def test_a_label_on_a_version_not_available_is_refused_and_nothing_changes(
        base: Path, tmp_path: Path) -> None:
    m = manager(tmp_path)
    m.reload(config(base, {}))
    m.reload(config(base, {"stable": 1}))
    with pytest.raises(FailedPrecondition) as caught:
        m.reload(config(base, {"stable": 1, "next": 3}, versions=(1, 2, 3)))
    assert caught.value.message == REFUSED.format(v=3)
    assert m.resolve("m", label="stable") == (1, "servable-1")
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: next"):
        m.resolve("m", label="next")
    assert {s.version for s in m.status("m")} == {1, 2}  # version 3 was not loaded
    m.close()


def test_labels_in_the_first_config_need_the_flag(base: Path, tmp_path: Path) -> None:
    strict = manager(tmp_path)
    with pytest.raises(FailedPrecondition, match=REFUSED.format(v=1)):
        strict.reload(config(base, {"stable": 1}))
    assert strict.model_names() == []
    strict.close()
    allowed = manager(tmp_path, allow=True)
    allowed.reload(config(base, {"stable": 1, "ghost": 7}))
    assert allowed.resolve("m", label="stable") == (1, "servable-1")
    # A label may name a version that never loads: requests for it are not found.
    with pytest.raises(NotFound, match=r"Servable not found for request: Specific\(m, 7\)"):
        allowed.resolve("m", label="ghost")
    allowed.close()


def test_the_flag_does_not_move_a_label_onto_a_version_still_loading(
        base: Path, tmp_path: Path) -> None:
    m = manager(tmp_path, allow=True)
    m.reload(config(base, {"stable": 1}))
    with pytest.raises(FailedPrecondition, match=REFUSED.format(v=3)):
        m.reload(config(base, {"stable": 3}, versions=(1, 2, 3)))
    m.reload(config(base, {"stable": 1, "next": 3}, versions=(1, 2, 3)))  # a new label may
    assert m.resolve("m", label="next") == (3, "servable-3")
    m.close()


def test_unknown_labels_and_models(base: Path, tmp_path: Path) -> None:
    m = manager(tmp_path, allow=True)
    m.reload(config(base, {"stable": 1}))
    with pytest.raises(InvalidArgument, match=r"^Unrecognized servable version label: nope$"):
        m.resolve("m", label="nope")
    # TF Serving looks the label up before the model: a label on an unknown model is 400.
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: x"):
        m.resolve("ghost", label="x")
    with pytest.raises(NotFound, match="Could not find any versions of model ghost"):
        m.labelled_status("ghost", "x")
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: nope"):
        m.labelled_status("m", "nope")
    m.close()


# -- through a real server (m3: versions 1 and 2, stable -> 1, canary -> 2) --------------------

def test_rest_label_routes(served: ModelServer) -> None:
    metadata = httpx.get(f"{served.rest}/v1/models/m3/labels/canary/metadata", timeout=10)
    assert metadata.status_code == 200
    assert metadata.json()["model_spec"] == {"name": "m3", "signature_name": "", "version": "2"}
    wrong = served.predict("m3", {"instances": [1.0]}, "/labels/nope")
    assert (wrong.status_code, wrong.json()) == (
        400, {"error": "Unrecognized servable version label: nope"})
    ghost = served.predict("ghost", {"instances": [1.0]}, "/labels/stable")
    assert ghost.status_code == 400 and "Unrecognized servable version label" in ghost.text
    status = httpx.get(f"{served.rest}/v1/models/m3/labels/stable", timeout=10).json()
    assert [s["version"] for s in status["model_version_status"]] == ["1"]


def test_grpc_label_routes(served: ModelServer) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "m3"
    request.model_spec.version_label = "stable"
    response = served.prediction_stub().GetModelMetadata(request, 30)
    assert (response.model_spec.name, response.model_spec.version.value) == ("m3", 1)
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction_stub().Predict(predict_request("ghost", [1.0], label="stable"), 30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Unrecognized servable version label: stable"


def test_labels_at_start_without_the_flag_stop_the_server(store_root: Path,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(config_text({"m3": str(store_root / "m3")},
                                {"m3": 'version_labels { key: "stable" value: 1 }'}))
    done = subprocess.run(
        tierserve_command("model-server", "--port", str(free_port()), "--model_config_file",
                          str(path)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert ("Request to assign label to version 1 of model m3, which is not currently "
            "available for inference") in done.stderr


def test_a_refused_config_file_is_tried_again_at_the_next_poll(base: Path,
                                                              tmp_path: Path) -> None:
    from pools.model_server.manager import ConfigFilePoller

    m = manager(tmp_path)
    m.reload(config(base, {}, versions=(1,)))
    path = tmp_path / "models.config"
    path.write_text("")
    poller = ConfigFilePoller(m, str(path))
    # Version 2 and a label on it in one edit: refused while 2 is not loaded.
    path.write_text(str(config(base, {"canary": 2}, versions=(1, 2))))
    poller.check()
    with pytest.raises(InvalidArgument):
        m.resolve("m", label="canary")
    m.reload(config(base, {}, versions=(1, 2)))  # version 2 comes up (here: another reload)
    poller.check()
    assert m.resolve("m", label="canary") == (2, "servable-2")
    m.close()
