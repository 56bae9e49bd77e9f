"""Seeded, timed request traces for open-loop benchmarks: the demo's workload, pure.

A trace is a list of requests, each with the time (seconds from the start) at
which it must be sent and the model it asks for. The mix is the demo's: Zipf
over the models, then one rare model (the star) rises to a fixed share of the
traffic and falls again (`tierserve.demo_traffic`). Each request is labelled
popular or not from the share its model is expected to get in its phase, so
every set-up that replays the trace sorts the same requests into the same groups.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from tierserve.demo_traffic import Phase, Picker, model_names, phase_at, phases

# Refuse parameters that would schedule more than this: the generator must stay bounded.
MAX_REQUESTS = 500_000


@dataclass(frozen=True)
class Planned:
    at_s: float  # scheduled send time, from the start of the run
    model: str
    popular: bool


@dataclass(frozen=True)
class Trace:
    requests: tuple[Planned, ...]
    models: tuple[str, ...]
    star: str
    rate: float
    duration_s: float

    def __len__(self) -> int:
        return len(self.requests)


def zipf_shares(count: int, s: float = 1.0) -> list[float]:
    """Expected share of the traffic for each Zipf rank (rank 1 first)."""
    weights = [1.0 / rank**s for rank in range(1, count + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def expected_share(phase: Phase, rank_share: float, is_star: bool) -> float:
    """A model's share of the traffic in `phase`: its Zipf share, the star's on top."""
    return rank_share * (1.0 - phase.star_share) + (phase.star_share if is_star else 0.0)


def schedule(rate: float, duration_s: float, arrivals: str = "uniform",
             seed: int = 1) -> list[float]:
    """Send times: `uniform` (every 1/rate s) or `poisson` (seeded exponential gaps)."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    count = int(rate * duration_s)
    if count > MAX_REQUESTS:
        raise ValueError(f"{count} requests is more than the bound of {MAX_REQUESTS}")
    if arrivals == "uniform":
        return [i / rate for i in range(count)]
    if arrivals == "poisson":
        rng = random.Random(f"arrivals-{seed}")
        times = itertools.accumulate(rng.expovariate(rate) for _ in range(count))
        return [t for t in times if t < duration_s]
    raise ValueError(f"unknown arrivals {arrivals!r}: uniform or poisson")


def make_trace(models: int, rate: float, duration_s: float, seed: int = 7,
               popular_share: float = 0.1, arrivals: str = "uniform") -> Trace:
    """The demo's mix at `rate` for `duration_s`; popular = expected share >= popular_share."""
    names = model_names(models)
    picker = Picker(names, seed=seed)
    shares = dict(zip(names, zipf_shares(models), strict=True))
    plan = phases(duration_s)
    out = []
    for at in schedule(rate, duration_s, arrivals, seed):
        phase = phase_at(plan, at)
        model = picker.pick(phase)
        share = expected_share(phase, shares[model], model == picker.star)
        out.append(Planned(at, model, share >= popular_share))
    return Trace(tuple(out), tuple(names), picker.star, rate, duration_s)


def steady(models: int, rate: float, duration_s: float, seed: int = 7) -> list[Planned]:
    """The steady Zipf mix alone (no star), e.g. to warm a set-up up before it is measured."""
    names = model_names(models)
    picker = Picker(names, seed=seed + 1000)  # other draws than the measured trace
    phase = Phase("steady", duration_s, 0.0)
    return [Planned(at, picker.pick(phase), False) for at in schedule(rate, duration_s)]


def isolation_trace(models: list[str], slots: int, hot_rate: float, churn_rate: float,
                    duration_s: float, churn: bool) -> list[Planned]:
    """The top model at hot_rate (popular); with churn, also a round robin at churn_rate over
    more models than the pool's slots, so that each of those is a miss under LRU."""
    hot = [Planned(i / hot_rate, models[0], True) for i in range(int(hot_rate * duration_s))]
    if not churn:
        return hot
    tail = models[max(1, len(models) // 2):]
    tail = tail if len(tail) > slots else models[1:]
    cold = [Planned((i + 0.5) / churn_rate, tail[i % len(tail)], False)
            for i in range(int(churn_rate * duration_s))]
    return sorted(hot + cold, key=lambda r: r.at_s)


def model_value(model: str) -> float:
    """The `a` of the demo's model y = a*x (`model-0003` answers 4*x)."""
    return float(int(model.rsplit("-", 1)[1]) + 1)
