"""The whole system as local processes: cold pool, router and orchestrator.

Used by `tierserve up` and `tierserve demo`. Each part runs as its own child
process (the same commands a deployment runs), so a crash of one is seen and
reported, and stopping the stack leaves no orphan: the orchestrator's hot
model servers outlive the orchestrator by design (a restarted one adopts
them), so the stack stops them explicitly when it ends.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from base.procs import ServerProcess, free_port, tierserve_command
from policies.loader import load_policy
from policies.schema import Policy


@dataclass
class StackConfig:
    policy_path: Path
    var_dir: Path
    router_port: int = 8501  # REST; TF Serving's ports
    router_grpc_port: int = 8500
    pool_port: int = 8600
    pool_grpc_port: int = 8601
    status_port: int = 9102
    runtime: str = "process"
    admin_token: str | None = None
    scope: str = "up"
    flush_interval: float = 1.0
    # One line per request in the router's log: on for `up`; off where latency is measured.
    router_access_log: bool = False
    # Cold pools to start; None: the policy's `cold.shards`. Above 1 each registers as a
    # shard (`tierserve pool --shard-name`) in the db; shard i serves on pool_port + 2i and
    # pool_grpc_port + 2i.
    cold_shards: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{(self.var_dir / 'tierserve.db').resolve()}"


def _port(preferred: int) -> int:
    return preferred if preferred > 0 else free_port()


def pool_flags(policy: Policy) -> list[str]:
    """The cold pool's bounds as the policy states them."""
    flags = ["--load-wait", str(policy.cold.load_wait)]
    if policy.cold.max_models:
        flags += ["--memory-models", str(policy.cold.max_models),
                  "--disk-models", str(max(200, 4 * policy.cold.max_models))]
    if policy.cold.max_bytes:
        # The pool bounds loaded bytes by the disk bound unless told otherwise.
        flags += ["--disk-bytes", str(int(policy.cold.max_bytes)),
                  "--memory-bytes", str(int(policy.cold.max_bytes))]
    if policy.cold.eviction:
        flags += ["--eviction-policy", policy.cold.eviction]
    if policy.cold.model_server_nice is not None:
        flags += ["--model-server-nice", str(policy.cold.model_server_nice)]
    return flags


