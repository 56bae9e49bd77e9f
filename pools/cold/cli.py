"""`tierserve pool`: run the cold pool (and, unless attached, its own model server)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from base.admin_auth import TOKEN_ENV
from base.durations import duration_arg, duration_help
from pools.cold.config import PoolConfig

if TYPE_CHECKING:
    from pools.cold.modelserver_proc import ModelServerChild


def _default(field: str) -> float:
    # The help says the default the settings really use, from the one place it is set.
    return float(PoolConfig.model_fields[field].default)


# flag -> PoolConfig field; a flag left out falls back to TIERSERVE_POOL_<FIELD>, then defaults.
_FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--store", "store_uri", str,
     "model store URI: s3://bucket/prefix or a local folder (required)"),
    ("--cache-dir", "cache_dir", Path, "local disk cache folder (required)"),
    ("--memory-models", "memory_models", int,
     "most model versions loaded at once (default 20)"),
    ("--memory-bytes", "memory_bytes", int,
     "most bytes (on-disk size) loaded at once (default: no limit)"),
    ("--disk-models", "disk_models", int,
     "most model versions in the disk cache (default 200)"),
    ("--disk-bytes", "disk_bytes", int, "most bytes in the disk cache (default: no limit)"),
    ("--load-wait", "load_wait_s", duration_arg,
     duration_help("how long a request waits for a load, then 503", _default("load_wait_s"))),
    ("--failure-ttl", "failure_ttl_s", duration_arg,
     duration_help("how long a failed load is answered at once", _default("failure_ttl_s"))),
    ("--store-poll", "store_poll_s", duration_arg,
     duration_help("time between store listings, live reload", _default("store_poll_s"))),
    ("--max-parallel-loads", "max_parallel_loads", int, "downloads+loads at once (default 4)"),
    ("--max-queued-per-model", "max_queued_per_model", int,
     "requests waiting for one model's load; past it, 503 at once (default 256)"),
    ("--max-queued", "max_queued", int,
     "requests waiting for any load; past it, 503 at once (default 1024)"),
    ("--model-servers", "model_servers", int,
     "model-server processes the pool starts; predictions in one never wait for a load "
     "in another (default 2)"),
    ("--model-server-nice", "model_server_nice", int,
     "CPU priority steps below the pool for its model servers, so hot servers win the CPU "
     "(default 5)"),
    ("--model-server-tf-threads", "model_server_tf_threads", int,
     "TensorFlow intra-op threads per model server (default: CPUs / model servers)"),
    ("--model-server-gc-interval", "model_server_gc_interval_s", duration_arg,
     duration_help("time between the model servers' collections of unloaded models' memory",
                   "the model server's, 10s")),
    ("--eviction-policy", "eviction_policy", str,
     "eviction policy name in pools.eviction (default: its recommended one)"),
    ("--model-server-grpc", "model_server_grpc", str,
     "attach to this running model server's gRPC address, host:port (default: start one)"),
    ("--model-server-rest", "model_server_rest", str,
     "and its REST URL, http://host:port; both or neither (default: start one)"),
    ("--max-body-bytes", "max_body_bytes", int,
     "request bodies larger than this get 413 unread (default 10 MiB, as the router)"),
    ("--labels-file", "labels_file", Path,
     "YAML/JSON file whose top-level `labels: {model: {label: version}}` the pool serves "
     "under /v1/models/{m}/labels/{l}; the policy file will do; re-read when it changes "
     "(default: no labels)"),
    ("--host", "host", str, "address to serve on (default 127.0.0.1)"),
    ("--port", "port", int, "port to serve TF Serving's REST API on (default 8600)"),
    ("--grpc-port", "grpc_port", int, "port to serve TF Serving's gRPC API on (default 8601)"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, kind, help_text in _FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)
    parser.add_argument("--log-level", default="info", help="logging level")
    parser.epilog = ("A flag left out is read from env TIERSERVE_POOL_<FIELD>, "
                     "e.g. TIERSERVE_POOL_CACHE_DIR.\n"
                     f"/admin needs `Authorization: Bearer <token>` when env {TOKEN_ENV} is "
                     "set, and answers loopback clients only when it is not.")


def config_from_args(args: argparse.Namespace) -> PoolConfig:
    given = {dest: getattr(args, dest) for _, dest, _, _ in _FLAGS
             if getattr(args, dest, None) is not None}
    return PoolConfig(**given)


def settings_error(exc: ValidationError) -> str:
    """One line naming the flags at fault, instead of pydantic's multi-line dump."""
    flags = {dest: flag for flag, dest, _, _ in _FLAGS}
    missing: list[tuple[str, str]] = []
    wrong: list[str] = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = flags.get(field, field)
        if err["type"] == "missing":
            missing.append((flag, f"TIERSERVE_POOL_{field.upper()}"))
        elif field:
            wrong.append(f"{flag}: {err['msg']}")
        else:
            wrong.append(str(err["msg"]).removeprefix("Value error, "))
    parts = wrong
    if missing:
        names = " and ".join(flag for flag, _ in missing)
        envs = ", ".join(env for _, env in missing)
        parts = [f"{names} {'is' if len(missing) == 1 else 'are'} required (or env {envs})",
                 *wrong]
    return "tierserve pool: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded request
    try:
        config = config_from_args(args)
    except ValidationError as exc:
        print(settings_error(exc), file=sys.stderr)
        return 2
    children: list[ModelServerChild] = []
    died: list[int] = []
    servers: list[uvicorn.Server] = []

    def on_child_exit(code: int) -> None:
        # Without its model servers the pool can only answer 503: stop (exit 1) so that
        # whatever supervises it restarts it. The disk cache survives the restart.
        logging.getLogger(__name__).error(
            "the pool's model server exited with %s; stopping the pool", code)
        died.append(code)
        for server in servers:
            server.should_exit = True  # uvicorn's graceful shutdown, checked every 0.1 s

    try:
        if config.attached:
            addresses = [(str(config.model_server_grpc), str(config.model_server_rest))]
        else:
            children.extend(start_model_servers(config))
            addresses = [(c.grpc_address, c.rest_url) for c in children]
            for child in children:
                child.watch(on_child_exit)
        from pools.cold.app import create_app
        from pools.cold.modelserver_client import ModelServerClient
        from pools.cold.pool import ColdPool
        from pools.store import open_store

        pool = ColdPool(config, open_store(config.store_uri),
                        [ModelServerClient(grpc) for grpc, _ in addresses])
        app = create_app(pool, [rest for _, rest in addresses], config.grpc_port,
                         admin_token=os.environ.get(TOKEN_ENV) or None)
        servers.append(uvicorn.Server(uvicorn.Config(
            app, host=config.host,
            port=config.port, log_level="warning", lifespan="on")))
        if not died:
            servers[0].run()
    finally:
        for child in children:
            child.stop()
    return 1 if died else 0


def start_model_servers(config: PoolConfig) -> list[ModelServerChild]:
    """The pool's own model servers, started side by side, each ready."""
    from pools.cold.modelserver_proc import ModelServerChild, tf_threads

    threads = config.model_server_tf_threads or tf_threads(config.model_servers)
    children: list[ModelServerChild] = []
    try:
        for _ in range(config.model_servers):
            children.append(ModelServerChild(load_threads=config.max_parallel_loads,
                                             nice=config.model_server_nice, threads=threads,
                                             gc_interval_s=config.model_server_gc_interval_s))
        for child in children:
            child.wait_ready()
    except BaseException:
        for child in children:
            child.stop()
        raise
    return children
