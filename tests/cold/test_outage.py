"""The store goes away: loaded models keep answering, misses get 503; back: misses served."""

from __future__ import annotations

from pathlib import Path

from base.procs import free_port
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
    # No timed polls here: a restarted moto is empty until the test uploads again.
    pool = start_pool(log_dir, tmp_path / "cache", f"s3://{bucket}/models", endpoint,
                      store_poll=3600)
    try:
        assert pool.predict("kept", XS).json() == {"predictions": expected(2.0, XS)}
        moto.stop()

        pool.poll()  # an unreachable store skips the round: nothing is unloaded
        for _ in range(3):
            kept = pool.predict("kept", XS)
            assert kept.status_code == 200
            assert kept.json() == {"predictions": expected(2.0, XS)}
        miss = pool.predict("cold", XS)
        assert miss.status_code == 503
        assert "error" in miss.json()
        assert pool.entry("kept", 1)["loaded"] is True

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
