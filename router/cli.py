"""`tierserve router`: run the router under uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any

from base.durations import duration_arg, duration_help
from router.config import ENV_PREFIX, RouterConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(level: str) -> dict[str, Any]:
    """The router's loggers and uvicorn's (errors, access) to stderr in one format, as in the
    other parts' logs; `tierserve up` sends stderr to var/logs/router.log."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain",
               "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": LOG_FORMAT}},
            "handlers": {"default": handler},
            "root": {"handlers": ["default"], "level": level.upper()},
            # one line per forwarded request otherwise
            "loggers": {"httpx": {"level": "WARNING"}}}


def _default(field: str) -> float:
    # The help says the default the settings really use, from the one place it is set.
    return float(RouterConfig.model_fields[field].default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db-url", dest="db_url",
                        help="SQLAlchemy URL (default sqlite:///var/tierserve.db; "
                             "env TIERSERVE_DB_URL)")
    parser.add_argument("--cold-url", dest="cold_url",
                        help="cold pool base URL (default http://127.0.0.1:8600; "
                             "env TIERSERVE_COLD_URL)")
    parser.add_argument("--cold-grpc", dest="cold_grpc",
                        help="cold pool gRPC address, host:port (default 127.0.0.1:8601; "
                             "env TIERSERVE_COLD_GRPC)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TF Serving REST port (default 8501)")
    parser.add_argument("--grpc-port", dest="grpc_port", type=int,
                        help="TF Serving gRPC port (default 8500)")
    parser.add_argument("--admin-token", dest="admin_token",
                        help="bearer token for /admin (default: none, and /admin answers loopback "
                             "clients only; better: env TIERSERVE_ADMIN_TOKEN)")
    parser.add_argument("--sticky-header", dest="sticky_header",
                        help="header (gRPC: metadata key, in lower case) that pins an A/B "
                             "variant (default X-User-Id)")
    parser.add_argument("--flush-interval", dest="flush_interval", type=duration_arg,
                        help=duration_help("time between count flushes",
                                           _default("flush_interval")))
    parser.add_argument("--poll-interval", dest="poll_interval", type=duration_arg,
                        help=duration_help("time between routing version polls",
                                           _default("poll_interval")))
    parser.add_argument("--shard-stale-after", dest="shard_stale_after", type=duration_arg,
                        help=duration_help("time after its last heartbeat a cold shard is "
                                           "skipped and its models go to their next shard",
                                           _default("shard_stale_after")))
    parser.add_argument("--max-body-bytes", dest="max_body_bytes", type=int,
                        help="largest request body (default 10 MiB)")
    parser.add_argument("--connect-timeout", dest="connect_timeout", type=duration_arg,
                        help=duration_help("time to connect to a backend",
                                           _default("connect_timeout")))
    parser.add_argument("--request-timeout", dest="request_timeout", type=duration_arg,
                        help=duration_help("time a backend may take to answer",
                                           _default("request_timeout")))
    parser.add_argument("--max-in-flight", dest="max_in_flight", type=int,
                        help="requests answered at once, per process; past it 503 with "
                             "Retry-After (default 256)")
    parser.add_argument("--forward-headers", dest="forward_headers",
                        help="comma-separated request headers passed to the backend besides "
                             "Content-Type, Accept, Content-Encoding (default X-Request-Id,"
                             "traceparent,tracestate; '' for none; Authorization only if named "
                             "here; env TIERSERVE_FORWARD_HEADERS)")
    parser.add_argument("--workers", type=int, default=1,
                        help="router processes sharing the port (each flushes its own counts "
                             "and serves its own /metrics)")
    parser.add_argument("--log-level", default="info",
                        help="uvicorn's log level: start-up, errors")
    parser.add_argument("--access-log", action="store_true",
                        help="one log line per request (off by default: it costs CPU per request)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from router.app import create_app

    overrides = {name: getattr(args, name, None) for name in RouterConfig.model_fields}
    config = RouterConfig.load(overrides)
    common: dict[str, Any] = {"host": config.host, "port": config.port,
                              "log_level": args.log_level, "access_log": args.access_log,
                              "log_config": log_config(args.log_level),
                              "timeout_graceful_shutdown": 10}
    if args.workers > 1:
        config = config.model_copy(update={"grpc_reuse_port": True})
        # Worker processes rebuild the settings from the environment.
        for name, value in config.model_dump().items():
            if isinstance(value, tuple):  # "," is an empty list; "" would mean the default
                value = ",".join(value) or ","
            if value is not None:
                os.environ[ENV_PREFIX + name.upper()] = str(value)
        uvicorn.run("router.app:app_from_env", factory=True, workers=args.workers, **common)
    else:
        uvicorn.run(create_app(config), **common)
    return 0
