"""Real cold pools for the tests: `tierserve pool` processes over moto's S3 and toy models."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from testkit import stores as testing
from tierserve import toy_models


class Pool:
    """One running `tierserve pool` and the calls the tests make to it."""

    def __init__(self, proc: ServerProcess, url: str, cache_dir: Path) -> None:
        self.proc = proc
        self.url = url
        self.cache_dir = cache_dir
        self.http = httpx.Client(base_url=url, timeout=120.0)

    def predict(self, model: str, xs: list[float], version: int | None = None) -> httpx.Response:
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
        return self.http.post(path, json={"instances": xs})

    def listing(self) -> dict[str, Any]:
        response = self.http.get("/admin/models")
        response.raise_for_status()
        return response.json()

    def entry(self, model: str, version: int) -> dict[str, Any]:
        for item in self.listing()["models"]:
            if item["model"] == model and item["version"] == version:
                return item
        raise KeyError(f"{model}/{version} not in the listing")

    def poll(self) -> None:
        self.http.post("/admin/poll").raise_for_status()

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    return {**testing.S3_ENV, "AWS_ENDPOINT_URL": endpoint, "TF_CPP_MIN_LOG_LEVEL": "2"}


def start_pool(log_dir: Path, cache_dir: Path, store: str, endpoint: str,
               **flags: object) -> Pool:
    port = free_port()
    args = ["pool", "--store", store, "--cache-dir", str(cache_dir), "--port", str(port),
            "--grpc-port", str(free_port())]
    for name, value in flags.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    proc = ServerProcess(tierserve_command(*args), f"http://127.0.0.1:{port}/healthz",
                         log_path=log_dir / f"pool-{port}.log", env=s3_env(endpoint))
    proc.wait_ready(timeout=120)
    return Pool(proc, f"http://127.0.0.1:{port}", cache_dir)


def upload_version(client: Any, bucket: str, model: str, version: int, a: float,
                   b: float = 0.0, pad_bytes: int = 0, tmp: Path | None = None,
                   corrupt: bool = False) -> None:
    """Put `model/version` (y = a*x + b) in S3; saved_model.pb goes last, as a careful
    publisher does, so a listing never shows a version that cannot load."""
    root = Path(tmp or Path("/tmp")) / f"upload-{model}-{version}-{time.monotonic_ns()}"
    folder = toy_models.write_version(root / "v", a, b, pad_bytes)
    if corrupt:
        (folder / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    files = sorted((p for p in folder.rglob("*") if p.is_file()),
                   key=lambda p: (p.name == "saved_model.pb", str(p)))
    for path in files:
        key = f"models/{model}/{version}/{path.relative_to(folder).as_posix()}"
        client.upload_file(str(path), bucket, key)
    shutil.rmtree(root, ignore_errors=True)


def upload_many(client: Any, bucket: str, models: dict[str, tuple[float, int]]) -> None:
    """`{name: (a, pad_bytes)}` as version 1 each, several uploads at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as workers:
        list(workers.map(lambda item: upload_version(client, bucket, item[0], 1, a=item[1][0],
                                                     pad_bytes=item[1][1]), models.items()))


def delete_model(client: Any, bucket: str, model: str) -> None:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"models/{model}/")
    for obj in listed.get("Contents", []):
        client.delete_object(Bucket=bucket, Key=obj["Key"])


def wait_until(check: Callable[[], bool], timeout: float = 60.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met after {timeout}s")
        time.sleep(step)


@pytest.fixture(scope="module")
def module_bucket(moto_s3: str, request: pytest.FixtureRequest) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.module.__name__.lower())[-40:].strip("-")
    bucket = f"cold-{name}-{time.monotonic_ns() % 10**6}"
    testing.s3_client(moto_s3).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="module")
def s3(moto_s3: str) -> Any:
    return testing.s3_client(moto_s3)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cold")


def expected(a: float, xs: list[float], b: float = 0.0) -> list[float]:
    return toy_models.expected(a, b, xs)


@pytest.fixture(scope="module")
def pool_factory(log_dir: Path, moto_s3: str, module_bucket: str,
                 module_tmp: Path) -> Iterator[Callable[..., Pool]]:
    started: list[Pool] = []

    def make(cache_name: str = "cache", **flags: object) -> Pool:
        pool = start_pool(log_dir, module_tmp / cache_name, f"s3://{module_bucket}/models",
                          moto_s3, **flags)
        started.append(pool)
        return pool

    yield make
    for pool in started:
        pool.stop()
