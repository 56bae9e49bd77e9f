"""A test run stops the Docker engine it started, and never one that was already running.

scripts/ensure-dockerd.sh and testkit.dockerd run here against stand-ins for `docker` and
`dockerd` on PATH (a real second engine would fight the running one for its socket): the
stand-in engine "answers" while its marker file exists.
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from base.procs import pid_alive
from testkit import dockerd

FAKE_DOCKER = """#!/bin/bash
[ "$1" = info ] && [ -f "$FAKE_ENGINE_UP" ]
"""
FAKE_DOCKERD = """#!/bin/bash
touch "$FAKE_ENGINE_UP"
trap 'rm -f "$FAKE_ENGINE_UP"; exit 0' TERM
while :; do sleep 0.1; done
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the script starts dockerd as root")


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Stand-ins on PATH, the script's folder in tmp_path, and testkit.dockerd's state fresh."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", FAKE_DOCKERD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    up = tmp_path / "engine-up"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ENGINE_UP", str(up))
    monkeypatch.setenv("TIERSERVE_DOCKERD_LOG_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(dockerd, "_started", [])
    monkeypatch.setattr(dockerd, "_users", None)
    yield up
    if dockerd._users is not None:
        dockerd._users.close()
    for pid in dockerd._started:  # a failed test must not leave a stand-in behind
        if dockerd.is_dockerd(pid):
            os.kill(pid, 15)


def test_an_engine_that_already_runs_is_left_alone(fake_engine: Path, tmp_path: Path) -> None:
    # An engine someone else started: a stand-in dockerd that is already up.
    theirs = subprocess.Popen([str(tmp_path / "bin" / "dockerd")], start_new_session=True)
    try:
        while not fake_engine.exists():
            assert theirs.poll() is None
            time.sleep(0.05)
        assert dockerd.ensure_engine(timeout=60) is None
        assert dockerd._started == []
        assert dockerd.stop_started() == []
        assert theirs.poll() is None and fake_engine.exists()
    finally:
        theirs.terminate()
        theirs.wait(10)


def test_the_engine_this_run_started_is_stopped(fake_engine: Path) -> None:
    assert dockerd.ensure_engine(timeout=60) is None
    (pid,) = dockerd._started
    assert dockerd.is_dockerd(pid) and fake_engine.exists()
    assert (dockerd.log_dir() / "dockerd.pid").read_text().strip() == str(pid)
    # A second ensure (another fixture of the same run) starts nothing more.
    assert dockerd.ensure_engine(timeout=60) is None and dockerd._started == [pid]
    assert dockerd.stop_started() == [f"stopped dockerd {pid}, which this test run had started"]
    assert not pid_alive(pid) and not fake_engine.exists()
    assert not (dockerd.log_dir() / "dockerd.pid").exists()


def test_an_engine_another_run_still_uses_is_left_running(fake_engine: Path) -> None:
    assert dockerd.ensure_engine(timeout=60) is None
    (pid,) = dockerd._started
    with open(dockerd.log_dir() / "users.lock") as other_run:
        fcntl.flock(other_run, fcntl.LOCK_SH)
        (line,) = dockerd.stop_started()
        assert "left running" in line and dockerd.is_dockerd(pid)
    os.kill(pid, 15)


def test_started_pid_is_read_from_the_scripts_stdout() -> None:
    assert dockerd.started_pid("started 4242\n") == 4242
    assert dockerd.started_pid("") is None
    assert dockerd.started_pid("dockerd started (pid 1)") is None
