"""Start and stop the project's own server processes (tests, benchmarks, `tierserve up`)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tierserve_command(*args: str) -> list[str]:
    """The command line for `tierserve ARGS` with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "tierserve.cli", *args]


PR_SET_PDEATHSIG = 1


def _child_setup(nice: int, die_with_parent: bool) -> Callable[[], None] | None:
    """What the child runs before exec: lower its CPU priority (every thread it starts
    inherits it), and ask Linux to SIGTERM it when its parent dies, even by SIGKILL."""
    if not nice and not die_with_parent:
        return None

    def setup() -> None:
        if nice:
            os.nice(nice)
        if die_with_parent:
            try:
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            except OSError:
                pass

    return setup


class ServerProcess:
    """A child process with a readiness URL; stops with SIGTERM, then SIGKILL.

    `nice`: a CPU priority increment for the child (0: the parent's); `die_with_parent`:
    the child gets SIGTERM when this process dies; `inherit_output`: the child writes to
    this process's stdout/stderr (when there is no `log_path`).
    """

    def __init__(self, cmd: Sequence[str], ready_url: str | None, log_path: Path | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None, *,
                 nice: int = 0, die_with_parent: bool = False,
                 inherit_output: bool = False) -> None:
        self.cmd = list(cmd)
        self.ready_url = ready_url
        self.log_path = log_path
        self._log = open(log_path, "ab") if log_path else (
            None if inherit_output else subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            self.cmd, stdout=self._log, stderr=subprocess.STDOUT if self._log else None,
            cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True,
            preexec_fn=_child_setup(nice, die_with_parent))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0, expect: Sequence[int] = (200,)) -> ServerProcess:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd} exited with {self.proc.returncode}; "
                                   f"log: {self.log_tail()}")
            if self.ready_url is None:
                return self
            try:
                if httpx.get(self.ready_url, timeout=2.0).status_code in expect:
                    return self
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.cmd} not ready at {self.ready_url} after {timeout}s "
                           f"({last}); log: {self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self._log is not subprocess.DEVNULL and self._log is not None:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
