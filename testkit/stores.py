"""Real components for tests and benchmarks: moto's standalone S3 server, toy stores.

Used by `tests/` and `bench/`; nothing on the request path imports it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from base.procs import ServerProcess, free_port
from tierserve import toy_models

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_moto(log_dir: Path, port: int | None = None) -> tuple[ServerProcess, str]:
    """moto's standalone S3 server over HTTP on 127.0.0.1; returns (process, endpoint URL)."""
    port = port or free_port()
    moto = Path(sys.executable).parent / "moto_server"
    exe = str(moto) if moto.exists() else shutil.which("moto_server") or "moto_server"
    proc = ServerProcess([exe, "-H", "127.0.0.1", "-p", str(port)],
                         ready_url=f"http://127.0.0.1:{port}/moto-api/",
                         log_path=log_dir / f"moto-{port}.log")
    proc.wait_ready(timeout=30)
    return proc, f"http://127.0.0.1:{port}"


def s3_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=S3_ENV["AWS_DEFAULT_REGION"],
                        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])


def upload_tree(client: Any, bucket: str, prefix: str, root: Path) -> int:
    """Upload every file under `root` to `s3://bucket/prefix/<relative path>`; returns the count."""
    count = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = "/".join(p for p in (prefix.strip("/"), path.relative_to(root).as_posix()) if p)
            client.upload_file(str(path), bucket, key)
            count += 1
    return count


def make_local_store(root: Path, models: dict[str, dict[int, float]], b: float = 0.0,
                     pad_bytes: int = 0) -> Path:
    """A local store folder holding `{name: {version: a}}` toy models (`y = a*x + b`)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, versions in models.items():
        toy_models.write_model(root, name, versions, b=b, pad_bytes=pad_bytes)
    return root
