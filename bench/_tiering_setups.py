"""The three set-ups `bench tiering` compares, started as a user would run them.

(a) the seed's design: one shared caching pool, LRU, no hot tier (Cortex's
    multi-model caching): `tierserve pool --eviction-policy lru` alone;
(b) the same pool with frequency-aware eviction (tinylfu), no hot tier;
(c) tierserve in full: `Stack` (router, cold pool, orchestrator promoting to
    hot model-server processes; SQLite; the local model folder).

All three read the same policy file, so the pools have the same bounds; only
the eviction policy and the hot tier differ. Only public interfaces are used:
CLI flags, the HTTP API and `tierserve.stack`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from base.admin_auth import TOKEN_ENV, bearer_headers
from base.procs import ServerProcess, free_port, tierserve_command
from policies.loader import load_policy
from tierserve.demo import demo_policy
from tierserve.stack import Stack, StackConfig, pool_flags

LABELS = {"a": "seed design: one pool, LRU, no hot tier",
          "b": "one pool, tinylfu, no hot tier",
          "c": "tierserve in full (router + pool + hot tier)"}

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# The admin calls carry an exported TIERSERVE_ADMIN_TOKEN, which the started parts inherit.
ADMIN = bearer_headers(os.environ.get(TOKEN_ENV))


def write_policy(path: Path, store: Path, slots: int, rate: float, eviction: str | None,
                 hot_models: int = 3, load_wait: float = 30.0) -> Path:
    # The demo's policy, with the cold slots and eviction as asked.
    path.write_text(demo_policy(store, rate, slots=slots, hot_models=hot_models,
                                load_wait=load_wait, eviction=eviction))
    return path


@dataclass
class Running:
    name: str
    url: str  # where requests go: the pool (a, b) or the router (c)
    roots: dict[str, int]  # role -> pid of the processes it started itself
    stack: Stack | None = None
    procs: list[ServerProcess] = field(default_factory=list)

    def check(self) -> None:
        if self.stack is not None:
            self.stack.check()
        for proc in self.procs:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"set-up {self.name}: pool exited with "
                                   f"{proc.proc.returncode}:\n{proc.log_tail(20)}")

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        for proc in self.procs:
            proc.stop()

    def hot_models(self) -> list[str]:
        """Models the router sends to a hot server now (none outside set-up c)."""
        if self.stack is None:
            return []
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            routing = httpx.get(f"{self.url}/admin/routing", headers=ADMIN, timeout=10).json()
            return sorted(p["model"] for p in routing["placements"] if p["pool"] == "hot")
        return []

    def star_moves(self, star: str, since: float) -> dict[str, bool]:
        """Was `star` promoted (routed hot) and then demoted (routed cold) since `since`?"""
        if self.stack is None:
            return {}
        events: list[dict[str, Any]] = []
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            events = httpx.get(f"{self.url}/admin/events", headers=ADMIN,
                               params={"model": star, "limit": 500}, timeout=10).json()["events"]
        events = sorted((e for e in events if e["ts"] >= since), key=lambda e: e["ts"])
        promoted = [e["ts"] for e in events if e["action"] == "route_hot"]
        demoted = [e["ts"] for e in events
                   if e["action"] == "demote" and e["outcome"] == "routed cold"]
        return {"promoted": bool(promoted),
                "demoted": bool(promoted and any(d > promoted[0] for d in demoted))}


def start_all(names: list[str], work: Path, store: Path, slots: int, rate: float,
              timeout: float = 180.0) -> dict[str, Running]:
    """Start the named set-ups side by side (their start-ups overlap) and wait for each."""
    running: dict[str, Running] = {}
    try:
        for name in names:
            var = work / name
            var.mkdir(parents=True, exist_ok=True)
            if name in ("a", "b"):
                policy = write_policy(var / "policy.yaml", store, slots, rate,
                                      "lru" if name == "a" else "tinylfu")
                port = free_port()
                proc = ServerProcess(
                    tierserve_command("pool", "--store", str(store.resolve()),
                                      "--cache-dir", str(var / "cache"), "--port", str(port),
                                      "--grpc-port", str(free_port()),
                                      "--log-level", "warning",
                                      *pool_flags(load_policy(policy).policy)),
                    ready_url=f"http://127.0.0.1:{port}/healthz", log_path=var / "pool.log",
                    env=ENV)
                running[name] = Running(name, f"http://127.0.0.1:{port}", {"pool": proc.pid},
                                        procs=[proc])
            elif name == "c":
                policy = write_policy(var / "policy.yaml", store, slots, rate, None)
                stack = Stack(StackConfig(policy_path=policy, var_dir=var, router_port=0,
                                          router_grpc_port=0, pool_port=0, pool_grpc_port=0,
                                          status_port=0, scope=f"bench-{name}",
                                          flush_interval=0.5, extra_env=ENV))
                stack.start(timeout=timeout)
                running[name] = Running(name, stack.router_url,
                                        {role: p.pid for role, p in stack.procs.items()},
                                        stack=stack)
            else:
                raise ValueError(f"unknown set-up {name!r}: choose from {sorted(LABELS)}")
        for setup in running.values():
            for proc in setup.procs:
                proc.wait_ready(timeout=timeout)
    except BaseException:
        for setup in running.values():
            setup.stop()
        raise
    return running
