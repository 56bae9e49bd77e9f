"""A real orchestrator (`tierserve orchestrator` subprocess) over a SQLite db, a policy file and
a real runtime (Docker or local processes), plus the waits and checks the scenarios share."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from base.procs import ServerProcess, free_port, tierserve_command
from db import queries
from db.queries import CountDelta, Engine, make_engine
from orchestrator.runtime import Instance, Runtime

T = TypeVar("T")


def make_runtime(kind: str, root: Path, scope: str,
                 **limits: Any) -> tuple[Runtime, dict[str, Any]]:
    """The runtime under test and the policy's container settings for it.

    Docker needs the locally built test image: request the `test_image` fixture first; Swarm
    the `swarm_engine` fixture too.
    """
    if kind in ("docker", "swarm"):
        from orchestrator.docker_runtime import DockerRuntime
        from orchestrator.swarm_runtime import SwarmRuntime
        from testkit import docker_image as testimage

        container = testimage.container_settings(**limits).model_dump(mode="json")
        runtime = SwarmRuntime if kind == "swarm" else DockerRuntime
        return runtime(root / "state", scope), container
    from orchestrator.process_runtime import ProcessRuntime

    # Container-only settings do not apply to local processes.
    return ProcessRuntime(root / "state" / "processes", scope), {"image": "unused"}


def hot_extras(kind: str) -> dict[str, Any]:
    """The policy's hot.swarm for `kind`: Swarm services publish in host mode and are reached
    on 127.0.0.1 (never the node's or a container's other addresses)."""
    if kind != "swarm":
        return {}
    return {"swarm": {"reach": "published", "published_host": "127.0.0.1",
                      "restart": {"delay": "1s"}}}


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120.0,
             every: float = 0.25) -> T:
    """Poll `check` until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the thing may be between states
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def policy_dict(store: Path, container: dict[str, Any], **hot: Any) -> dict[str, Any]:
    return {
        "store": str(store),
        "interval": "500ms",
        "hot": {
            "max_models": 2,
            "promote": {"min_rate": 1, "window": "10s"},
            "demote": {"max_rate": 0.5, "window": "20s"},
            "cooldown": "2s",
            "drain": "1s",
            "start_timeout": "300s",
            "restart_backoff": {"initial": "1s", "max": "5s"},
            "container": container,
            **hot,
        },
    }


class World:
    def __init__(self, root: Path, runtime: Runtime, runtime_flag: str, scope: str,
                 policy: dict[str, Any], log_dir: Path, db_url: str | None = None) -> None:
        self.root = root
        self.runtime = runtime
        self.runtime_flag = runtime_flag
        self.scope = scope
        self.log_dir = log_dir
        self.policy_path = root / "policy.yaml"
        self.db_url = db_url or f"sqlite:///{root / 'tierserve.db'}"
        self.engine: Engine = make_engine(self.db_url)
        self.status_port = free_port()
        self.proc: ServerProcess | None = None
        self._writes = 0
        self._busy: set[str] = set()
        self._feeder: threading.Thread | None = None
        self._stop_feeding = threading.Event()
        self.write_policy(policy)

    # -- the policy file -----------------------------------------------------------------

    def write_policy(self, policy: dict[str, Any] | str) -> None:
        text = policy if isinstance(policy, str) else yaml.safe_dump(policy, sort_keys=False)
        self.policy_path.write_text(text)
        self._writes += 1
        st = self.policy_path.stat()  # a visible change even with coarse mtimes
        os.utime(self.policy_path, ns=(st.st_atime_ns, st.st_mtime_ns + self._writes * 10**9))

    # -- the orchestrator process --------------------------------------------------------

    def start_orchestrator(self) -> None:
        self.proc = ServerProcess(
            tierserve_command("orchestrator", "--policy", str(self.policy_path),
                              "--db-url", self.db_url, "--runtime", self.runtime_flag,
                              "--scope", self.scope, "--state-dir", str(self.root / "state"),
                              "--status-port", str(self.status_port)),
            ready_url=f"http://127.0.0.1:{self.status_port}/healthz",
            log_path=self.log_dir / f"orchestrator-{self.scope}.log")
        self.proc.wait_ready(timeout=60)

    def stop_orchestrator(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def status(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.status_port}/status", timeout=5).json()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.status_port}/metrics/", timeout=5).text

    # -- observations --------------------------------------------------------------------

    def traffic(self, model: str, per_flush: int = 50) -> None:
        """Keep `model` busy: counts flushed every 0.5 s as the router would (~100 req/s),
        so its rate stays high across minute boundaries until the world closes."""
        self._busy.add(model)
        self._flush(per_flush)
        if self._feeder is None:
            self._feeder = threading.Thread(target=self._feed, args=(per_flush,), daemon=True)
            self._feeder.start()

    def _flush(self, count: int) -> None:
        minute = int(time.time() // 60)
        queries.add_counts(self.engine, [CountDelta(model=m, minute=minute, count=count)
                                         for m in sorted(self._busy)])

    def _feed(self, count: int) -> None:
        while not self._stop_feeding.wait(0.5):
            self._flush(count)

    def instances(self, model: str | None = None) -> list[Instance]:
        return [i for i in self.runtime.list_instances() if model is None or i.model == model]

    def hot_endpoint(self, model: str) -> str | None:
        for p in queries.list_placements(self.engine):
            if p.model == model and p.pool == "hot" and p.healthy:
                return p.endpoint
        return None

    def events(self, model: str | None = None) -> list[tuple[str, str]]:
        return [(e.action, e.outcome)
                for e in reversed(queries.list_events(self.engine, 1000, model))]

    def predict(self, endpoint: str, model: str, xs: list[float]) -> list[float]:
        resp = httpx.post(f"{endpoint}/v1/models/{model}:predict", json={"instances": xs},
                          timeout=10)
        resp.raise_for_status()
        return list(resp.json()["predictions"])

    def log_tail(self) -> str:
        return self.proc.log_tail(60) if self.proc else "(orchestrator not running)"

    def close(self) -> None:
        self._stop_feeding.set()
        if self._feeder is not None:
            self._feeder.join(timeout=5)
        self.stop_orchestrator()
        for inst in self.runtime.list_instances():
            self.runtime.stop(inst, timeout=5)
        self.runtime.close()
        self.engine.dispose()
