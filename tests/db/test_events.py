"""Events: newest first, ties in time broken by insertion, filters and limits together."""

from __future__ import annotations

import time

from db import queries
from db.queries import Engine


def test_ties_limits_and_default_time(engine: Engine) -> None:
    for action in ("promote", "route_hot", "demote"):
        queries.record_event(engine, "a", action, ts=5.0)  # one pass, one timestamp
    queries.record_event(engine, "b", "pin", ts=5.0)
    before = time.time()
    queries.record_event(engine, "a", "stop", "drained", "ok")
    newest = queries.list_events(engine, limit=2, model="a")
    assert [e.action for e in newest] == ["stop", "demote"]
    assert newest[0].ts >= before and (newest[0].reason, newest[0].outcome) == ("drained", "ok")
    assert [e.action for e in queries.list_events(engine, model="a")][1:] == [
        "demote", "route_hot", "promote"]
    assert queries.list_events(engine, model="nobody") == []
