"""The cold pool's own `tierserve model-server` children, empty, on free loopback ports.

Each is a `ServerProcess` (own process group, SIGTERM then SIGKILL) that dies with
the pool, runs `nice` steps below it so that hot model servers win the CPU, and
writes its log into the pool's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args

# The pool's model servers load while they serve: a load's Python code holds the GIL,
# and a hit waits up to the switch interval (Python's 5 ms) at each hand-off between
# threads (event loop, inference thread, back). 1 ms: the load yields sooner.
GIL_SWITCH_INTERVAL_MS = 1.0

def tf_threads(servers: int, cpus: int | None = None) -> int:
    """TensorFlow threads per model server: the CPUs each one really gets, at least 1."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, servers))


class ModelServerChild:
    def __init__(self, host: str = "127.0.0.1", load_threads: int = 4, nice: int = 0,
                 threads: int | None = None, gc_interval_s: float | None = None) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.grpc_address = f"{host}:{self.grpc_port}"
        self.rest_url = f"http://{host}:{self.rest_port}"
        # No file-system polling: the pool names exact versions in each reload, and a sync
        # of every model each second only takes the GIL from predictions.
        extra = [f"--num_load_threads={load_threads}", "--file_system_poll_wait_seconds=0",
                 f"--gil_switch_interval_ms={GIL_SWITCH_INTERVAL_MS:g}"]
        if gc_interval_s is not None:
            extra.append(f"--release_memory_interval_seconds={gc_interval_s}")
        # inter-op at least 2: with one thread an op that waits on another can hang.
        args = model_server_args(port=self.grpc_port, rest_api_port=self.rest_port,
                                 intra_op_threads=threads or None,
                                 inter_op_threads=max(2, threads) if threads else None,
                                 extra=extra)
        self.process = ServerProcess(
            tierserve_command("model-server", *args),
            f"{self.rest_url}/v1/models/readiness-probe", nice=nice, die_with_parent=True,
            inherit_output=True)
        self._stopping = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call `on_exit(returncode)` from a thread if the server dies (not when stopped)."""

        def wait() -> None:
            code = self.process.proc.wait()
            if not self._stopping:
                on_exit(code)

        threading.Thread(target=wait, name="model-server-watch", daemon=True).start()

    def wait_ready(self, timeout: float = 120.0) -> ModelServerChild:
        # Any answer (404 for an unknown model) means the REST port is up.
        self.process.wait_ready(timeout, expect=(404,))
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        self.process.stop(timeout)
