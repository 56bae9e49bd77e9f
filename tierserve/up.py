"""`tierserve up`: router, cold pool and orchestrator in one command, on local defaults.

With no `--policy`, it uses `var/policy.yaml`, writing one on first run that
serves the local model folder `var/models` (seeded with a few tiny example
models when it does not exist yet), a SQLite file `var/tierserve.db`, and hot
models as local processes. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tierserve.native_logs import native_output_to
from tierserve.stack import Stack, StackConfig
from tierserve.up_hint import try_hint

EXAMPLE_MODELS = {"example-a": {1: 2.0}, "example-b": {1: 3.0, 2: 4.0}, "example-c": {1: 5.0}}

DEFAULT_POLICY = """\
# Written by `tierserve up` on its first run; edit it while tierserve runs.
# Reference: examples/policy.yaml. Check an edit: tierserve policy check {path}
store: {store}
interval: 2s
hot:
  max_models: 2
  promote: {{min_rate: 5, window: 30s}}
  demote: {{max_rate: 1, window: 2m}}
  cooldown: 2m
  pinned: []
cold:
  max_models: 50
  load_wait: 30s
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, help="policy YAML (default: VAR/policy.yaml, "
                                                    "created on first run)")
    parser.add_argument("--store", help="model store for a new default policy: a folder or "
                                        "s3://bucket/prefix (default: VAR/models)")
    parser.add_argument("--var", type=Path, default=Path("var"),
                        help="folder for the db, cache, logs and state (default: ./var)")
    parser.add_argument("--port", type=int, default=8501,
                        help="router's TF Serving REST port (0: any free)")
    parser.add_argument("--grpc-port", type=int, default=8500,
                        help="router's TF Serving gRPC port (0: any free)")
    parser.add_argument("--pool-port", type=int, default=8600, help="cold pool REST port")
    parser.add_argument("--pool-grpc-port", type=int, default=8601, help="cold pool gRPC port")
    parser.add_argument("--status-port", type=int, default=9102,
                        help="orchestrator /status and /metrics port")
    parser.add_argument("--cold-shards", type=int, default=None,
                        help="cold pools to start as shards of one cold tier; shard i serves on "
                             "--pool-port + 2i and --pool-grpc-port + 2i (default: the "
                             "policy's cold.shards, 1)")
    parser.add_argument("--runtime", choices=("process", "docker", "auto"), default="process",
                        help="where hot models run (default: local processes)")


def ensure_default_policy(var: Path, store: str | None) -> Path:
    path = var / "policy.yaml"
    if path.exists():
        return path
    var.mkdir(parents=True, exist_ok=True)
    if store is None:
        models = var / "models"
        if not models.exists():
            from tierserve.toy_models import write_model

            log = var / "logs" / "setup.log"
            print(f"creating example models in {models}: {', '.join(EXAMPLE_MODELS)} "
                  f"(TensorFlow's start-up lines go to {log})", flush=True)
            with native_output_to(log):
                for name, versions in EXAMPLE_MODELS.items():
                    write_model(models, name, versions)
        store = str(models.resolve())
    path.write_text(DEFAULT_POLICY.format(store=store, path=path))
    print(f"wrote a default policy to {path}")
    return path


def _pools_lines(stack: Stack) -> str:
    if len(stack.pool_urls) <= 1:
        return f"  cold pool:                {stack.pool_url}/admin/models"
    return "\n".join(f"  cold shard {name + ':':<14}{url}/admin/models"
                     for name, url in stack.pool_urls.items())


def run(args: argparse.Namespace) -> int:
    if args.cold_shards is not None and args.cold_shards < 1:
        print(f"tierserve up: --cold-shards must be at least 1, not {args.cold_shards}",
              file=sys.stderr)
        return 2
    policy = args.policy or ensure_default_policy(args.var, args.store)
    stack = Stack(StackConfig(policy_path=policy, var_dir=args.var, router_port=args.port,
                              router_grpc_port=args.grpc_port, pool_port=args.pool_port,
                              pool_grpc_port=args.pool_grpc_port, status_port=args.status_port,
                              runtime=args.runtime, router_access_log=True,
                              cold_shards=args.cold_shards))
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pools = "the cold pool" if stack.shards == 1 else f"{stack.shards} cold shards"
    print(f"starting {pools}, the router and the orchestrator (logs in {args.var / 'logs'}) ...",
          flush=True)
    try:
        stack.start(progress=lambda line: print(f"  {line}", flush=True))
    except (RuntimeError, TimeoutError) as exc:
        print(f"tierserve up: could not start: {exc}", file=sys.stderr)
        return 1
    print(f"""
tierserve is up (policy {policy}, logs in {args.var / 'logs'})
  router (TF Serving REST): {stack.router_url}/v1/models/<model>:predict
  router (TF Serving gRPC): {stack.router_grpc}
  dashboard:                {stack.router_url}/ui
  admin API docs:           {stack.router_url}/docs
{_pools_lines(stack)}
  orchestrator status:      {stack.status_url}/status
{try_hint(stack.policy.store, stack.router_url)}
Ctrl-C stops everything.""", flush=True)
    code = 0
    try:
        while not stop.wait(1.0):
            stack.check()
    except RuntimeError as exc:
        print(f"tierserve up: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("stopping ...", flush=True)
        stack.stop()
    return code
