"""In-memory counts and their batched flush into a real SQLite db."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from base.errors import Unavailable
from db import queries
from db.queries import make_engine
from router.counting import Counter


async def test_flush_merges_and_survives_a_failed_write(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    now = 6000.0 * 60 + 5
    counter = Counter(engine, clock=lambda: now)
    for i in range(10):
        counter.record("m", 0.002, error=i == 0, now=now)
    counter.record("m", 0.5, False, experiment="e", variant="arm", now=now)
    counter.record("s", 0.1, False, experiment="e", variant="sh", shadow=True, now=now)
    assert counter.pending_requests() == 12
    assert await counter.flush() == 12
    assert await counter.flush() == 0  # nothing new: no write at all

    # The db goes away for a moment: the flush fails and keeps its requests.
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE request_counts_recent RENAME TO recent_away"))
    counter.record("m", 0.002, False, now=now)
    with pytest.raises(Unavailable, match="request_counts"):
        await counter.flush()
    counter.record("m", 0.002, False, now=now)
    assert counter.pending_requests() == 2
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE recent_away RENAME TO request_counts_recent"))
    assert await counter.flush() == 2

    stats = {s.model: s for s in queries.model_stats(engine, 60, now)}
    assert (stats["m"].count, stats["m"].errors) == (13, 1)
    assert "s" not in stats  # shadow traffic is kept apart
    arms = {(s.variant, s.shadow): s.count for s in queries.experiment_stats(engine, "e", 60, now)}
    assert arms == {("arm", False): 1, ("sh", True): 1}
    assert queries.request_rates(engine, 5, now) == pytest.approx({"m": 13 / 5, "s": 1 / 5})
