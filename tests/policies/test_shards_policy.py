"""`cold.shards`: default 1, at least 1; a bad value is a clear error and the last good
policy runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import PolicyError, parse_policy
from policies.watch import PolicyWatcher

from .test_loader import MINIMAL
from .test_watch import write


def test_cold_shards_default_to_one_pool() -> None:
    assert parse_policy(MINIMAL).policy.cold.shards == 1
    assert parse_policy(MINIMAL + "cold: {shards: 3}\n").policy.cold.shards == 3


@pytest.mark.parametrize("value", ["0", "-2"])
def test_cold_shards_below_one_is_a_clear_error(value: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(MINIMAL + f"cold:\n  shards: {value}\n")
    (error,) = caught.value.errors
    assert error.path == "cold.shards" and error.line == MINIMAL.count("\n") + 2
    assert error.message.startswith(f"must be at least 1, not {value}")


def test_cold_shards_bad_edit_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, MINIMAL + "cold: {shards: 2}\n", 0)
    watcher = PolicyWatcher(path)
    assert watcher.poll().loaded is not None and watcher.policy.cold.shards == 2
    write(path, MINIMAL + "cold: {shards: 0}\n", 1)
    bad = watcher.poll()
    assert bad.error is not None and bad.error.errors[0].path == "cold.shards"
    assert watcher.policy.cold.shards == 2
