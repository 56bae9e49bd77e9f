"""Latency figures of an open-loop run and the capacity a rate sweep finds, pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from testkit.loadgen import Outcome
from testkit.trace import Planned

SLO_S = 0.050  # popular-model p99 at or below this, and nothing failed: the rate is held


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was observed; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Group:
    count: int
    p50_s: float
    p99_s: float
    p999_s: float
    failed: int  # not answered 200 with the right prediction
    unavailable: int  # of which 503

    @staticmethod
    def of(outcomes: Iterable[Outcome]) -> Group:
        items = list(outcomes)
        # Failed requests count in the latency too: a fast 503 must not look like a fast answer.
        lat = [o.latency_s for o in items]
        return Group(len(items), percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9),
                     sum(not o.ok for o in items), sum(o.status == 503 for o in items))


def groups(requests: Sequence[Planned], outcomes: Sequence[Outcome],
           extra: Mapping[str, Callable[[Planned, Outcome], bool]] | None = None
           ) -> dict[str, Group]:
    """all / popular / rest, then by pool and cache header when the servers sent them."""
    pairs = [(requests[o.index], o) for o in outcomes]
    out = {"all": Group.of(o for _, o in pairs),
           "popular": Group.of(o for r, o in pairs if r.popular),
           "rest": Group.of(o for r, o in pairs if not r.popular)}
    for label in sorted({o.pool for _, o in pairs if o.pool}):
        out[f"pool={label}"] = Group.of(o for _, o in pairs if o.pool == label)
    for label in sorted({o.cache for _, o in pairs if o.cache}):
        out[f"cache={label}"] = Group.of(o for _, o in pairs if o.cache == label)
    for name, keep in (extra or {}).items():
        out[name] = Group.of(o for r, o in pairs if keep(r, o))
    return out


def holds(figures: Mapping[str, Group], slo_s: float = SLO_S) -> bool:
    """The rate is held: popular p99 within the SLO and not one request failed."""
    popular, total = figures["popular"], figures["all"]
    return total.count > 0 and total.failed == 0 and popular.p99_s <= slo_s


def capacity(held_by_rate: Mapping[float, bool]) -> float | None:
    """The highest rate held with every lower tested rate held too (noise-proof: a pass
    above a failure is not trusted); None when even the lowest failed."""
    best = None
    for rate in sorted(held_by_rate):
        if not held_by_rate[rate]:
            break
        best = rate
    return best


def auto_rates(start: float = 10.0, factor: float = 1.5, top: float = 400.0) -> list[float]:
    """Geometric steps for `--sweep auto`, rounded to whole requests per second."""
    rates, rate = [], start
    while rate <= top:
        if not rates or round(rate) != rates[-1]:
            rates.append(float(round(rate)))
        rate *= factor
    return rates
