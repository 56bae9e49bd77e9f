"""`--model-server-grpc/--model-server-rest`: drive a model server the pool did not start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args
from tests.cold.conftest import Pool, expected, upload_version

XS = [1.0, -1.0]


def test_attached_model_server(pool_factory: Callable[..., Pool], s3: Any, module_bucket: str,
                               log_dir: Path) -> None:
    upload_version(s3, module_bucket, "attached", 1, a=9.0)
    grpc_port, rest_port = free_port(), free_port()
    server = ServerProcess(
        tierserve_command("model-server", *model_server_args(port=grpc_port,
                                                             rest_api_port=rest_port)),
        f"http://127.0.0.1:{rest_port}/v1/models/probe", log_path=log_dir / "attached-ms.log",
        env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        server.wait_ready(timeout=120, expect=(404,))
        pool = pool_factory("attach-cache", model_server_grpc=f"127.0.0.1:{grpc_port}",
                            model_server_rest=f"http://127.0.0.1:{rest_port}")
        assert pool.predict("attached", XS).json() == {"predictions": expected(9.0, XS)}
        # The model server itself now serves it, from the pool's cache folder.
        direct = httpx.get(f"http://127.0.0.1:{rest_port}/v1/models/attached", timeout=10)
        assert direct.json()["model_version_status"][0]["state"] == "AVAILABLE"
        pool.stop()
        assert server.proc.poll() is None  # an attached server outlives the pool
    finally:
        server.stop()
