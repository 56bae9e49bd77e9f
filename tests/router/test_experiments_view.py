"""`tierserve experiments list/stats` tables, rendered as a terminal would show them."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from router.experiments_view import experiments_table, stats_table


def render(table: Table) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_experiments_table_names_variants_weights_and_shadow() -> None:
    text = render(experiments_table([
        {"name": "recommender", "variants": [
            {"model": "example-a", "weight": 90},
            {"model": "example-b", "version": 2, "weight": 10, "name": "canary"}],
         "shadow": {"model": "example-c", "label": "stable", "percent": 5.0},
         "sticky_header": "X-Session"},
        {"name": "plain", "variants": [{"model": "m", "weight": 100}]}]))
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "example-a=90, canary (example-b:2)=10" in rows["recommender"]
    assert "example-c:stable=5" in rows["recommender"] and "X-Session" in rows["recommender"]
    assert "m=100" in rows["plain"] and "(router's)" in rows["plain"]


def test_an_empty_list_says_so() -> None:
    assert "no experiments" in render(experiments_table([]))


def test_stats_table_one_row_per_variant() -> None:
    row = {"model": "example-a", "variant": "example-a", "shadow": False, "count": 1200,
           "errors": 3, "error_rate": 0.0025, "rate_per_s": 0.3333, "mean_ms": 4.0,
           "p50_ms": 3.25, "p95_ms": 9.0, "p99_ms": None}
    text = render(stats_table({"experiment": "recommender", "window_s": 3600.0, "variants": [
        row, {**row, "variant": "example-c", "shadow": True, "count": 60}]}))
    assert "recommender: last 3600 s" in text
    lines = [line for line in text.splitlines() if "example-" in line]
    cells = [c.strip() for c in lines[0].split("│")[1:-1]]
    assert cells == ["example-a", "1200", "0.333", "3", "0.25%", "3.2", "9.0", "-"]
    assert "example-c (shadow)" in lines[1]
    empty = render(stats_table({"experiment": "x", "window_s": 60, "variants": []}))
    assert "no requests in this window" in empty
