"""Which models the orchestrator promoted and demoted, read from its events (pure).

The orchestrator records one event per decision: a `promote` whose outcome starts with
"started" once the model's server runs (or "failed: ..."), and a `demote` whose outcome starts
with "routed cold" (possibly followed by "; stopping after ...s drain", and by a second
`demote` event for the server's stop). `route_hot` is not a promotion: it follows every start,
restarts included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _did(event: Mapping[str, Any], action: str) -> bool:
    return event.get("action") == action and not str(event.get("outcome", "")).startswith(
        "failed")


def moves(events: Iterable[Mapping[str, Any]], since: float = 0.0
          ) -> tuple[list[str], list[str]]:
    """(promoted, demoted): each model once, in the order of its first such event.

    `events`: dicts with ts, model, action, outcome, in any order; those before `since`
    (an earlier run's, in a reused db) are left out."""
    ordered = sorted((e for e in events if float(e.get("ts", 0.0)) >= since),
                     key=lambda e: (float(e["ts"]), int(e.get("id", 0))))
    promoted = list(dict.fromkeys(str(e["model"]) for e in ordered if _did(e, "promote")))
    demoted = list(dict.fromkeys(str(e["model"]) for e in ordered if _did(e, "demote")))
    return promoted, demoted
