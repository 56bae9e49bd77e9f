"""An s3:// base path, against moto's standalone S3 server over HTTP."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from base.errors import Unavailable
from pools.model_server.sources import S3Source
from testkit import stores as testing
from tests.model_server.helpers import reload_request, start_model_server, wait_for
from tierserve import toy_models


def test_s3_base_path_is_served_and_polled(moto_s3: str, s3_bucket: str, log_dir: Path,
                                           tmp_path: Path, toy_template: Path) -> None:
    client = testing.s3_client(moto_s3)
    local = toy_models.write_model(tmp_path / "store", "s1", {1: 7.0})
    testing.upload_tree(client, s3_bucket, "models/s1", local)
    cache = tmp_path / "cache"
    server = start_model_server(
        log_dir, "--model_name", "s1", "--model_base_path", f"s3://{s3_bucket}/models/s1",
        "--file_system_poll_wait_seconds", "0.5", "--model_cache_dir", str(cache),
        name="ms-s3", env={"AWS_ENDPOINT_URL": moto_s3})
    try:
        assert server.predict("s1", {"instances": [1.0, 2.0]}).json() == {
            "predictions": [7.0, 14.0]}

        # Version 2 seen mid-upload: its saved_model.pb is there, its variables not yet.
        # The load fails, version 1 keeps serving, and the finished upload is loaded.
        v2 = toy_models.write_version(tmp_path / "v2", a=8.0)
        client.upload_file(str(v2 / "saved_model.pb"), s3_bucket, "models/s1/2/saved_model.pb")
        wait_for(lambda: server.states("s1") == {2: "END", 1: "AVAILABLE"},
                 what="the half-uploaded version 2 failing")
        assert server.predict("s1", {"instances": [1.0]}).json() == {"predictions": [7.0]}
        testing.upload_tree(client, s3_bucket, "models/s1/2", v2)
        wait_for(lambda: server.states("s1") == {2: "AVAILABLE", 1: "END"},
                 what="version 2 from S3")
        assert server.predict("s1", {"instances": [1.0]}).json() == {"predictions": [8.0]}
        # The unloaded version's download is gone from the local cache.
        assert [p.name for p in cache.glob("*/*") if not p.name.startswith(".")] == ["2"]

        # A reload naming a prefix with no model: that model fails, s1 keeps serving.
        models = {"s1": f"s3://{s3_bucket}/models/s1", "absent": f"s3://{s3_bucket}/models/no"}
        with pytest.raises(grpc.RpcError) as caught:
            server.model_stub().HandleReloadConfigRequest(reload_request(models), 120)
        assert caught.value.code() == grpc.StatusCode.UNKNOWN
        assert "absent" in caught.value.details() and "s1" not in caught.value.details()
        (absent,) = server.status("absent").json()["model_version_status"]
        assert absent["state"] == "END" and absent["status"]["error_code"] != "OK"
        # The model and the reason, not the store's address.
        for text in (caught.value.details(), absent["status"]["error_message"]):
            assert s3_bucket not in text and moto_s3 not in text, text
        assert server.predict("s1", {"instances": [1.0]}).json() == {"predictions": [8.0]}
    finally:
        assert server.stop() == 0


class UnreachableStore:
    def list_versions(self, folder: str) -> list[int]:
        raise Unavailable(f"listing s3://b/{folder}: Could not connect to the endpoint URL: "
                          '"http://10.1.2.3:9000/b?list-type=2"')

    def download(self, folder: str, version: int, dest: Path) -> Path:
        raise Unavailable("Could not connect to the endpoint URL: http://10.1.2.3:9000/b")


def test_an_unreachable_store_is_unavailable_without_its_address(tmp_path: Path) -> None:
    source = S3Source("m", "s3://b/models/m", tmp_path)
    source.store = UnreachableStore()  # type: ignore[assignment]
    for call in (source.list_versions, lambda: source.fetch(1)):
        with pytest.raises(Unavailable) as caught:
            call()
        assert "servable m" in caught.value.message
        assert "10.1.2.3" not in caught.value.message and "s3://" not in caught.value.message
