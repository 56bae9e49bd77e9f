"""The promote/demote decision: a pure function of (rates, hot set, policy, now) -> actions.

No I/O, no clock, no randomness: the orchestrator observes, this decides, the orchestrator acts.

Rules, in priority order:
1. `max_models` is a hard bound: the hot set never exceeds it after the actions.
2. Pinned models are always hot. The pins in force are the policy's `hot.pinned` (the schema
   guarantees they fit in `max_models`) plus the admin API's, oldest first, as many as fit
   (`pins_in_force`).
3. A model inside its cooldown (hot for less than `cooldown`) is not demoted, unless the hot
   set must shrink to fit rule 1 (the policy lowered `max_models` or pinned more models).
4. Past its cooldown, a hot model is demoted when its rate over the demote window is at most
   `demote.max_rate`; a cold model is a candidate when its rate over the promote window is at
   least `promote.min_rate`. The gap between the two rates and windows is the hysteresis.
5. The free slots go to the highest promote-window rates; a hot model past its cooldown can be
   displaced only by a candidate with a strictly higher rate (a tie keeps the hot one).
   Ties between candidates are broken by model name, so the same input gives the same actions.
6. A hot model that stays hot but whose instance is dead, or built from other container
   settings, is restarted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from policies.schema import HotPool

ActionKind = Literal["promote", "demote", "restart"]


@dataclass(frozen=True)
class Rates:
    """Requests per second per model over the promote window and over the demote window."""

    promote: Mapping[str, float]
    demote: Mapping[str, float]


@dataclass(frozen=True)
class HotModel:
    """A model that has a hot instance (starting, serving or dead), as the orchestrator sees it."""

    since: float  # when it became hot (kept across restarts of its instance)
    alive: bool = True
    current_spec: bool = True  # built from the running policy's container settings


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    model: str
    reason: str


def _fmt(rate: float) -> str:
    return f"{rate:.3g} req/s"


def pins_in_force(policy_pins: Sequence[str], admin_pins: Sequence[str], max_models: int
                  ) -> tuple[list[str], list[str]]:
    """(pins in force, admin pins left out). Both sources count: the policy's first, then the
    admin pins in the given order (oldest first) while they fit in `max_models`; a model
    pinned by both takes one slot."""
    pinned = list(dict.fromkeys(policy_pins))
    left_out: list[str] = []
    for model in dict.fromkeys(admin_pins):
        if model in pinned:
            continue
        if len(pinned) < max_models:
            pinned.append(model)
        else:
            left_out.append(model)
    return pinned, left_out


def decide(rates: Rates, hot: Mapping[str, HotModel], pool: HotPool,
           now: float, pins: Sequence[str] | None = None) -> list[Action]:
    """Actions that move the hot set toward what the policy wants. Order: demotions (they free
    slots), then restarts, then promotions (highest rate first). `pins`: the pins in force
    (`pins_in_force`, at most `max_models`); by default the policy's."""
    pinned = list(dict.fromkeys(pool.pinned if pins is None else pins))
    pinned_set = set(pinned)

    def p_rate(model: str) -> float:
        return float(rates.promote.get(model, 0.0))

    def d_rate(model: str) -> float:
        return float(rates.demote.get(model, 0.0))

    demote: dict[str, str] = {}
    locked: list[str] = []  # inside the cooldown
    contenders: list[str] = []  # hot, past the cooldown, still busy enough to stay
    for model in sorted(hot):
        if model in pinned_set:
            continue
        age = now - hot[model].since
        if age < pool.cooldown:
            locked.append(model)
        elif d_rate(model) <= pool.demote.max_rate:
            demote[model] = (f"{_fmt(d_rate(model))} over {pool.demote.window:g}s <= "
                             f"{_fmt(pool.demote.max_rate)}, hot for {age:.0f}s")
        else:
            contenders.append(model)

    slots = pool.max_models - len(pinned)
    # Rule 1 over rule 3: if the locked models alone overflow, keep the busiest.
    locked.sort(key=lambda m: (-p_rate(m), m))
    for model in locked[slots:]:
        demote[model] = f"over max_models={pool.max_models} (policy changed)"
    free = max(0, slots - len(locked))

    candidates = [m for m, r in rates.promote.items()
                  if m not in hot and m not in pinned_set and r >= pool.promote.min_rate]
    # Hot contenders sort before candidates at an equal rate: a tie never causes churn.
    ranked = sorted(contenders + candidates,
                    key=lambda m: (-p_rate(m), 0 if m in hot else 1, m))
    chosen = ranked[:free]
    for model in ranked[free:]:
        if model in hot:
            top = chosen[-1] if chosen else None
            demote[model] = (f"displaced by {top} ({_fmt(p_rate(top))})" if top and top not in hot
                             else f"over max_models={pool.max_models}")

    actions = [Action("demote", m, demote[m]) for m in sorted(demote)]
    for model in sorted(hot):
        if model in demote:
            continue
        state = hot[model]
        if not state.alive:
            actions.append(Action("restart", model, "instance is not running"))
        elif not state.current_spec:
            actions.append(Action("restart", model, "container settings changed"))
    for model in pinned:
        if model not in hot:
            actions.append(Action("promote", model, "pinned"))
    for model in chosen:
        if model not in hot:
            actions.append(Action("promote", model, f"{_fmt(p_rate(model))} over "
                                  f"{pool.promote.window:g}s >= {_fmt(pool.promote.min_rate)}"))
    return actions


def hot_after(hot: Mapping[str, HotModel], actions: list[Action]) -> set[str]:
    """The hot set once `actions` are carried out (tests and logs)."""
    result = set(hot)
    for action in actions:
        if action.kind == "demote":
            result.discard(action.model)
        elif action.kind == "promote":
            result.add(action.model)
    return result
