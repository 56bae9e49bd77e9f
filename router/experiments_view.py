"""Rich tables for `tierserve experiments` answers (pure: the admin API's JSON in, a Table out)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _target(t: dict[str, Any]) -> str:
    tag = t.get("version") or t.get("label")
    text = f"{t['model']}:{tag}" if tag is not None else str(t["model"])
    return f"{t['name']} ({text})" if t.get("name") else text


def experiments_table(experiments: list[dict[str, Any]]) -> Table:
    """One row per experiment: its variants with weights, shadow and sticky header."""
    table = Table(title=None if experiments else "no experiments", title_justify="left")
    for column in ("experiment", "variants (weight %)", "shadow (%)", "sticky header"):
        table.add_column(column, overflow="fold")
    for exp in experiments:
        variants = ", ".join(f"{_target(v)}={v['weight']}" for v in exp.get("variants", []))
        shadow = exp.get("shadow")
        table.add_row(exp["name"], variants,
                      f"{_target(shadow)}={shadow['percent']:g}" if shadow else "-",
                      exp.get("sticky_header") or "(router's)")
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def stats_table(stats: dict[str, Any]) -> Table:
    """Per variant of one experiment: requests, rate, errors, latency percentiles."""
    table = Table(title=f"{stats['experiment']}: last {stats['window_s']:g} s",
                  title_justify="left")
    table.add_column("variant")
    for column in ("requests", "req/s", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for row in stats["variants"]:
        name = f"{row['variant']} (shadow)" if row.get("shadow") else str(row["variant"])
        table.add_row(name, str(row["count"]), f"{row['rate_per_s']:.3g}", str(row["errors"]),
                      f"{row['error_rate']:.2%}", _ms(row["p50_ms"]), _ms(row["p95_ms"]),
                      _ms(row["p99_ms"]))
    if not stats["variants"]:
        table.caption = "no requests in this window"
    return table
