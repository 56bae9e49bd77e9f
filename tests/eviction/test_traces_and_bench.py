"""The trace generators, and the benchmark as a user runs it (`tierserve bench eviction`)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from pools.eviction import traces

ROOT = Path(__file__).resolve().parents[2]


def test_traces_are_reproducible_and_sized_as_asked() -> None:
    a, b = traces.zipf(1.0, n_requests=2000), traces.zipf(1.0, n_requests=2000)
    assert a.requests == b.requests and len(a.requests) == 2000
    assert traces.zipf(1.0, n_requests=2000, seed=2).requests != a.requests
    assert set(a.catalogue) == set(traces.model_names(1000))


def test_zipf_skew_grows_with_s() -> None:
    top = [
        Counter(traces.zipf(s, n_requests=20_000).requests).most_common(1)[0][1]
        for s in (0.8, 1.0, 1.2)
    ]
    assert top[0] < top[1] < top[2]


def test_the_scan_requests_every_model_once_in_the_middle() -> None:
    trace = traces.scan(1.0, n_models=200, n_requests=4000)
    start, end = trace.scan or (0, 0)
    assert (start, end) == (2000, 2200)
    assert sorted(trace.requests[start:end]) == traces.model_names(200)
    assert len(trace.requests) == 4200


def test_the_shifting_mix_changes_its_popular_set_each_phase() -> None:
    trace = traces.shifting(1.0, n_models=1000, n_requests=30_000, phase=10_000)
    tops = [
        {k for k, _ in Counter(trace.requests[i : i + 10_000]).most_common(10)}
        for i in range(0, 30_000, 10_000)
    ]
    assert len(tops[0] & tops[1]) <= 3 and len(tops[1] & tops[2]) <= 3


def test_the_benchmark_prints_the_table_through_the_cli() -> None:
    out = subprocess.run(
        [
            str(ROOT / ".venv/bin/tierserve"),
            "bench",
            "eviction",
            "--requests",
            "3000",
            "--models",
            "200",
            "--slots",
            "10",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    for needle in ("zipf-0.8", "zipf-1.2", "shifting-1/600", "scan-1", "belady", "tinylfu"):
        assert needle in out
    assert "x Belady" in out and "top-20 resident" in out
