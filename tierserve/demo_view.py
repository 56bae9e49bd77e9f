"""What the demo shows while it runs: a live rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierserve.demo import Observer, Tally


def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"


def _ratio(observer: Observer) -> str:
    return "-" if observer.hit_ratio is None else f"{100 * observer.hit_ratio:.1f} %"


def render(tally: Tally, observer: Observer, phase: Any, elapsed: float, duration: float,
           star: str) -> Any:
    from rich.table import Table

    table = Table(title=f"tierserve demo — {elapsed:4.0f} s of {duration:.0f} s — "
                        f"{phase.name} (star: {star})")
    table.add_column("figure")
    table.add_column("value")
    table.add_row("requests/s (last 5 s)", f"{tally.rate(time.monotonic()):.1f}")
    table.add_row("sent / failed / wrong", f"{tally.sent} / {tally.failed} / {tally.wrong}")
    table.add_row("cold pool hit ratio", _ratio(observer))
    table.add_row("hot models", ", ".join(observer.hot) or "(none)")
    for pool, values in tally.by_pool.items():
        table.add_row(f"{pool} latency p50 / p99 ms", f"{ms(values, 0.5)} / {ms(values, 0.99)}")
    table.add_row("events", "\n".join(observer.events) or "-")
    return table


def plain_line(tally: Tally, observer: Observer, phase: Any, elapsed: float,
               duration: float) -> str:
    """One line for a log file or a pipe, where a live view cannot redraw."""
    p99 = " ".join(f"{pool} {ms(values, 0.99)}" for pool, values in tally.by_pool.items()
                   if values)
    return (f"{elapsed:4.0f}/{duration:.0f} s  {phase.name}: "
            f"{tally.rate(time.monotonic()):.1f} req/s, sent {tally.sent}, "
            f"failed {tally.failed}, wrong {tally.wrong}, cold hits {_ratio(observer)}, "
            f"hot [{', '.join(observer.hot)}], p99 ms: {p99 or '-'}")
