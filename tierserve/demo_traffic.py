"""The demo's traffic plan, pure: which model each request asks for, phase by phase.

Three phases over the run: a steady Zipf mix; then one rare model turns
popular (it gets a fixed share of the traffic); then it goes quiet again.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    until_s: float  # phase ends this many seconds into the run
    star_share: float  # share of requests sent to the rising model


def model_names(count: int) -> list[str]:
    return [f"model-{i:04d}" for i in range(count)]


def phases(duration_s: float) -> list[Phase]:
    return [Phase("steady Zipf mix", duration_s * 0.3, 0.0),
            Phase("a rare model turns popular", duration_s * 0.6, 0.3),
            Phase("it goes quiet again", duration_s, 0.0)]


def phase_at(plan: list[Phase], elapsed_s: float) -> Phase:
    for phase in plan:
        if elapsed_s < phase.until_s:
            return phase
    return plan[-1]


class Picker:
    """Draws model names: Zipf(s) over `names`, plus the star's share when a phase gives one."""

    def __init__(self, names: list[str], s: float = 1.0, seed: int = 7) -> None:
        self.names = names
        self.star = names[len(names) * 3 // 4]  # far down the Zipf ranks: rare at first
        self._cumulative = list(itertools.accumulate(1.0 / (rank ** s)
                                                     for rank in range(1, len(names) + 1)))
        self._random = random.Random(seed)

    def pick(self, phase: Phase) -> str:
        if phase.star_share and self._random.random() < phase.star_share:
            return self.star
        point = self._random.random() * self._cumulative[-1]
        return self.names[bisect.bisect_left(self._cumulative, point)]

    def value(self, name: str) -> float:
        """The model's `a` in y = a*x (the demo's models are y = (index+1) * x)."""
        return float(self.names.index(name) + 1)
