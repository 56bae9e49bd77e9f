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
        counter.record("m", 0.002, {0: 500, 1: 404}.get(i, 200), now=now)
    counter.record("m", 0.5, 200, experiment="e", variant="arm", now=now)
    counter.record("s", 0.1, 200, experiment="e", variant="sh", shadow=True, now=now)
    assert counter.pending_requests() == 12
    assert await counter.flush() == 12
    assert await counter.flush() == 0  # nothing new: no write at all

    # The db goes away for a moment: the flush fails and keeps its requests.
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE request_counts_recent RENAME TO recent_away"))
    counter.record("m", 0.002, 200, now=now)
    with pytest.raises(Unavailable, match="request_counts"):
        await counter.flush()
    counter.record("m", 0.002, 200, now=now)
    assert counter.pending_requests() == 2
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE recent_away RENAME TO request_counts_recent"))
    assert await counter.flush() == 2

    stats = {s.model: s for s in queries.model_stats(engine, 60, now)}
    assert (stats["m"].count, stats["m"].errors) == (13, 2)
    assert (stats["m"].errors_4xx, stats["m"].errors_5xx) == (1, 1)
    assert "s" not in stats  # shadow traffic is kept apart
    arms = {(s.variant, s.shadow): s.count for s in queries.experiment_stats(engine, "e", 60, now)}
    assert arms == {("arm", False): 1, ("sh", True): 1}
    assert queries.request_rates(engine, 5, now) == pytest.approx({"m": 13 / 5, "s": 1 / 5})


async def test_flushes_count_per_bucket_and_roll_up_old_minutes(tmp_path: Path) -> None:
    """The router's own flush keeps the 5 s table bounded: every `roll_up_every` seconds
    it moves the minutes older than RECENT_MINUTES into per-minute rows, totals intact."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    clock = [7000.0 * 60]
    counter = Counter(engine, clock=lambda: clock[0], roll_up_every=60.0)

    def recent_minutes() -> list[int]:
        with engine.connect() as conn:
            return sorted(conn.execute(text(
                "SELECT DISTINCT minute FROM request_counts_recent")).scalars())

    for _ in range(12 * 60):  # 12 minutes at 1 req/s, a flush every second
        counter.record("m", 0.001, 200)
        clock[0] += 1.0
        await counter.flush()
        assert len(recent_minutes()) <= queries.RECENT_MINUTES + 2  # bounded
    now = clock[0]
    assert recent_minutes()[0] >= int(now // 60) - queries.RECENT_MINUTES - 1
    [stats] = queries.model_stats(engine, 3600, now)
    assert stats.count == 12 * 60
    assert queries.request_rates(engine, 10, now) == pytest.approx({"m": 1.0}, rel=0.11)
