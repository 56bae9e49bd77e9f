"""Child processes of the project's own servers: start, wait until ready, stop (TERM, then KILL).

One lifecycle for every caller: `tierserve up`, the process runtime's hot model servers, the
cold pool's model server, tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1


# Ports handed out for a child to bind later. Below Linux's ephemeral range (32768 and up),
# where the kernel picks the source port of every outgoing connection and every bind to
# port 0: a port from there could be taken by such a socket between our pick and the
# child's bind. Picked at random, two test processes rarely pick the same one.
_PICK_RANGE = (20000, 32768)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(64):
        port = random.randrange(*_PICK_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tierserve_command(*args: str) -> list[str]:
    """The command line for `tierserve ARGS` with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "tierserve.cli", *args]


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as dead); works for processes we did not start."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def niceness(pid: int) -> int:
    """The nice value of `pid` (field 19 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def terminate(pid: int, running: Callable[[], bool], timeout: float = 15.0,
              group: bool = True) -> None:
    """SIGTERM, wait up to `timeout` while `running()`, then SIGKILL. `group`: signal the
    process group `pid` leads (its helpers die with it). A missing process is no error."""
    send = os.killpg if group else os.kill
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not running():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, sig)
        deadline = time.monotonic() + wait
        while running() and time.monotonic() < deadline:
            time.sleep(0.05)


def _preexec(nice: int, die_with_parent: bool) -> Callable[[], None] | None:
    if not nice and not die_with_parent:
        return None
    prctl = None
    if die_with_parent:
        # Looked up here, in the parent: a dlopen between fork and exec may deadlock on a
        # lock another of our threads held at the fork.
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl

    def setup() -> None:  # in the child, before exec: every thread it starts inherits
        if nice:
            os.nice(nice)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # Linux: even when the parent is SIGKILLed

    return setup


class ServerProcess:
    """A child process with an optional readiness URL; stops with SIGTERM, then SIGKILL.

    - `log_path`: stdout and stderr appended there; None: discarded; `inherit_output`: ours.
    - `new_session`: the child leads its own process group (stop signals the whole group)
      and outlives us unless stopped; False: it stays in our group, as a helper of ours.
    - `nice`: niceness increment (lower CPU priority than ours, e.g. for background loads).
    - `die_with_parent`: the child gets SIGTERM when this process dies, even by SIGKILL.
    """

    def __init__(self, cmd: Sequence[str], ready_url: str | None = None,
                 log_path: Path | None = None, env: dict[str, str] | None = None,
                 cwd: str | None = None, *, new_session: bool = True, nice: int = 0,
                 die_with_parent: bool = False, inherit_output: bool = False) -> None:
        self.cmd = list(cmd)
        self.ready_url = ready_url
        self.log_path = log_path
        self.new_session = new_session
        self._stopping = False
        if inherit_output:
            out: int | None = None
        elif log_path is not None:
            out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        else:
            out = subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT if out is not None else None,
                cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=new_session,
                preexec_fn=_preexec(nice, die_with_parent))
        finally:
            if isinstance(out, int) and out >= 0:
                os.close(out)  # the child has its own copy

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        """The exit code, or None while it runs (reaps it once it exited)."""
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def wait_ready(self, timeout: float = 60.0,
                   expect: Sequence[int] | None = (200,)) -> ServerProcess:
        """Until `ready_url` answers with a status in `expect` (None: any answer at all);
        raises RuntimeError if the child exits, TimeoutError (after stopping it) on timeout."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd} exited with {self.proc.returncode}; "
                                   f"log: {self.log_tail()}")
            if self.ready_url is None:
                return self
            try:
                status = httpx.get(self.ready_url, timeout=2.0).status_code
                if expect is None or status in expect:
                    return self
                last = f"HTTP {status}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.cmd} not ready at {self.ready_url} after {timeout}s "
                           f"({last}); log: {self.log_tail()}")

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call `on_exit(returncode)` from a thread if the child dies (not when stopped)."""

        def wait() -> None:
            code = self.proc.wait()
            if not self._stopping:
                on_exit(code)

        threading.Thread(target=wait, name=f"watch-{self.pid}", daemon=True).start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._send(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        self._stopping = True
        terminate(self.proc.pid, lambda: self.proc.poll() is None, timeout,
                  group=self.new_session)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        return self.proc.returncode

    def _send(self, sig: signal.Signals) -> None:
        (os.killpg if self.new_session else os.kill)(self.proc.pid, sig)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
