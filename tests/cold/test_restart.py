"""Crash and restart: the disk cache is atomic and survives; bounded waits answer 503."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cold.conftest import Pool, expected, upload_version, wait_until

XS = [2.0, 3.0]
BIG_PAD = 150 * 1024 * 1024  # a download long enough to be caught in the middle


@pytest.fixture(scope="module")
def big_model(s3: Any, module_bucket: str, module_tmp: Path) -> str:
    upload_version(s3, module_bucket, "big", 1, a=5.0, pad_bytes=BIG_PAD, tmp=module_tmp)
    upload_version(s3, module_bucket, "small", 1, a=0.5)
    return "big"


def leftovers(cache_dir: Path) -> list[Path]:
    return list(cache_dir.glob("*/.tmp-*"))


def test_kill_during_download_then_restart(pool_factory: Callable[..., Pool],
                                           big_model: str) -> None:
    pool = pool_factory("crash-cache", load_wait=0.05)
    first = pool.predict(big_model, XS)
    # The wait is bounded: 503 with Retry-After while the download goes on.
    assert first.status_code == 503
    assert int(first.headers["Retry-After"]) >= 1
    wait_until(lambda: bool(leftovers(pool.cache_dir)), timeout=30, step=0.005)
    pool.proc.kill()  # SIGKILL, pool and its model server, mid-download
    assert leftovers(pool.cache_dir) and not (pool.cache_dir / big_model / "1").exists()

    restarted = pool_factory("crash-cache", load_wait=120)
    assert leftovers(restarted.cache_dir) == []
    assert not (restarted.cache_dir / big_model / "1").exists()
    response = restarted.predict(big_model, XS)
    assert response.status_code == 200
    assert response.json() == {"predictions": expected(5.0, XS)}
    entry = restarted.entry(big_model, 1)
    assert (entry["downloads"], entry["loads"]) == (1, 1)


def test_restart_does_not_download_again(pool_factory: Callable[..., Pool],
                                         big_model: str) -> None:
    pool = pool_factory("warm-cache")
    assert pool.predict("small", XS).status_code == 200
    assert pool.entry("small", 1)["downloads"] == 1
    pool.stop()
    assert (pool.cache_dir / ".eviction-state.json").is_file()

    again = pool_factory("warm-cache")
    entry = again.entry("small", 1)
    assert entry["on_disk"] is True and entry["loaded"] is False
    assert again.predict("small", XS).json() == {"predictions": expected(0.5, XS)}
    entry = again.entry("small", 1)
    assert (entry["downloads"], entry["loads"]) == (0, 1)


def test_prewarm_is_not_bounded_by_the_request_wait(pool_factory: Callable[..., Pool],
                                                    big_model: str) -> None:
    pool = pool_factory("prewarm-cache", load_wait=0.05)
    accepted = pool.http.post(f"/admin/models/{big_model}/load", params={"wait": 0})
    assert accepted.status_code == 202  # still loading: the load goes on
    wait_until(lambda: pool.entry(big_model, 1)["loaded"], timeout=120)
    hit = pool.predict(big_model, XS)
    assert hit.status_code == 200 and hit.headers["X-Tierserve-Cache"] == "hit"
