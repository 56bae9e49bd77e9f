"""base.procs: one child-process lifecycle (start, ready, TERM then KILL), on real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from base import procs
from base.procs import ServerProcess, free_port, niceness, pid_alive, terminate

PY = sys.executable


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_nice_increment_applies_to_the_child_and_its_threads() -> None:
    script = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); " \
             "time.sleep(60)"
    with ServerProcess([PY, "-c", script], nice=7) as proc:
        assert niceness(proc.pid) == os.nice(0) + 7
        wait_until(lambda: len(os.listdir(f"/proc/{proc.pid}/task")) >= 2)
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            with open(f"/proc/{proc.pid}/task/{tid}/stat") as f:
                assert int(f.read().rsplit(")", 1)[1].split()[16]) == os.nice(0) + 7
    assert proc.returncode is not None


def test_stop_sends_term_then_kill_to_a_child_that_ignores_term(tmp_path: Path) -> None:
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('up', flush=True); time.sleep(60)")
    proc = ServerProcess([PY, "-c", script], log_path=tmp_path / "log")
    wait_until(lambda: "up" in proc.log_tail())
    assert proc.stop(timeout=0.5) == -9
    assert not pid_alive(proc.pid)


def test_a_graceful_child_exits_on_term_with_its_own_code(tmp_path: Path) -> None:
    script = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(3)); "
              "print('up', flush=True); time.sleep(60)")
    proc = ServerProcess([PY, "-c", script], log_path=tmp_path / "log")
    wait_until(lambda: "up" in proc.log_tail())
    assert proc.stop() == 3


def test_wait_ready_any_answer_and_exit_and_timeout(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess([PY, "-m", "http.server", "-b", "127.0.0.1", str(port)],
                           ready_url=f"http://127.0.0.1:{port}/missing", cwd=str(tmp_path))
    with server:
        with pytest.raises(TimeoutError):
            ServerProcess([PY, "-c", "import time; time.sleep(60)"],
                          ready_url=f"http://127.0.0.1:{free_port()}/").wait_ready(timeout=1)
        server.wait_ready(timeout=30, expect=None)  # a 404 is an answer
    dead = ServerProcess([PY, "-c", "print('boom')"], ready_url="http://127.0.0.1:1/",
                         log_path=tmp_path / "dead.log")
    with pytest.raises(RuntimeError, match="boom"):
        dead.wait_ready(timeout=30)


def test_same_group_child_is_stopped_alone_and_watch_reports_a_death() -> None:
    # Not its own session: stop signals the child only, never our own process group.
    quiet = ServerProcess([PY, "-c", "import time; time.sleep(60)"], new_session=False)
    assert os.getpgid(quiet.pid) == os.getpgid(0)
    quiet.stop()
    assert quiet.returncode is not None
    died = threading.Event()
    codes: list[int] = []
    crash = ServerProcess([PY, "-c", "import sys; sys.exit(4)"], new_session=False)
    crash.watch(lambda code: (codes.append(code), died.set()))
    assert died.wait(30) and codes == [4]
    stopped = ServerProcess([PY, "-c", "import time; time.sleep(60)"])
    stopped.watch(lambda code: codes.append(code))
    stopped.stop()
    time.sleep(0.2)
    assert codes == [4]  # a stop is not a death


def test_die_with_parent_ends_the_child_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent = (f"from base.procs import ServerProcess; import sys, time; "
              f"p = ServerProcess([sys.executable, '-c', 'import time; time.sleep(120)'], "
              f"new_session=False, die_with_parent=True); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)")
    outer = subprocess.Popen([PY, "-c", parent], start_new_session=True)
    try:
        wait_until(pid_file.exists)
        wait_until(lambda: pid_file.read_text().strip() != "")
        child = int(pid_file.read_text())
        assert pid_alive(child)
        outer.kill()
        outer.wait()
        wait_until(lambda: not pid_alive(child))
    finally:
        outer.kill()


def test_terminate_a_process_that_is_not_our_child() -> None:
    # Adopted servers (a restarted orchestrator) are stopped by pid, by the same rules.
    outer = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    terminate(outer.pid, lambda: outer.poll() is None, timeout=5)
    assert outer.returncode == -15
    terminate(outer.pid, lambda: False)  # gone: nothing to do, no error


def test_free_ports_are_bindable_and_outside_the_kernels_ephemeral_range() -> None:
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(20)]
    assert all(not low <= p <= high for p in ports), ports
    assert len(set(ports)) > 1  # picked at random, not one port over and over
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))  # nothing holds it


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(procs, "_PICK_RANGE", (taken, taken + 1))  # only the held one
        assert free_port() != taken  # the kernel's pick, after the tries
