"""The cold pool's own `tierserve model-server` child, empty, on free loopback ports."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import httpx

from base.procs import free_port, tierserve_command

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the pool dies, even by SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class ModelServerChild:
    def __init__(self, host: str = "127.0.0.1", load_threads: int = 4) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.grpc_address = f"{host}:{self.grpc_port}"
        self.rest_url = f"http://{host}:{self.rest_port}"
        # Same process group as the pool: stopping the pool's group stops it too.
        self.proc = subprocess.Popen(
            tierserve_command("model-server", "--port", str(self.grpc_port),
                              "--rest_api_port", str(self.rest_port),
                              "--num_load_threads", str(load_threads)),
            preexec_fn=_die_with_parent)
        self._stopping = False

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call `on_exit(returncode)` from a thread if the server dies (not when stopped)."""

        def wait() -> None:
            code = self.proc.wait()
            if not self._stopping:
                on_exit(code)

        threading.Thread(target=wait, name="model-server-watch", daemon=True).start()

    def wait_ready(self, timeout: float = 120.0) -> ModelServerChild:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited with {self.proc.returncode}")
            try:
                # Any answer (404 for an unknown model) means the REST port is up.
                httpx.get(f"{self.rest_url}/v1/models/readiness-probe", timeout=2.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"model server not ready after {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
