"""A real cold pool (own model server) over moto S3: misses, versions, swaps, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cold.conftest import Pool, delete_model, expected, upload_version, wait_until

XS = [1.0, 2.0, 3.0]
FAILURE_TTL = 3.0


@pytest.fixture(scope="module")
def pool(pool_factory: Callable[..., Pool], s3: Any, module_bucket: str) -> Iterator[Pool]:
    upload_version(s3, module_bucket, "warm", 1, a=1.0)
    yield pool_factory(memory_models=3, disk_models=6, store_poll=1,
                       failure_ttl=FAILURE_TTL, load_wait=30)


def test_hundred_concurrent_requests_one_download_one_load(
        pool: Pool, s3: Any, module_bucket: str) -> None:
    upload_version(s3, module_bucket, "crowd", 1, a=3.0, b=1.0)
    calls_before = pool.listing()["totals"]["reload_calls"]

    async def crowd() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=pool.url, timeout=60) as client:
            return await asyncio.gather(*(
                client.post("/v1/models/crowd:predict", json={"instances": XS})
                for _ in range(100)))

    responses = asyncio.run(crowd())
    assert [r.status_code for r in responses] == [200] * 100
    assert all(r.json() == {"predictions": expected(3.0, XS, 1.0)} for r in responses)
    entry = pool.entry("crowd", 1)
    assert (entry["downloads"], entry["loads"], entry["loaded"]) == (1, 1, True)
    assert entry["hits"] + entry["misses"] == 100
    assert pool.listing()["totals"]["reload_calls"] == calls_before + 1


def test_latest_and_specific_versions(pool: Pool, s3: Any, module_bucket: str) -> None:
    upload_version(s3, module_bucket, "multi", 1, a=1.5)
    upload_version(s3, module_bucket, "multi", 2, a=2.5)
    latest = pool.predict("multi", XS)
    assert latest.json() == {"predictions": expected(2.5, XS)}
    assert latest.headers["X-Tierserve-Model-Version"] == "2"
    assert pool.predict("multi", XS, version=1).json() == {"predictions": expected(1.5, XS)}
    status = pool.http.get("/v1/models/multi/versions/1").json()
    assert status["model_version_status"][0]["version"] == "1"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = pool.http.get("/v1/models/multi/metadata").json()
    assert metadata["model_spec"]["version"] == "2"
    assert "serving_default" in metadata["metadata"]["signature_def"]["signature_def"]


def test_not_in_store_is_404_in_tf_serving_shape(pool: Pool) -> None:
    response = pool.predict("no-such-model", XS)
    assert response.status_code == 404
    assert set(response.json()) == {"error"} and "no-such-model" in response.json()["error"]
    missing_version = pool.predict("warm", XS, version=99)
    assert missing_version.status_code == 404
    assert pool.predict("bad name!", XS).status_code in (400, 404)


def test_slow_request_survives_eviction_pressure(pool: Pool, s3: Any,
                                                 module_bucket: str) -> None:
    upload_version(s3, module_bucket, "slow", 1, a=7.0)
    others = [f"press{i}" for i in range(4)]
    for i, name in enumerate(others):
        upload_version(s3, module_bucket, name, 1, a=float(i + 1))
    assert pool.predict("slow", XS).status_code == 200  # loaded, then held by a slow request

    result: dict[str, httpx.Response] = {}
    stop_trickle = threading.Event()

    def trickled_body() -> Iterator[bytes]:
        yield b'{"instances": ['
        while not stop_trickle.is_set():
            time.sleep(0.05)
            yield b"1.0, "
        yield b"2.0]}"

    def slow_request() -> None:
        with httpx.Client(base_url=pool.url, timeout=120) as client:
            result["slow"] = client.post("/v1/models/slow:predict", content=trickled_body(),
                                         headers={"content-type": "application/json"})

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_until(lambda: pool.entry("slow", 1)["in_flight"] == 1)
    evictions_before = pool.listing()["totals"]["evictions"]["memory"]
    for _ in range(3):  # 4 models through the 2 slots "slow" leaves: evictions galore
        for i, name in enumerate(others):
            response = pool.predict(name, XS)
            assert response.json() == {"predictions": expected(float(i + 1), XS)}
    assert pool.listing()["totals"]["evictions"]["memory"] >= evictions_before + 4
    assert pool.entry("slow", 1)["loaded"] is True
    stop_trickle.set()
    thread.join(60)
    assert result["slow"].status_code == 200
    assert result["slow"].json()["predictions"][-1] == pytest.approx(14.0)
    entry = pool.entry("slow", 1)
    assert entry["loads"] == 1 and entry["evictions"] == 0


def test_new_version_swaps_without_a_failed_request(pool: Pool, s3: Any,
                                                    module_bucket: str) -> None:
    upload_version(s3, module_bucket, "live", 1, a=1.0)
    assert pool.predict("live", XS).json() == {"predictions": expected(1.0, XS)}
    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=pool.url, timeout=60) as client:
            while not stop.is_set():
                r = client.post("/v1/models/live:predict", json={"instances": XS})
                answers.append((r.status_code, r.json()))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        upload_version(s3, module_bucket, "live", 2, a=10.0)
        wait_until(lambda: bool(answers) and answers[-1][1] == {
            "predictions": expected(10.0, XS)}, timeout=60)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    assert [code for code, _ in answers if code != 200] == []
    old, new = {"predictions": expected(1.0, XS)}, {"predictions": expected(10.0, XS)}
    assert all(body in (old, new) for _, body in answers)
    first_new = next(i for i, (_, body) in enumerate(answers) if body == new)
    assert all(body == new for _, body in answers[first_new:])  # never back to the old one
    wait_until(lambda: pool.entry("live", 1)["loaded"] is False)
    assert pool.entry("live", 2)["loaded"] is True


def test_corrupt_model_fails_fast_then_serves_once_fixed(pool: Pool, s3: Any,
                                                        module_bucket: str) -> None:
    upload_version(s3, module_bucket, "broken", 1, a=2.0, corrupt=True)
    first = pool.predict("broken", XS)
    assert first.status_code >= 400 and first.status_code != 503
    reason = first.json()["error"]
    assert "broken" in reason
    again = pool.predict("broken", XS)  # remembered: answered at once, no new download
    assert again.status_code == first.status_code and again.json()["error"] == reason
    assert pool.entry("broken", 1)["downloads"] == 1
    assert pool.entry("broken", 1)["failure"]["message"] == reason
    assert pool.predict("warm", XS).json() == {"predictions": expected(1.0, XS)}

    upload_version(s3, module_bucket, "broken", 1, a=2.0)  # the fixed upload
    wait_until(lambda: pool.entry("broken", 1)["failure"] is None, timeout=FAILURE_TTL + 5)
    fixed = pool.predict("broken", XS)
    assert fixed.status_code == 200 and fixed.json() == {"predictions": expected(2.0, XS)}


def test_model_deleted_from_store_is_unloaded_and_removed(pool: Pool, s3: Any,
                                                         module_bucket: str) -> None:
    upload_version(s3, module_bucket, "doomed", 1, a=4.0)
    assert pool.predict("doomed", XS).status_code == 200
    assert (pool.cache_dir / "doomed" / "1").is_dir()
    delete_model(s3, module_bucket, "doomed")
    pool.poll()
    wait_until(lambda: pool.entry("doomed", 1)["memory_state"] == "absent"
               and pool.entry("doomed", 1)["disk_state"] == "absent")
    assert not (pool.cache_dir / "doomed").exists()
    assert pool.predict("doomed", XS).status_code == 404
    assert pool.predict("doomed", XS, version=1).status_code == 404


def test_admin_prewarm_unload_and_metrics(pool: Pool, s3: Any, module_bucket: str) -> None:
    upload_version(s3, module_bucket, "prewarmed", 1, a=6.0)
    loaded = pool.http.post("/admin/models/prewarmed/load")
    assert loaded.status_code == 200 and loaded.json()["loaded"] is True
    response = pool.predict("prewarmed", XS)
    assert response.headers["X-Tierserve-Cache"] == "hit"
    unloaded = pool.http.post("/admin/models/prewarmed/unload")
    assert unloaded.json() == {"unloaded": [{"model": "prewarmed", "version": 1}]}
    entry = pool.entry("prewarmed", 1)
    assert entry["loaded"] is False and entry["on_disk"] is True
    assert pool.predict("prewarmed", XS).headers["X-Tierserve-Cache"] == "miss"
    assert pool.entry("prewarmed", 1)["downloads"] == 1  # loaded again from disk

    text = pool.http.get("/metrics").text
    for name in ("tierserve_pool_hits_total", "tierserve_pool_misses_total",
                 "tierserve_pool_load_seconds_bucket", "tierserve_pool_download_seconds_bucket",
                 "tierserve_pool_evictions_total", "tierserve_pool_loaded_models",
                 "tierserve_pool_disk_bytes", "tierserve_pool_in_flight",
                 "tierserve_pool_failures_total"):
        assert name in text, name
