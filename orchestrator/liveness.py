"""The orchestrator's liveness rules, pure: observed instances and probe results in, the new
bookkeeping and the effects to carry out out. No I/O: the loop observes, calls these, then
acts on the effects and records them.

- One instance per model: a running one with the current settings, the oldest, wins.
- A ready instance (it once reported AVAILABLE) counts as dead after `probe_failures_dead`
  failed probes in a row; an exited one at once.
- A starting instance that is not AVAILABLE within `start_timeout` is stopped and its model
  retried after backoff, which doubles per failure up to `backoff_max`.
- A model is routed hot to an instance once it answers, and routed cold as soon as that
  instance is dead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from base.names import is_valid_model_name
from orchestrator.runtime import Instance
from policies.schema import HotPool

V = TypeVar("V")
PROBE_FAILURES_DEAD = 3  # consecutive failed probes before a ready instance counts as dead


@dataclass(frozen=True)
class Rules:
    start_timeout: float
    backoff_initial: float
    backoff_max: float
    probe_failures_dead: int = PROBE_FAILURES_DEAD

    @classmethod
    def of(cls, hot: HotPool) -> Rules:
        return cls(hot.start_timeout, hot.restart_backoff.initial, hot.restart_backoff.max)


@dataclass(frozen=True)
class Backoff:
    failures: int = 0
    next_at: float = 0.0


@dataclass(frozen=True)
class Book:
    """What the loop remembers between passes (lost on restart: costs at most a repeated
    probe or a longer drain). Never changed in place: every rule returns a new Book."""

    first_seen: Mapping[str, float] = field(default_factory=dict)  # instance id -> time
    ready: frozenset[str] = frozenset()  # instance ids that reported AVAILABLE
    probe_failures: Mapping[str, int] = field(default_factory=dict)  # instance id -> count
    draining: Mapping[str, float] = field(default_factory=dict)  # instance id -> stop time
    backoff: Mapping[str, Backoff] = field(default_factory=dict)  # model -> state

    def seen(self, instance_id: str, now: float) -> Book:
        return replace(self, first_seen={**self.first_seen, instance_id: now})

    def drain(self, instance_id: str, until: float) -> Book:
        return replace(self, draining={**self.draining, instance_id: until})

    def drained(self, instance_id: str) -> Book:
        return replace(self, draining=_without(self.draining, {instance_id}))

    def retry_later(self, model: str, rules: Rules, now: float) -> Book:
        """One more failure for `model`: no new start before the backoff delay."""
        old = self.backoff.get(model, Backoff())
        delay = min(rules.backoff_max, rules.backoff_initial * 2 ** old.failures)
        return replace(self, backoff={**self.backoff,
                                      model: Backoff(old.failures + 1, now + delay)})

    def forgive(self, model: str) -> Book:
        return replace(self, backoff=_without(self.backoff, {model}))

    def due(self, model: str, now: float) -> bool:
        """May `model` be started now (no backoff pending)?"""
        backoff = self.backoff.get(model)
        return backoff is None or backoff.next_at <= now

    def starting(self) -> set[str]:
        return set(self.first_seen) - self.ready

    def forget_gone(self, present: Iterable[str]) -> Book:
        """Drop instances that no longer exist (model backoffs stay)."""
        keep = set(present)
        return replace(self, first_seen=_only(self.first_seen, keep),
                       ready=self.ready & keep,
                       probe_failures=_only(self.probe_failures, keep),
                       draining=_only(self.draining, keep))


def _without(table: Mapping[str, V], keys: set[str]) -> dict[str, V]:
    return {k: v for k, v in table.items() if k not in keys}


def _only(table: Mapping[str, V], keys: set[str]) -> dict[str, V]:
    return {k: v for k, v in table.items() if k in keys}


@dataclass(frozen=True)
class Route:
    """A model's hot placement as the db has it."""

    endpoint: str | None
    healthy: bool = True
    grpc: str | None = None


@dataclass(frozen=True)
class RouteHot:
    model: str
    endpoint: str | None
    reason: str
    grpc: str | None = None


@dataclass(frozen=True)
class RouteCold:
    model: str
    reason: str


