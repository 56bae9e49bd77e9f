"""A pool one of whose own model servers dies stops (exit 1) instead of answering 503 for ever."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from tests.tierserve.proctree import cmdline, descendants
from tierserve import toy_models


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_pool_exits_when_its_model_server_dies(tmp_path: Path, toy_template: Path,
                                               log_dir: Path) -> None:
    toy_models.write_model(tmp_path / "store", "m", {1: 2.0})
    port = free_port()
    pool = ServerProcess(
        tierserve_command("pool", "--store", str(tmp_path / "store"),
                          "--cache-dir", str(tmp_path / "cache"), "--port", str(port)),
        ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_dir / f"pool-{port}.log")
    try:
        pool.wait_ready(timeout=120)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/m:predict",
                            json={"instances": [3.0]}, timeout=60)
        assert answer.json() == {"predictions": toy_models.expected(2.0, 0.0, [3.0])}
        servers = [pid for pid in descendants(pool.pid) if b"model-server" in cmdline(pid)]
        assert len(servers) == 2  # the default: two model servers
        for server in servers:  # below the pool (and hot servers) in CPU priority
            assert nice_of(server) == min(19, nice_of(pool.pid) + 5)
            assert b"--tensorflow_intra_op_parallelism" in cmdline(server)
        os.kill(servers[0], signal.SIGKILL)  # either one down stops the pool
        deadline = time.monotonic() + 60
        while pool.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pool.proc.returncode == 1, pool.log_tail()
        assert "model server exited" in pool.log_tail()
    finally:
        pool.stop()
