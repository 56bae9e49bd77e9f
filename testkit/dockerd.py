"""The Docker engine for a test run: start one when none answers, and stop only that one.

`ensure_engine()` runs scripts/ensure-dockerd.sh, which says on stdout whether it started
dockerd. A daemon that already ran (a developer's, or another test run's) is never stopped.
Every run that uses the engine holds a shared lock on a file beside the daemon's log while
it runs, so the run that started the daemon leaves it running while another run still uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from pathlib import Path
from typing import IO

from base.procs import pid_alive, terminate

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "ensure-dockerd.sh"
STOP_TIMEOUT_S = 30.0

_started: list[int] = []  # daemons this process started, to stop at the end of the run
_users: IO[str] | None = None  # our shared hold on the users lock, once we use an engine


def log_dir() -> Path:
    """The script's folder for the daemon's log, pid and locks (same default as the script)."""
    return Path(os.environ.get("TIERSERVE_DOCKERD_LOG_DIR", "/tmp/tierserve-dockerd"))


def started_pid(stdout: str) -> int | None:
    """The pid in the script's "started <pid>" line; None when it started nothing."""
    for line in stdout.splitlines():
        word, _, pid = line.strip().partition(" ")
        if word == "started" and pid.isdigit():
            return int(pid)
    return None


def _hold_users_lock() -> None:
    global _users
    if _users is None:
        log_dir().mkdir(parents=True, exist_ok=True)
        _users = open(log_dir() / "users.lock", "a")  # held until the run ends
        fcntl.flock(_users, fcntl.LOCK_SH)


def ensure_engine(timeout: float = 300.0) -> str | None:
    """None when a Docker engine answers (starting one if needed), else why not."""
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        return (result.stderr or result.stdout).strip() or "no engine"
    pid = started_pid(result.stdout)
    if pid is not None:
        _started.append(pid)
    _hold_users_lock()
    return None


def is_dockerd(pid: int) -> bool:
    """True while `pid` is a running dockerd (not a later process that reused the pid)."""
    try:
        return pid_alive(pid) and Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def stop_started() -> list[str]:
    """Stop the daemons this run started, unless another run still holds the users lock;
    returns one line per daemon saying what was done."""
    global _users
    if not _started:
        return []
    assert _users is not None
    try:
        # Converting our shared hold to an exclusive one succeeds only if nobody else holds it.
        fcntl.flock(_users, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return [f"dockerd {pid} (started by this run) left running: another test run uses it"
                for pid in _started]
    report = []
    try:
        for pid in list(_started):
            report.append(stop_daemon(pid))
            _started.remove(pid)
    finally:
        _users.close()
        _users = None
    return report


def stop_daemon(pid: int) -> str:
    """SIGTERM (dockerd then stops its containerd), SIGKILL after a while; its pid file goes."""
    if not is_dockerd(pid):
        return f"dockerd {pid} had already exited"
    terminate(pid, lambda: is_dockerd(pid), STOP_TIMEOUT_S, group=False)
    pid_file = log_dir() / "dockerd.pid"
    with contextlib.suppress(OSError):
        if pid_file.read_text().strip() == str(pid):
            pid_file.unlink()
    return f"stopped dockerd {pid}, which this test run had started"
