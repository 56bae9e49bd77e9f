"""Live reload: a change is picked up, a bad edit keeps the last good policy and is reported."""

from __future__ import annotations

import os
from pathlib import Path

from policies.watch import PolicyWatcher

from .test_loader import MINIMAL


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    # Some filesystems have coarse mtimes; make every write a visible change.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_reload_keeps_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, MINIMAL, 0)
    watcher = PolicyWatcher(path)
    first = watcher.poll()
    assert first.changed and first.loaded is not None
    assert watcher.policy.hot.max_models == 2
    assert not watcher.poll().changed  # nothing new

    write(path, MINIMAL.replace("max_models: 2", "max_models: 3"), 1)
    assert watcher.poll().loaded is not None
    assert watcher.policy.hot.max_models == 3

    write(path, MINIMAL.replace("max_models: 2", "max_models: lots"), 2)
    bad = watcher.poll()
    assert bad.changed and bad.error is not None
    assert watcher.policy.hot.max_models == 3  # the last good one runs on
    status = watcher.status()
    assert status["valid"] is False
    assert status["errors"][0]["path"] == "hot.max_models"

    write(path, MINIMAL.replace("max_models: 2", "max_models: lots"), 3)
    assert not watcher.poll().changed  # same bad content: reported once

    write(path, MINIMAL.replace("max_models: 2", "max_models: 3"), 4)
    assert not watcher.poll().changed  # back to the running content: nothing to apply
    assert watcher.status()["valid"] is True


def test_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    watcher = PolicyWatcher(tmp_path / "nope.yaml")
    result = watcher.poll()
    assert result.error is not None
    assert watcher.current is None
