"""The store goes away: what the pool holds (loaded or on disk) keeps answering, misses that
need the store get 503 + Retry-After (never 404); back: misses served. A store that answers
"no such model" is a 404."""

from __future__ import annotations

import time
from pathlib import Path

from base.procs import free_port
from pools.cold.catalog import NEGATIVE_TTL_S
from testkit import stores as testing
from tests.cold.conftest import expected, start_pool, upload_version

XS = [1.0, 4.0]


def test_store_outage(log_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    moto, endpoint = testing.start_moto(log_dir, port)
    bucket = "outage"
    client = testing.s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    upload_version(client, bucket, "kept", 1, a=2.0)
    upload_version(client, bucket, "cold", 1, a=3.0)
    upload_version(client, bucket, "disk", 1, a=4.0)
    # No timed polls here: a restarted moto is empty until the test uploads again.
    pool = start_pool(log_dir, tmp_path / "cache", f"s3://{bucket}/models", endpoint,
                      store_poll=3600, memory_models=1, model_servers=1)
    try:
        missing = pool.predict("no-such-model", XS)  # the store answers: not there
        assert missing.status_code == 404 and set(missing.json()) == {"error"}
        assert pool.predict("disk", XS).json() == {"predictions": expected(4.0, XS)}
        assert pool.predict("kept", XS).json() == {"predictions": expected(2.0, XS)}
        assert pool.entry("disk", 1)["on_disk"] and not pool.entry("disk", 1)["loaded"]
        moto.stop()
        time.sleep(NEGATIVE_TTL_S)  # "no-such-model" was not there: that answer expires

        pool.poll()  # an unreachable store skips the round: nothing is unloaded
        for _ in range(3):
            kept = pool.predict("kept", XS)
            assert kept.status_code == 200
            assert kept.json() == {"predictions": expected(2.0, XS)}
        assert pool.predict("kept", XS, version=1).status_code == 200
        # On disk only: served from the files, loaded without the store.
        on_disk = pool.predict("disk", XS)
        assert on_disk.status_code == 200, on_disk.text
        assert on_disk.json() == {"predictions": expected(4.0, XS)}
        # Only what needs the store waits for it: 503 + Retry-After, never "not found".
        for model in ("cold", "no-such-model"):
            miss = pool.predict(model, XS)
            assert miss.status_code == 503, miss.text
            assert "cannot be reached" in miss.json()["error"]
            assert int(miss.headers["retry-after"]) >= 1
        assert pool.entry("disk", 1)["failure"] is None

        moto, _ = testing.start_moto(log_dir, port)  # back, empty: publish again
        client = testing.s3_client(endpoint)
        client.create_bucket(Bucket=bucket)
        upload_version(client, bucket, "kept", 1, a=2.0)
        upload_version(client, bucket, "cold", 1, a=3.0)
        served = pool.predict("cold", XS)
        assert served.status_code == 200
        assert served.json() == {"predictions": expected(3.0, XS)}
        assert pool.predict("kept", XS).status_code == 200
    finally:
        pool.stop()
        moto.stop()