class Stack:
    """Start with `start()`, stop with `stop()`; `check()` raises when a part died."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.policy = load_policy(config.policy_path).policy
        self.procs: dict[str, ServerProcess] = {}
        self.router_url = ""
        self.router_grpc = ""  # host:port
        self.pool_url = ""  # the first (or only) cold pool: the router's --cold-url
        self.pool_grpc = ""  # its gRPC front, host:port: the router's --cold-grpc
        self.pool_urls: dict[str, str] = {}  # every cold pool by process name
        self.status_url = ""

    def _log(self, name: str) -> Path:
        logs = self.config.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name}.log"

    def start(self, timeout: float = 120.0,
              progress: Callable[[str], None] | None = None) -> Stack:
        """Start every part side by side; `progress` hears one line as each part is ready."""
        cfg = self.config
        cfg.var_dir.mkdir(parents=True, exist_ok=True)
        env = dict(cfg.extra_env)
        if cfg.admin_token:
            env["TIERSERVE_ADMIN_TOKEN"] = cfg.admin_token
        router_port, router_grpc_port = _port(cfg.router_port), _port(cfg.router_grpc_port)
        status_port = _port(cfg.status_port)
        self.router_url = f"http://127.0.0.1:{router_port}"
        self.router_grpc = f"127.0.0.1:{router_grpc_port}"
        self.status_url = f"http://127.0.0.1:{status_port}"
        try:
            self._start_pools(env)
            self.procs["router"] = ServerProcess(
                tierserve_command("router", "--db-url", cfg.db_url, "--cold-url", self.pool_url,
                                  "--cold-grpc", self.pool_grpc, "--port", str(router_port),
                                  "--grpc-port", str(router_grpc_port),
                                  "--flush-interval", str(cfg.flush_interval),
                                  *(["--access-log"] if cfg.router_access_log else [])),
                ready_url=f"{self.router_url}/healthz", log_path=self._log("router"), env=env)
            self.procs["orchestrator"] = ServerProcess(
                tierserve_command("orchestrator", "--policy", str(cfg.policy_path),
                                  "--db-url", cfg.db_url, "--runtime", cfg.runtime,
                                  "--scope", cfg.scope,
                                  "--state-dir", str(cfg.var_dir / "orchestrator"),
                                  "--status-port", str(status_port)),
                ready_url=f"{self.status_url}/status", log_path=self._log("orchestrator"),
                env=env)
            started = time.monotonic()
            urls = {**self.pool_urls, "router": self.router_url,
                    "orchestrator": self.status_url}
            for name, proc in self.procs.items():
                proc.wait_ready(timeout=timeout)
                if progress is not None:
                    label = {"pool": "cold pool"}.get(
                        name, f"cold shard {name}" if name in self.pool_urls else name)
                    progress(f"{label} ready at {urls[name]} "
                             f"({time.monotonic() - started:.0f} s, log {proc.log_path})")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def shards(self) -> int:
        return self.config.cold_shards or self.policy.cold.shards

    def _start_pools(self, env: dict[str, str]) -> None:
        """One cold pool as before, or `shards` of them, each registering itself in the db."""
        cfg = self.config
        count = self.shards
        for i in range(count):
            # Shard i takes the i-th port pair after the first: REST and gRPC never collide
            # with the defaults (8600/8601, then 8602/8603, ...).
            port = cfg.pool_port + 2 * i if cfg.pool_port > 0 else free_port()
            grpc_port = cfg.pool_grpc_port + 2 * i if cfg.pool_grpc_port > 0 else free_port()
            url, grpc = f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
            name, cache = "pool", cfg.var_dir / "cache"
            shard: list[str] = []
            if count > 1:
                name = f"cold-{i}"
                # A shard's cache is its own (it holds other models), beside the single
                # pool's, never inside it (a folder named cold-0 there would pass for a model).
                cache = cfg.var_dir / f"cache-{name}"
                shard = ["--shard-name", name, "--shard-url", url, "--shard-grpc", grpc,
                         "--db-url", cfg.db_url]
            self.pool_urls[name] = url
            if i == 0:
                self.pool_grpc = grpc
            self.procs[name] = ServerProcess(
                tierserve_command("pool", "--store", self.policy.store,
                                  "--cache-dir", str(cache), "--port", str(port),
                                  "--grpc-port", str(grpc_port),
                                  *pool_flags(self.policy),
                                  # The pool re-reads the policy's `labels:` when it changes.
                                  "--labels-file", str(Path(cfg.policy_path).resolve()),
                                  *shard),
                ready_url=f"{url}/healthz", log_path=self._log(name), env=env)
        self.pool_url = next(iter(self.pool_urls.values()))

    def check(self) -> None:
        """Raise RuntimeError naming the part that exited, with its log's last lines."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n"
                                   f"{proc.log_tail(20)}")

    def stop(self) -> None:
        # Orchestrator first (nothing new starts), then its hot servers, then the front.
        for name in ("orchestrator", "router", *self.pool_urls):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop()
            if name == "orchestrator" and proc is not None:
                self._stop_hot_instances()
        self.procs.clear()
        self.pool_urls.clear()

    def _stop_hot_instances(self) -> None:
        cfg = self.config
        cleanup = ServerProcess(
            tierserve_command("orchestrator", "--policy", str(cfg.policy_path),
                              "--db-url", cfg.db_url, "--runtime", cfg.runtime,
                              "--scope", cfg.scope,
                              "--state-dir", str(cfg.var_dir / "orchestrator"),
                              "--stop-instances"),
            ready_url=None, log_path=self._log("orchestrator-stop"))
        with contextlib.suppress(subprocess.TimeoutExpired):
            cleanup.wait(60)
        cleanup.stop()
