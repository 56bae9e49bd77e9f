"""The S3 store against moto's standalone S3 server over HTTP (not an in-process mock)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from base.errors import InvalidArgument, NotFound, Unavailable
from base.procs import free_port
from pools.store import S3Store, open_store
from pools.store.s3 import convert_error, make_client
from testkit import stores as testing


@pytest.fixture
def s3_store(moto_s3: str, s3_bucket: str, store_root: Path) -> S3Store:
    client = testing.s3_client(moto_s3)
    testing.upload_tree(client, s3_bucket, "models/prod", store_root)
    client.put_object(Bucket=s3_bucket, Key="models/prod/empty/", Body=b"")  # a folder marker
    store = open_store(f"s3://{s3_bucket}/models/prod/", endpoint_url=moto_s3)
    assert isinstance(store, S3Store)
    return store


def test_lists_models_and_versions(s3_store: S3Store) -> None:
    assert s3_store.list_models() == ["alpha.v2", "empty", "m1", "m2"]
    assert s3_store.list_versions("m1") == [1, 2]
    assert s3_store.list_versions("m2") == [3, 10]
    assert s3_store.list_versions("empty") == []
    assert s3_store.latest_version("m1") == 2
    assert s3_store.model_uri("m1") == f"{s3_store.uri}/m1"


def test_absent_model_version_and_bucket(s3_store: S3Store, moto_s3: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        s3_store.list_versions("nope")
    with pytest.raises(NotFound):
        s3_store.latest_version("empty")
    with pytest.raises(NotFound):
        s3_store.download("m1", 5, tmp_path)
    with pytest.raises(NotFound):
        open_store("s3://no-such-bucket-here", endpoint_url=moto_s3).list_models()


def test_size_and_download_match_the_source(s3_store: S3Store, store_root: Path,
                                            tmp_path: Path) -> None:
    source = store_root / "m2" / "00000003"
    files = {p.relative_to(source): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    assert s3_store.version_size("m2", 3) == sum(len(b) for b in files.values())
    path = s3_store.download("m2", 3, tmp_path / "m2")
    assert path == tmp_path / "m2" / "3"
    got = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert got == files
    assert os.listdir(tmp_path / "m2") == ["3"]


def test_bucket_root_and_env_endpoint(moto_s3: str, s3_bucket: str, store_root: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    testing.upload_tree(testing.s3_client(moto_s3), s3_bucket, "", store_root)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    store = open_store(f"s3://{s3_bucket}/")  # endpoint and credentials from the environment
    assert store.uri == f"s3://{s3_bucket}"
    assert store.list_models() == ["alpha.v2", "m1", "m2"]
    assert store.list_versions("alpha.v2") == [7]
    assert store.model_uri("m1") == f"s3://{s3_bucket}/m1"


def test_failure_midway_leaves_nothing(s3_store: S3Store, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    lock = threading.Lock()
    calls: list[str] = []
    real = s3_store.client.get_object

    def flaky(**kwargs: str) -> object:
        with lock:
            calls.append(kwargs["Key"])
            fail = len(calls) == 3
        if fail:
            raise EndpointConnectionError(endpoint_url="http://lost")
        return real(**kwargs)

    monkeypatch.setattr(s3_store.client, "get_object", flaky)
    with pytest.raises(Unavailable):
        s3_store.download("m1", 1, tmp_path)
    assert len(calls) >= 3  # it really failed in the middle, with files already written
    assert os.listdir(tmp_path) == []


def test_unsafe_keys_rejected(s3_store: S3Store, moto_s3: str, s3_bucket: str,
                              tmp_path: Path) -> None:
    client = testing.s3_client(moto_s3)
    testing.upload_tree(client, s3_bucket, "models/prod/evil/1", fake_version(tmp_path))
    client.put_object(Bucket=s3_bucket, Key="models/prod/evil/1/../../../../escaped", Body=b"x")
    with pytest.raises(InvalidArgument, match="unsafe"):
        s3_store.download("evil", 1, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []
    assert not list(tmp_path.rglob("escaped"))
    for name in ("..", "../m1", "m1/1"):
        with pytest.raises(InvalidArgument):
            s3_store.list_versions(name)


def fake_version(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"not really")
    return folder


def test_stopped_endpoint_is_unavailable(log_dir: Path, tmp_path: Path) -> None:
    proc, endpoint = testing.start_moto(log_dir)
    try:
        testing.s3_client(endpoint).create_bucket(Bucket="stopped")
        store = open_store("s3://stopped/models", endpoint_url=endpoint)
        assert store.list_models() == []
    finally:
        proc.stop()
    for call in (store.list_models, lambda: store.list_versions("m1"),
                 lambda: store.download("m1", 1, tmp_path)):
        with pytest.raises(Unavailable):
            call()
    assert os.listdir(tmp_path) == []


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_silent_endpoint_times_out_as_unavailable(silent_endpoint: str) -> None:
    import boto3
    from botocore.config import Config

    # The store's own timeouts are seconds; a shorter one keeps this test short.
    client = boto3.client("s3", endpoint_url=silent_endpoint, region_name="us-east-1",
                          config=Config(connect_timeout=0.5, read_timeout=0.5,
                                        retries={"max_attempts": 1}))
    store = S3Store("s3://b", client=client)
    with pytest.raises(Unavailable, match="timeout"):
        store.list_models()


def test_client_fails_fast_by_default(silent_endpoint: str) -> None:
    config = make_client(silent_endpoint).meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 30
    assert config.retries.get("total_max_attempts", config.retries.get("max_attempts")) <= 3


def test_credentials_from_arguments_or_none(s3_store: S3Store, moto_s3: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    given = open_store(s3_store.uri, endpoint_url=moto_s3, access_key="k", secret_key="s")
    assert given.list_models() == s3_store.list_models()
    bare = open_store(s3_store.uri, endpoint_url=moto_s3)
    # No credentials is the server's set-up fault (503), and the message says what to set.
    for call in (bare.list_models, lambda: bare.list_versions("m1"),
                 lambda: bare.download("m1", 1, tmp_path / "cache")):
        with pytest.raises(Unavailable) as caught:
            call()
        message = caught.value.message
        assert "AWS_ACCESS_KEY_ID" in message and "AWS_ENDPOINT_URL" in message
        assert caught.value.http_status == 503
        assert moto_s3 not in message and "127.0.0.1" not in message
        assert s3_store.bucket not in message and "models/prod" not in message
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []


def test_rejected_credentials_are_unavailable_without_internals() -> None:
    from botocore.exceptions import ClientError

    rejected = ClientError({"Error": {"Code": "InvalidAccessKeyId",
                                      "Message": "The key does not exist in bucket b-secret"}},
                           "ListObjectsV2")
    converted = convert_error(rejected, "listing s3://b-secret/prefix")
    assert isinstance(converted, Unavailable)
    assert "InvalidAccessKeyId" in converted.message
    assert "AWS_SECRET_ACCESS_KEY" in converted.message
    assert "b-secret" not in converted.message
    missing = ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
    assert isinstance(convert_error(missing, "downloading"), NotFound)
