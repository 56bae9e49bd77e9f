"""`tierserve pool`: run the cold pool (and, unless attached, its own model server)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pools.cold.config import PoolConfig

# flag -> PoolConfig field; a flag left out falls back to TIERSERVE_POOL_<FIELD>, then defaults.
_FLAGS: list[tuple[str, str, type, str]] = [
    ("--store", "store_uri", str, "model store URI: s3://bucket/prefix or a local folder"),
    ("--cache-dir", "cache_dir", Path, "local disk cache folder"),
    ("--memory-models", "memory_models", int, "most model versions loaded at once"),
    ("--memory-bytes", "memory_bytes", int, "most bytes (on-disk size) loaded at once"),
    ("--disk-models", "disk_models", int, "most model versions in the disk cache"),
    ("--disk-bytes", "disk_bytes", int, "most bytes in the disk cache"),
    ("--load-wait", "load_wait_s", float, "seconds a request waits for a load, then 503"),
    ("--failure-ttl", "failure_ttl_s", float, "seconds a failed load is answered at once"),
    ("--store-poll", "store_poll_s", float, "seconds between store listings (live reload)"),
    ("--max-parallel-loads", "max_parallel_loads", int, "downloads+loads at once"),
    ("--eviction-policy", "eviction_policy", str, "eviction policy name (pools.eviction)"),
    ("--model-server-grpc", "model_server_grpc", str,
     "attach to this running model server's gRPC address (host:port)"),
    ("--model-server-rest", "model_server_rest", str,
     "and its REST URL (http://host:port); both or neither"),
    ("--host", "host", str, "address to serve on"),
    ("--port", "port", int, "port to serve on"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, kind, help_text in _FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)
    parser.add_argument("--log-level", default="info")


def config_from_args(args: argparse.Namespace) -> PoolConfig:
    given = {dest: getattr(args, dest) for _, dest, _, _ in _FLAGS
             if getattr(args, dest, None) is not None}
    return PoolConfig(**given)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded request
    from pydantic import ValidationError

    try:
        config = config_from_args(args)
    except ValidationError as exc:
        print(f"tierserve pool: bad settings:\n{exc}", file=sys.stderr)
        return 2
    child = None
    died: list[int] = []
    servers: list[uvicorn.Server] = []
    if config.attached:
        grpc_address, rest_url = str(config.model_server_grpc), str(config.model_server_rest)
    else:
        from pools.cold.modelserver_proc import ModelServerChild

        child = ModelServerChild(load_threads=config.max_parallel_loads).wait_ready()
        grpc_address, rest_url = child.grpc_address, child.rest_url

        def on_child_exit(code: int) -> None:
            # Without its model server the pool can only answer 503: stop (exit 1) so that
            # whatever supervises it restarts it. The disk cache survives the restart.
            logging.getLogger(__name__).error(
                "the pool's model server exited with %s; stopping the pool", code)
            died.append(code)
            for server in servers:
                server.should_exit = True  # uvicorn's graceful shutdown, checked every 0.1 s

        child.watch(on_child_exit)
    try:
        from pools.cold.app import create_app
        from pools.cold.modelserver_client import ModelServerClient
        from pools.cold.pool import ColdPool
        from pools.store import open_store

        pool = ColdPool(config, open_store(config.store_uri), ModelServerClient(grpc_address))
        servers.append(uvicorn.Server(uvicorn.Config(
            create_app(pool, rest_url), host=config.host, port=config.port,
            log_level="warning", lifespan="on")))
        if not died:
            servers[0].run()
    finally:
        if child is not None:
            child.stop()
    return 1 if died else 0
