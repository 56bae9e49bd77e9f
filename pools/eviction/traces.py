"""Pure, seeded request traces for the eviction simulator and benchmark.

Every generator returns the same trace for the same arguments. Models get a
size and a load time drawn once per catalogue (log-normal-ish spread, load time
roughly proportional to size) so that miss cost means something.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    size_bytes: int
    load_cost_s: float


@dataclass(frozen=True)
class Trace:
    name: str
    requests: tuple[str, ...]
    catalogue: Mapping[str, ModelSpec]
    # for the scan trace: [start, end) of the scan, and the models popular around it
    scan: tuple[int, int] | None = None
    hot: tuple[str, ...] = field(default=())


def model_names(n_models: int) -> list[str]:
    width = len(str(n_models - 1))
    return [f"m{i:0{width}d}" for i in range(n_models)]


def catalogue(names: list[str], seed: int = 7) -> dict[str, ModelSpec]:
    """Sizes 1 MB..~400 MB (log-uniform); load 0.05 s + size at ~200 MB/s, +-50 % noise."""
    rng = random.Random(f"catalogue-{seed}")
    specs: dict[str, ModelSpec] = {}
    for name in names:
        size = int(10 ** rng.uniform(6.0, 8.6))
        cost = (0.05 + size / 200e6) * rng.uniform(0.5, 1.5)
        specs[name] = ModelSpec(size_bytes=size, load_cost_s=round(cost, 4))
    return specs


def _zipf_cum_weights(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


def _zipf_stream(ranked: list[str], s: float, count: int, rng: random.Random) -> list[str]:
    return rng.choices(ranked, cum_weights=_zipf_cum_weights(len(ranked), s), k=count)


def zipf(s: float = 1.0, n_models: int = 1000, n_requests: int = 50_000, seed: int = 1) -> Trace:
    """Stationary Zipf(s): the model of rank r is requested with weight 1 / r**s."""
    names = model_names(n_models)
    rng = random.Random(f"zipf-{s}-{seed}")
    ranked = rng.sample(names, len(names))  # popularity is not tied to the name
    requests = _zipf_stream(ranked, s, n_requests, rng)
    return Trace(f"zipf-{s:g}", tuple(requests), catalogue(names), hot=tuple(ranked[:50]))


def shifting(
    s: float = 1.0,
    n_models: int = 1000,
    n_requests: int = 50_000,
    phase: int = 10_000,
    seed: int = 1,
) -> Trace:
    """Zipf(s) whose popularity ranking is redrawn every `phase` requests."""
    names = model_names(n_models)
    rng = random.Random(f"shifting-{s}-{phase}-{seed}")
    requests: list[str] = []
    while len(requests) < n_requests:
        ranked = rng.sample(names, len(names))
        requests += _zipf_stream(ranked, s, min(phase, n_requests - len(requests)), rng)
    return Trace(f"shifting-{s:g}/{phase}", tuple(requests), catalogue(names))


def scan(s: float = 1.0, n_models: int = 1000, n_requests: int = 50_000, seed: int = 1) -> Trace:
    """A Zipf(s) stream with every model requested once (shuffled) in its middle.

    `n_requests` counts the Zipf part; the trace is `n_models` longer.
    """
    names = model_names(n_models)
    rng = random.Random(f"scan-{s}-{seed}")
    ranked = rng.sample(names, len(names))
    stream = _zipf_stream(ranked, s, n_requests, rng)
    sweep = rng.sample(names, len(names))
    middle = n_requests // 2
    requests = stream[:middle] + sweep + stream[middle:]
    return Trace(
        f"scan-{s:g}",
        tuple(requests),
        catalogue(names),
        scan=(middle, middle + len(sweep)),
        hot=tuple(ranked[:20]),
    )


def standard(n_requests: int = 50_000, n_models: int = 1000, seed: int = 1) -> list[Trace]:
    """The benchmark's traces (issue 7)."""
    return [
        zipf(0.8, n_models, n_requests, seed),
        zipf(1.0, n_models, n_requests, seed),
        zipf(1.2, n_models, n_requests, seed),
        shifting(1.0, n_models, n_requests, max(1, n_requests // 5), seed),
        scan(1.0, n_models, n_requests, seed),
    ]
