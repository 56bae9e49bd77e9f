"""Hot instances as local subprocesses of `tierserve model-server` (no Docker engine needed).

Each instance has a state file `<state_dir>/<scope>/<model>.json` (pid, ports, hot_since,
settings hash), so a restarted orchestrator adopts the processes it left running. The servers
run in their own session (they outlive the orchestrator, as containers do) and listen on
127.0.0.1 only, `nice` steps below the orchestrator, with TensorFlow thread pools sized to
`cpus`. A model with version labels gets `<model>.config` there (--model_config_file).
Container-only settings (image, memory, the cpus limit, cpu_shares, volumes) do not
apply here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from base.errors import Internal
from base.names import check_model_name
from base.procs import ServerProcess, free_port, pid_alive, terminate, tierserve_command
from orchestrator.runtime import (
    Instance,
    InstanceSpec,
    Runtime,
    granted_threads,
    labelled_config,
)
from pools.model_server.command import config_file_args, model_server_args
from pools.store import open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    model: str
    pid: int
    rest_port: int
    grpc_port: int
    hot_since: float
    policy_hash: str
    started_at: float
    log: str


def _is_ours(pid: int, model: str) -> bool:
    """Guards against pid reuse: the process must be a model server for `model`."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"model-server" in args and f"--model_name={model}".encode() in args


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, state_dir: Path, scope: str = "default") -> None:
        self.dir = Path(state_dir) / check_model_name(scope)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._children: dict[int, ServerProcess] = {}

    def _state_path(self, model: str) -> Path:
        return self.dir / f"{check_model_name(model)}.json"

    def _read_states(self) -> list[_State]:
        states = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                states.append(_State(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable state file %s: %s", path, exc)
        return states

    def _running(self, state: _State) -> bool:
        child = self._children.get(state.pid)
        if child is not None:
            return child.poll() is None  # also reaps our own exited children
        return pid_alive(state.pid) and _is_ours(state.pid, state.model)

    def list_instances(self) -> list[Instance]:
        out = []
        for s in self._read_states():
            running = self._running(s)
            out.append(Instance(
                model=s.model, id=f"pid:{s.pid}", endpoint=f"http://127.0.0.1:{s.rest_port}",
                running=running, hot_since=s.hot_since, policy_hash=s.policy_hash,
                detail="running" if running else "exited", grpc=f"127.0.0.1:{s.grpc_port}"))
        return out

    def start(self, spec: InstanceSpec) -> Instance:
        path = self._state_path(spec.model)
        for old in self._read_states():
            if old.model == spec.model and self._running(old):
                raise Internal(f"{spec.model} already has a server (pid {old.pid})")
        rest_port, grpc_port = free_port(), free_port()
        base_path = open_store(spec.store).model_uri(spec.model)
        intra, inter = granted_threads(spec.container)
        extra = list(spec.container.args)
        if spec.labels:  # TF Serving's way: a model config file with version_labels
            config = self.dir / f"{spec.model}.config"
            config.write_text(labelled_config(spec, base_path))
            extra = [*config_file_args(str(config)), *extra]
        cmd = tierserve_command("model-server", *model_server_args(
            port=grpc_port, rest_api_port=rest_port, model_name=spec.model,
            model_base_path=base_path, intra_op_threads=intra, inter_op_threads=inter,
            extra=extra))
        log_path = self.dir / f"{spec.model}.log"
        try:
            # Its own session: it outlives the orchestrator, as a container does.
            child = ServerProcess(cmd, log_path=log_path, env=spec.container.env,
                                  nice=spec.container.nice)
        except OSError as exc:
            raise Internal(f"cannot start model server for {spec.model}: {exc}") from exc
        self._children[child.pid] = child
        state = _State(spec.model, child.pid, rest_port, grpc_port, spec.hot_since,
                       spec.policy_hash, time.time(), str(log_path))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state)))
        tmp.replace(path)  # atomic: an adopter never reads half a file
        return Instance(spec.model, f"pid:{child.pid}", f"http://127.0.0.1:{rest_port}",
                        True, spec.hot_since, spec.policy_hash, "started",
                        f"127.0.0.1:{grpc_port}")

    def stop(self, instance: Instance, timeout: float = 10.0) -> None:
        pid = int(instance.id.removeprefix("pid:"))
        state = next((s for s in self._read_states() if s.pid == pid), None)
        child = self._children.pop(pid, None)
        if child is not None:
            child.stop(timeout)
        elif state is not None:  # adopted from an earlier orchestrator: not our child
            terminate(pid, lambda: self._running(state), timeout)
        if state is not None:
            with contextlib.suppress(FileNotFoundError):
                self._state_path(state.model).unlink()

    def kill(self, instance: Instance) -> None:
        """SIGKILL, as a crash would (tests and fault drills)."""
        # The server leads its own session: signal the group so helpers die with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(instance.id.removeprefix("pid:")), signal.SIGKILL)
