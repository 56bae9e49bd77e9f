"""`tierserve orchestrator`: run the promote/demote reconcile loop under a policy file."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from db.queries import Engine
from orchestrator.runtime import Runtime

log = logging.getLogger("tierserve.orchestrator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    add = parser.add_argument
    add("--policy", default=env("TIERSERVE_POLICY", "policy.yaml"), help="policy YAML file")
    add("--db-url", default=env("TIERSERVE_DB_URL", "sqlite:///var/tierserve.db"),
        help="SQLAlchemy URL of the db the router reads")
    add("--runtime", choices=("auto", "docker", "process", "swarm"),
        default=env("TIERSERVE_RUNTIME"),
        help="where hot models run (default: the policy's `runtime`, else auto); auto: Docker "
        "when an engine answers, else local processes; swarm: Swarm services (run on a "
        "manager node)")
    add("--scope", default=env("TIERSERVE_SCOPE", "default"),
        help="name of this deployment: only instances labelled with it are adopted or removed")
    add("--state-dir", default=env("TIERSERVE_STATE_DIR", "var/orchestrator"),
        help="process state files, logs and models synced for tensorflow/serving")
    add("--status-port", type=int, default=int(env("TIERSERVE_ORCHESTRATOR_PORT", "9102")),
        help="port of /status and /metrics on 127.0.0.1 (0: any free port, -1: none)")
    add("--status-host", default="127.0.0.1", help="address of /status and /metrics")
    add("--once", action="store_true", help="run one reconcile pass and exit")
    add("--stop-instances", action="store_true",
        help="stop and remove every instance of this scope, then exit")


def policy_runtime(path: Path) -> str:
    """The policy file's `runtime` (auto when the file cannot be read yet: the loop reports
    why)."""
    from policies.loader import PolicyError, load_policy

    try:
        return load_policy(path).policy.runtime
    except PolicyError:
        return "auto"


def make_runtime(kind: str, state_dir: Path, scope: str) -> Runtime:
    if kind == "swarm":
        from base.errors import TierserveError
        from orchestrator.swarm_runtime import SwarmRuntime

        try:
            return SwarmRuntime(state_dir, scope)
        except TierserveError as exc:
            raise SystemExit(f"runtime swarm: {exc.message}") from None
    if kind in ("auto", "docker"):
        from orchestrator.docker_runtime import DockerRuntime, docker_available

        reason = docker_available()
        if reason is None:
            return DockerRuntime(state_dir, scope)
        if kind == "docker":
            raise SystemExit(f"no Docker engine answers: {reason}")
        log.info("no Docker engine answers (%s): running hot models as local processes", reason)
    from orchestrator.process_runtime import ProcessRuntime

    return ProcessRuntime(state_dir / "processes", scope)


def stop_instances(runtime: Runtime, engine: Engine) -> int:
    """Route every instance of the scope cold, then stop it (the stack's clean shutdown)."""
    from db import queries

    for inst in runtime.list_instances():
        queries.remove_placement(engine, inst.model)
        runtime.stop(inst)
        queries.record_event(engine, inst.model, "stop", "orchestrator --stop-instances",
                             f"stopped {inst.id[:12]}")
        print(f"stopped {inst.model} ({inst.id[:12]})")
    runtime.close()
    engine.dispose()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe otherwise
    from db.queries import make_engine
    from orchestrator.loop import Orchestrator
    from orchestrator.status import Metrics, StatusServer
    from policies.watch import PolicyWatcher

    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    kind = args.runtime or policy_runtime(Path(args.policy))
    runtime = make_runtime(kind, state_dir, args.scope)
    engine = make_engine(args.db_url)
    if args.stop_instances:
        return stop_instances(runtime, engine)
    metrics = Metrics()
    orch = Orchestrator(engine, PolicyWatcher(Path(args.policy)), runtime, metrics)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if args.status_port >= 0 and not args.once:
        server = StatusServer(orch.status, metrics, args.status_host, args.status_port).start()
    log.info("orchestrator up: runtime %s, scope %s, policy %s", runtime.name, args.scope,
             args.policy)
    try:
        if args.once:
            report = orch.reconcile_once()
            print(report)
            failed = "error" in report or "skipped" in report
            return 1 if failed or orch.watcher.last_error is not None else 0
        orch.run_forever(stop)
    finally:
        if server is not None:
            server.stop()
        orch.close()  # hot instances keep running: the next orchestrator adopts them
        engine.dispose()
    return 0
