"""The reconcile loop: observe, decide (pure, in policies.decide), act, record.

Level-based: every pass re-reads the policy file, the runtime's instances, the placements and
the request rates, so running a pass twice is safe and a pass with nothing to change does
nothing. Only short-lived bookkeeping lives in memory (what is starting, draining, backing off);
losing it on a restart costs at most a repeated probe or a longer drain.

Promotion: start an instance -> later passes probe it -> once AVAILABLE, write the hot
placement (the router switches). Demotion: remove the placement first (the router sends new
requests cold), drain for `hot.drain`, then stop. A dead or unanswering instance loses its
placement at once and is restarted with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from base.errors import TierserveError
from base.names import is_valid_model_name
from db import queries
from db.queries import Engine
from orchestrator.runtime import Instance, InstanceSpec, Runtime
from orchestrator.status import Metrics
from policies.decide import Action, HotModel, Rates, decide
from policies.schema import Policy
from policies.watch import PolicyWatcher

log = logging.getLogger(__name__)

POLICY_EVENT_MODEL = ""  # events about the policy as a whole
PROBE_FAILURES_DEAD = 3  # consecutive failed probes before a ready instance counts as dead


@dataclass
class _Backoff:
    failures: int = 0
    next_at: float = 0.0


@dataclass
class _Book:
    """In-memory bookkeeping between passes."""

    first_seen: dict[str, float] = field(default_factory=dict)  # instance id -> time
    ready: set[str] = field(default_factory=set)  # instance ids that reported AVAILABLE
    probe_failures: dict[str, int] = field(default_factory=dict)
    draining: dict[str, float] = field(default_factory=dict)  # instance id -> stop time
    backoff: dict[str, _Backoff] = field(default_factory=dict)  # model -> state
    deferred: set[str] = field(default_factory=set)  # models whose deferral was logged


class Orchestrator:
    def __init__(self, engine: Engine, watcher: PolicyWatcher, runtime: Runtime,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
                 probe_timeout: float = 2.0,
                 probe: Callable[[Instance], bool] | None = None,
                 rates: Callable[[Policy, float], Rates] | None = None) -> None:
        """`probe` and `rates` replace the HTTP readiness probe and the db's request rates
        (unit tests with a fake runtime and a fake clock)."""
        self.engine = engine
        self.watcher = watcher
        self.runtime = runtime
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.http = httpx.Client(timeout=probe_timeout)
        self.book = _Book()
        self._probe_fn = probe or self._http_probe
        self._rates_fn = rates or self._db_rates
        self.last_pass: dict[str, Any] = {}
        self._rows_digest: str | None = None  # policy whose experiments/pins are in the db
        self._lock = threading.Lock()

    # -- events --------------------------------------------------------------------------

    def _event(self, model: str, action: str, reason: str, outcome: str) -> None:
        log.info("%s %s: %s -> %s", action, model or "(policy)", reason, outcome)
        self.metrics.actions.labels(action, outcome.split(":")[0].split(" ")[0]).inc()
        try:
            queries.record_event(self.engine, model, action, reason, outcome)
        except TierserveError:  # db trouble must never stop the loop: the event is logged above
            log.exception("cannot record event")

    # -- policy --------------------------------------------------------------------------

    def _reload_policy(self) -> Policy | None:
        result = self.watcher.poll()
        if result.error is not None:
            self.metrics.policy_valid.set(0)
            self.metrics.policy_errors.inc()
            errors = "; ".join(str(e) for e in result.error.errors)
            kept = (f"keeping {self.watcher.current.digest[:12]}" if self.watcher.current
                    else "no policy in force")
            self._event(POLICY_EVENT_MODEL, "policy_reload", f"{self.watcher.path} edited",
                        f"rejected: {errors} ({kept})")
        elif result.loaded is not None:
            self.metrics.policy_valid.set(1)
            self.metrics.policy_loaded_at.set(self.clock())
            self._event(POLICY_EVENT_MODEL, "policy_reload", str(self.watcher.path),
                        f"ok: sha256 {result.loaded.digest[:12]}")
        elif self.watcher.last_error is None and self.watcher.current is not None:
            self.metrics.policy_valid.set(1)
        current = self.watcher.current
        if current is not None and current.digest != self._rows_digest:
            # Until it succeeds (the db may be briefly unavailable), retried every pass.
            self._apply_policy_rows(current.policy)
            self._rows_digest = current.digest
        return current.policy if current else None

    def _apply_policy_rows(self, policy: Policy) -> None:
        """Experiments and pins from the YAML go to the db, where the router reads them."""
        for spec in policy.experiments:
            try:
                created = queries.upsert_experiment(self.engine, spec.stored())
                self._event(spec.name, "experiment", "from policy",
                            "created" if created else "updated")
            except TierserveError as exc:
                self._event(spec.name, "experiment", "from policy", f"failed: {exc}")
        pinned = set(policy.hot.pinned)
        for placement in queries.list_placements(self.engine):
            if placement.pinned and placement.model not in pinned:
                queries.set_pinned(self.engine, placement.model, False)
        for model in sorted(pinned):
            queries.set_pinned(self.engine, model, True)

    # -- observation ---------------------------------------------------------------------

    def _http_probe(self, inst: Instance) -> bool:
        """True when the instance reports its model AVAILABLE."""
        if not inst.running or not inst.endpoint:
            return False
        try:
            resp = self.http.get(f"{inst.endpoint}/v1/models/{inst.model}")
            states = [s.get("state") for s in resp.json().get("model_version_status", [])]
            return resp.status_code == 200 and "AVAILABLE" in states
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    def _db_rates(self, policy: Policy, now: float) -> Rates:
        hot = policy.hot
        return Rates(queries.request_rates(self.engine, hot.promote.window, now),
                     queries.request_rates(self.engine, hot.demote.window, now))

    # -- the pass ------------------------------------------------------------------------

    def reconcile_once(self) -> dict[str, Any]:
        with self._lock:
            try:
                report = self._pass()
                self.metrics.passes.labels("ok").inc()
            except Exception as exc:  # whatever failed, bugs included, the next pass runs
                log.exception("reconcile pass failed")
                self.metrics.passes.labels("error").inc()
                report = {"error": str(exc)}
            self.last_pass = {"at": self.clock(), **report}
            return report

    def _pass(self) -> dict[str, Any]:
        policy = self._reload_policy()
        if policy is None:
            return {"skipped": "no valid policy"}
        now = self.clock()
        instances = self.runtime.list_instances()
        stopped = self._finish_drains(instances, now)
        live = [i for i in instances if i.id not in self.book.draining and i.id not in stopped]
        live = self._drop_duplicates(live, policy)
        placements = {p.model: p for p in queries.list_placements(self.engine)}
        alive = self._observe_health(live, placements, policy, now)
        live = [i for i in live if i.id in alive]  # minus those stopped for a start timeout
        self._clear_stale_placements(live)

        spec_hash = policy.container_hash()
        hot = {i.model: HotModel(since=i.hot_since, alive=alive[i.id],
                                 current_spec=i.policy_hash == spec_hash) for i in live}
        actions = decide(self._rates_fn(policy, now), hot, policy.hot, now)
        by_model = {i.model: i for i in live}
        for action in actions:
            self._act(action, by_model.get(action.model), policy, now)
        self._forget_gone({i.id for i in self.runtime.list_instances()} if actions else
                          {i.id for i in instances})
        routed = sum(1 for p in queries.list_placements(self.engine) if p.pool == "hot")
        self.metrics.hot_models.set(routed)
        starting = sum(1 for i in live if i.id not in self.book.ready and alive.get(i.id))
        self.metrics.instances.labels("starting").set(starting)
        self.metrics.instances.labels("draining").set(len(self.book.draining))
        self.metrics.instances.labels("dead").set(sum(1 for v in alive.values() if not v))
        return {"actions": [vars(a) for a in actions], "hot": sorted(hot), "routed_hot": routed}

    def _finish_drains(self, instances: list[Instance], now: float) -> set[str]:
        stopped = set()
        for inst in instances:
            stop_at = self.book.draining.get(inst.id)
            if stop_at is not None and stop_at <= now:
                self._stop(inst, "demote", "drained")
                self.book.draining.pop(inst.id, None)
                stopped.add(inst.id)
        return stopped

    def _drop_duplicates(self, live: list[Instance], policy: Policy) -> list[Instance]:
        """Keep one instance per model (running, current settings, oldest); stop the others
        and any without a model label."""
        spec_hash = policy.container_hash()
        chosen: dict[str, Instance] = {}
        for inst in sorted(live, key=lambda i: (not i.running, i.policy_hash != spec_hash,
                                                i.hot_since, i.id)):
            if not is_valid_model_name(inst.model):
                self._stop(inst, "remove_unknown", "instance without a valid model label")
            elif inst.model in chosen:
                self._stop(inst, "remove_duplicate",
                           f"{inst.model} already has {chosen[inst.model].id[:12]}")
            else:
                chosen[inst.model] = inst
        return [i for i in live if chosen.get(i.model) is i]

    def _observe_health(self, live: list[Instance], placements: dict[str, Any],
                        policy: Policy, now: float) -> dict[str, bool]:
        """Probe every instance; route the ready ones hot, take the dead ones out of routing."""
        alive: dict[str, bool] = {}
        gone: set[str] = set()
        for inst in live:
            first = self.book.first_seen.setdefault(inst.id, now)
            placement = placements.get(inst.model)
            routed_here = (placement is not None and placement.pool == "hot"
                           and placement.endpoint == inst.endpoint)
            if inst.running and self._probe_fn(inst):
                self.book.probe_failures.pop(inst.id, None)
                alive[inst.id] = True
                if inst.id not in self.book.ready:
                    self.book.ready.add(inst.id)
                    self.book.backoff.pop(inst.model, None)
                    self.book.deferred.discard(inst.model)
                if not routed_here or not placement.healthy:
                    queries.set_placement(self.engine, inst.model, "hot", inst.endpoint)
                    self._event(inst.model, "route_hot", f"{inst.endpoint} reports AVAILABLE "
                                f"after {now - first:.1f}s", "ok")
                continue
            if not inst.running:
                alive[inst.id] = False
            elif inst.id in self.book.ready:
                fails = self.book.probe_failures.get(inst.id, 0) + 1
                self.book.probe_failures[inst.id] = fails
                alive[inst.id] = fails < PROBE_FAILURES_DEAD
            elif now - first > policy.hot.start_timeout:
                self._schedule_retry(inst.model, policy, now)
                self._stop(inst, "start_timeout", f"not AVAILABLE after "
                           f"{policy.hot.start_timeout:g}s; stopped, retry after backoff")
                alive[inst.id] = False
                gone.add(inst.id)
            else:
                alive[inst.id] = True  # still starting
            if not alive[inst.id] and routed_here:
                queries.remove_placement(self.engine, inst.model)
                self._event(inst.model, "route_cold", f"instance {inst.detail}, probe failed",
                            "ok")
        for inst_id in gone:
            alive.pop(inst_id)
        return alive

    def _clear_stale_placements(self, live: list[Instance]) -> None:
        """Hot rows pointing at no instance of ours (a crash, a removed container). Re-read:
        this pass may have just routed a new instance."""
        endpoints = {i.endpoint for i in live}
        for placement in queries.list_placements(self.engine):
            if placement.pool == "hot" and placement.endpoint not in endpoints:
                queries.remove_placement(self.engine, placement.model)
                self._event(placement.model, "route_cold",
                            f"no instance at {placement.endpoint}", "ok")

    # -- acting --------------------------------------------------------------------------

    def _act(self, action: Action, inst: Instance | None, policy: Policy, now: float) -> None:
        if action.kind == "demote" and inst is not None:
            queries.remove_placement(self.engine, action.model)
            if inst.running and policy.hot.drain > 0:
                self.book.draining[inst.id] = now + policy.hot.drain
                self._event(action.model, "demote", action.reason,
                            f"routed cold; stopping after {policy.hot.drain:g}s drain")
            else:
                self._event(action.model, "demote", action.reason, "routed cold")
                self._stop(inst, "demote", "stopped")
            self.book.backoff.pop(action.model, None)
            return
        if not self._due(action.model, now):
            return
        since = now
        if action.kind == "restart" and inst is not None:
            since = inst.hot_since
            queries.remove_placement(self.engine, action.model)
            self._stop(inst, "restart", f"removed old {inst.id[:12]} ({inst.detail})")
        spec = InstanceSpec(action.model, policy.store, policy.hot.container,
                            policy.container_hash(), since)
        try:
            started = self.runtime.start(spec)
        except TierserveError as exc:
            self._event(action.model, action.kind, action.reason, f"failed: {exc.message}")
            self._schedule_retry(action.model, policy, now)
            return
        self.book.first_seen[started.id] = now
        if action.kind == "restart":
            self._schedule_retry(action.model, policy, now)  # cleared once AVAILABLE
        self._event(action.model, action.kind, action.reason,
                    f"started {started.id[:12]}; routed hot once AVAILABLE")

    def _due(self, model: str, now: float) -> bool:
        backoff = self.book.backoff.get(model)
        if backoff is None or backoff.next_at <= now:
            self.book.deferred.discard(model)
            return True
        if model not in self.book.deferred:
            self.book.deferred.add(model)
            log.info("%s: retry deferred %.1fs (backoff)", model, backoff.next_at - now)
        return False

    def _schedule_retry(self, model: str, policy: Policy, now: float) -> None:
        backoff = self.book.backoff.setdefault(model, _Backoff())
        rule = policy.hot.restart_backoff
        backoff.next_at = now + min(rule.max, rule.initial * 2 ** backoff.failures)
        backoff.failures += 1

    def _stop(self, inst: Instance, action: str, outcome: str) -> None:
        try:
            self.runtime.stop(inst)
        except TierserveError as exc:
            self._event(inst.model, action, f"stop {inst.id[:12]}", f"failed: {exc.message}")
            return
        self._event(inst.model, action, f"stop {inst.id[:12]}", outcome)

    def _forget_gone(self, present: set[str]) -> None:
        for table in (self.book.first_seen, self.book.probe_failures, self.book.draining):
            for key in [k for k in table if k not in present]:
                table.pop(key, None)
        self.book.ready &= present

    # -- running -------------------------------------------------------------------------

    def busy(self) -> bool:
        """Something is starting or draining: the next pass should come soon."""
        return bool(self.book.draining) or bool(set(self.book.first_seen) - self.book.ready)

    def run_forever(self, stop: threading.Event, fast_interval: float = 0.5) -> None:
        while not stop.is_set():
            self.reconcile_once()
            policy = self.watcher.current.policy if self.watcher.current else None
            interval = policy.interval if policy else 1.0
            stop.wait(min(interval, fast_interval) if self.busy() else interval)

    def status(self) -> dict[str, Any]:
        # Served from another thread while a pass runs: work on copies (atomic under the GIL).
        draining, ready = dict(self.book.draining), set(self.book.ready)
        backoff = dict(self.book.backoff)
        instances = []
        try:
            for inst in self.runtime.list_instances():
                state = ("draining" if inst.id in draining else
                         "serving" if inst.id in ready else
                         "starting" if inst.running else "dead")
                instances.append({**vars(inst), "state": state})
        except TierserveError as exc:
            instances.append({"error": exc.message})
        return {"runtime": self.runtime.name, "policy": self.watcher.status(),
                "instances": instances, "last_pass": self.last_pass,
                "backoff": {m: {"failures": b.failures, "next_at": b.next_at}
                            for m, b in backoff.items()}}

    def close(self) -> None:
        self.http.close()
        self.runtime.close()
