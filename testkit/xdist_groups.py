"""Test groups for pytest-xdist: each group runs on one process, one test after another.

xdist's own `--dist loadgroup` reads the groups from a suffix it writes into each test's
nodeid, which pytest 9 no longer lets a plugin change (the nodeid is built from `Node._id`),
so every test became a group of its own. Here the workers, which see the tests' fixtures and
marks, write {nodeid: group} to a file the controller named in the environment before it
started them; the controller's scheduler reads it when it hands out the work.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScopeScheduling

GROUPS_ENV = "TIERSERVE_XDIST_GROUPS"


def choose_file() -> None:
    """In the controller, before the workers start: where they write the groups."""
    os.environ.setdefault(GROUPS_ENV, str(Path(tempfile.mkdtemp(prefix="tierserve-xdist-"))
                                          / "groups.json"))


def write(groups: Mapping[str, str], worker: str) -> None:
    """In a worker, after collection (every worker collects the same tests)."""
    path = Path(os.environ[GROUPS_ENV])
    tmp = path.with_name(f".{worker}.tmp")
    tmp.write_text(json.dumps(dict(groups)))
    tmp.rename(path)  # atomic: the controller never reads half a file


class GroupScheduling(LoadScopeScheduling):
    """Load-scope scheduling over our groups, the ones named in `first` handed out first."""

    def __init__(self, config: Any, log: Any = None, first: Iterable[str] = ()) -> None:
        super().__init__(config, log)
        self._first = tuple(first)
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            # Read only once the workers collected (scheduling starts after that).
            self._groups = json.loads(Path(os.environ[GROUPS_ENV]).read_text())
        return self._groups.get(nodeid, nodeid.split("::")[0])

    def _assign_work_unit(self, node: Any) -> None:
        for scope in self._first:
            if scope in self.workqueue:
                self.workqueue.move_to_end(scope, last=False)
                break
        super()._assign_work_unit(node)
