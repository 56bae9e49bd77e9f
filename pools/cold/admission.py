"""Admission of misses: answer 503 at once when a wait for a load cannot end in time.

Pure: no clock, no I/O. The pool measures; this module decides. A request that
would wait longer than `load_wait` only to get a 503 then is told so at once,
with `Retry-After` set to when its load could be done, and its load is not
queued (an unbounded queue of loads is what makes every later miss miss its
deadline too).

The expected wait of a load at `position` among the loads not yet done (0 is
the oldest), with `parallel` of them running at a time and each taking
`load_s`: it starts after `position // parallel` rounds and ends one round
later. `load_s` is measured while loads run side by side, so it already holds
what they cost each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class Limits:
    load_wait_s: float
    parallel: int  # loads at once
    max_queued_per_model: int  # requests waiting for one model's load
    max_queued: int  # requests waiting for any load


@dataclass(frozen=True)
class Queue:
    """The state a miss arrives into."""

    pending_loads: int  # loads started (running or waiting for a slot), not yet done
    position: int | None  # this model's place among them; None: its load is not pending
    waiting_for_model: int  # requests already waiting for this model
    waiting: int  # requests already waiting for any load


@dataclass(frozen=True)
class Verdict:
    admit: bool
    reason: str = ""  # why not: "model_queue", "queue", "too_slow"
    expected_wait_s: float = 0.0
    retry_after_s: float = 0.0


def expected_wait(position: int, parallel: int, load_s: float) -> float:
    """Seconds until the load at `position` (0 = oldest pending) is done."""
    if position < 0 or parallel < 1 or load_s < 0:
        raise ValueError(f"bad queue: position={position} parallel={parallel} load_s={load_s}")
    return (position // parallel + 1) * load_s


def decide(queue: Queue, limits: Limits, load_s: float | None) -> Verdict:
    """Admit a miss, or say why not and when to come back.

    `load_s` is the measured load time (None before the first load: only the
    bounds apply, there is nothing yet to predict with).
    """
    position = queue.pending_loads if queue.position is None else queue.position
    wait = 0.0 if load_s is None else expected_wait(position, limits.parallel, load_s)
    retry = min(max(wait, MIN_RETRY_AFTER_S), max(limits.load_wait_s, MIN_RETRY_AFTER_S))
    if queue.waiting_for_model >= limits.max_queued_per_model:
        return Verdict(False, "model_queue", wait, retry)
    if queue.waiting >= limits.max_queued:
        return Verdict(False, "queue", wait, retry)
    if wait > limits.load_wait_s:
        # Come back when the loads ahead are done, whatever the wait allowed now.
        return Verdict(False, "too_slow", wait, max(wait - limits.load_wait_s,
                                                    MIN_RETRY_AFTER_S))
    return Verdict(True, expected_wait_s=wait)


class Ewma:
    """Exponentially weighted mean of measured load times."""

    def __init__(self, alpha: float = 0.2) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        self.alpha = alpha
        self.value: float | None = None

    def add(self, sample: float) -> float:
        if sample < 0 or math.isnan(sample):
            raise ValueError(f"bad sample {sample}")
        self.value = sample if self.value is None else (
            self.alpha * sample + (1 - self.alpha) * self.value)
        return self.value