@dataclass(frozen=True)
class Stop:
    instance: Instance
    action: str  # the event's action: remove_duplicate, start_timeout, ...
    outcome: str


Effect = RouteHot | RouteCold | Stop


@dataclass(frozen=True)
class Health:
    alive: dict[str, bool]  # instance id -> alive (starting counts as alive); stopped ones left out
    book: Book
    effects: list[Effect]


def one_per_model(instances: Sequence[Instance], spec_hash: str | Callable[[str], str]
                  ) -> tuple[list[Instance], list[Stop]]:
    """Keep one instance per model (running, current settings, oldest); stop the others and
    any without a valid model label. The kept ones stay in their input order. `spec_hash`:
    the current settings' hash, or a function of the model giving it."""
    chosen: dict[str, Instance] = {}
    stops: list[Stop] = []
    current = spec_hash if callable(spec_hash) else (lambda _model: spec_hash)
    for inst in sorted(instances, key=lambda i: (not i.running, i.policy_hash != current(i.model),
                                                 i.hot_since, i.id)):
        if not is_valid_model_name(inst.model):
            stops.append(Stop(inst, "remove_unknown", "instance without a valid model label"))
        elif inst.model in chosen:
            stops.append(Stop(inst, "remove_duplicate",
                              f"{inst.model} already has {chosen[inst.model].id[:12]}"))
        else:
            chosen[inst.model] = inst
    return [i for i in instances if chosen.get(i.model) is i], stops


def drains_due(book: Book, instances: Sequence[Instance], now: float) -> list[Instance]:
    """Draining instances whose grace is over: to stop now."""
    return [i for i in instances if i.id in book.draining and book.draining[i.id] <= now]


def assess(instances: Sequence[Instance], answers: Mapping[str, bool],
           routes: Mapping[str, Route], book: Book, rules: Rules, now: float) -> Health:
    """Liveness of each instance from this pass's probes (`answers`: instance id -> it reports
    its model AVAILABLE; missing: no answer). `routes`: the hot placements by model."""
    alive: dict[str, bool] = {}
    effects: list[Effect] = []
    for inst in instances:
        if inst.id not in book.first_seen:
            book = book.seen(inst.id, now)
        first = book.first_seen[inst.id]
        route = routes.get(inst.model)
        routed_here = route is not None and route.endpoint == inst.endpoint
        if inst.running and answers.get(inst.id, False):
            alive[inst.id] = True
            book = replace(book, probe_failures=_without(book.probe_failures, {inst.id}))
            if inst.id not in book.ready:
                book = replace(book, ready=book.ready | {inst.id}).forgive(inst.model)
            # A placement written without the gRPC address (before it was stored) gets it.
            if route is None or not routed_here or not route.healthy or route.grpc != inst.grpc:
                effects.append(RouteHot(inst.model, inst.endpoint, f"{inst.endpoint} reports "
                                        f"AVAILABLE after {now - first:.1f}s", inst.grpc))
            continue
        if not inst.running:
            alive[inst.id] = False
        elif inst.id in book.ready:
            fails = book.probe_failures.get(inst.id, 0) + 1
            book = replace(book, probe_failures={**book.probe_failures, inst.id: fails})
            alive[inst.id] = fails < rules.probe_failures_dead
        elif now - first > rules.start_timeout:
            book = book.retry_later(inst.model, rules, now)
            effects.append(Stop(inst, "start_timeout", f"not AVAILABLE after "
                                f"{rules.start_timeout:g}s; stopped, retry after backoff"))
            if routed_here:
                effects.append(RouteCold(inst.model, f"instance {inst.detail}, probe failed"))
            continue  # stopped: neither alive nor dead in this pass
        else:
            alive[inst.id] = True  # still starting
        if not alive[inst.id] and routed_here:
            effects.append(RouteCold(inst.model, f"instance {inst.detail}, probe failed"))
    return Health(alive, book, effects)


def stale_routes(routes: Mapping[str, Route], live: Sequence[Instance]) -> list[str]:
    """Models routed hot to no live instance of ours (a crash, a removed container)."""
    endpoints = {i.endpoint for i in live}
    return [model for model, route in routes.items() if route.endpoint not in endpoints]
