"""The figures of one `bench tiering` run, as a record, text tables and JSON."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from testkit.latency import Group, capacity


@dataclass
class Run:
    setup: str
    phase: str  # main / alone / churn / sweep
    rate: float
    round: int
    planned: int  # requests in the trace
    sent: int  # requests the generator sent (always all of them: open loop)
    groups: dict[str, Group]
    procs: dict[str, tuple[float, float]]  # role -> (CPU seconds in the run, peak RSS MB)
    load: tuple[float, float]  # 1-minute load average at start and end
    max_lag_s: float
    client_cpu_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    star: dict[str, bool] = field(default_factory=dict)
    note: str = ""

    def cpu_per_1000(self) -> dict[str, float]:
        return {role: 1000 * cpu / max(1, self.sent) for role, (cpu, _) in self.procs.items()}


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}" if seconds >= 1 \
        else f"{seconds * 1000:.1f}"


def _trio(g: Group) -> str:
    return f"{_ms(g.p50_s)} / {_ms(g.p99_s)} / {_ms(g.p999_s)}"


def statuses(outcomes: list[Any]) -> dict[str, int]:
    return dict(Counter(str(o.status) if o.status else (o.error or "no answer")
                        for o in outcomes if not o.ok))


def runs_table(runs: list[Run], labels: dict[str, str]) -> str:
    lines = [f"{'set-up':6} {'phase':6} {'rate':>5} {'sent':>6} {'failed':>6} {'503':>5}  "
             f"{'popular p50/p99/p99.9 ms':>26}  {'rest p50/p99/p99.9 ms':>24}  "
             f"{'lag ms':>6}  load start-end"]
    for r in runs:
        g = r.groups
        lines.append(f"{r.setup:6} {r.phase:6} {r.rate:5.0f} {r.sent:6d} {g['all'].failed:6d} "
                     f"{g['all'].unavailable:5d}  {_trio(g['popular']):>26}  "
                     f"{_trio(g['rest']):>24}  {r.max_lag_s * 1000:6.1f}  "
                     f"{r.load[0]:.2f}-{r.load[1]:.2f}")
    lines.append("set-ups: " + "; ".join(f"{k} = {v}" for k, v in labels.items()))
    return "\n".join(lines)


def detail(r: Run) -> str:
    """Per-process CPU and RSS, the pool/cache split and the failures of one run."""
    out = [f"[{r.setup} {r.phase} {r.rate:.0f} req/s] CPU s per 1,000 requests, peak RSS:"]
    for role, per in sorted(r.cpu_per_1000().items()):
        out.append(f"    {role:28} {per:8.2f} s   {r.procs[role][1]:7.0f} MB")
    out.append(f"    {'(load generator)':28} {1000 * r.client_cpu_s / max(1, r.sent):8.2f} s")
    for name, g in r.groups.items():
        if name.startswith(("pool=", "cache=")):
            out.append(f"    {name:12} {g.count:6d} answers, p50/p99/p99.9 {_trio(g)} ms, "
                       f"{g.failed} failed")
    if r.statuses:
        out.append(f"    failures: {r.statuses}")
    if r.star:
        out.append(f"    rising model promoted: {r.star.get('promoted')}, "
                   f"then demoted: {r.star.get('demoted')}")
    if r.note:
        out.append(f"    note: {r.note}")
    return "\n".join(out)


def isolation_table(runs: list[Run]) -> str:
    lines = [f"{'set-up':6} {'hot p50/p99/p99.9 alone ms':>28} {'with cold churn ms':>24} "
             f"{'churn p50/p99 ms':>18} {'failed':>6}  note"]
    by = {(r.setup, r.phase): r for r in runs}
    for setup in sorted({r.setup for r in runs}):
        alone, churn = by.get((setup, "alone")), by.get((setup, "churn"))
        if alone is None or churn is None:
            continue
        rest = churn.groups["rest"]
        lines.append(f"{setup:6} {_trio(alone.groups['popular']):>28} "
                     f"{_trio(churn.groups['popular']):>24} "
                     f"{_ms(rest.p50_s) + ' / ' + _ms(rest.p99_s):>18} "
                     f"{alone.groups['all'].failed + churn.groups['all'].failed:6d}  "
                     f"{alone.note}")
    return "\n".join(lines)


def sweep_table(held: dict[str, dict[float, bool]], runs: list[Run], slo_ms: float) -> str:
    setups = sorted(held)
    rates = sorted({rate for h in held.values() for rate in h})
    by = {(r.setup, r.rate): r for r in runs if r.phase == "sweep"}
    lines = [f"{'rate':>6} " + " ".join(f"{s + ': popular p99 ms, failed':>28}" for s in setups)]
    for rate in rates:
        cells = []
        for s in setups:
            r = by.get((s, rate))
            cells.append(f"{'-':>28}" if r is None else f"{_ms(r.groups['popular'].p99_s):>10}, "
                         f"{r.groups['all'].failed:5d} {'held' if held[s][rate] else 'NOT held':>8}"
                         .rjust(28))
        lines.append(f"{rate:6.0f} " + " ".join(cells))
    caps = {s: capacity(held[s]) for s in setups}
    lines.append(f"capacity (highest rate held, popular p99 <= {slo_ms:.0f} ms, 0 failed, "
                 "every lower rate held too): "
                 + ", ".join(f"{s} {c if c is not None else 'below the lowest rate'}"
                             for s, c in caps.items()))
    if caps.get("a") and caps.get("c") is not None:
        ratio = (caps["c"] or 0) / caps["a"]
        lines.append(f"full tierserve / seed design: {ratio:.2f}x (target: at least 2x)")
    return "\n".join(lines)


def to_json(runs: list[Run], held: dict[str, dict[float, bool]],
            params: dict[str, Any]) -> dict[str, Any]:
    def run_json(r: Run) -> dict[str, Any]:
        body = asdict(r)
        body["groups"] = {k: asdict(g) for k, g in r.groups.items()}
        body["cpu_s_per_1000"] = r.cpu_per_1000()
        body["peak_rss_mb"] = {role: rss for role, (_, rss) in r.procs.items()}
        body["client_cpu_s_per_1000"] = 1000 * r.client_cpu_s / max(1, r.sent)
        return body

    return {"params": params, "cpus": os.cpu_count(), "runs": [run_json(r) for r in runs],
            "sweep": {s: {str(rate): ok for rate, ok in h.items()} for s, h in held.items()},
            "capacity": {s: capacity(h) for s, h in held.items()}}
