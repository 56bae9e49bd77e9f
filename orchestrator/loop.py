"""The reconcile loop: observe, decide, act, record. The decisions are pure: the hot set in
policies.decide, the instances' liveness (probes, start timeouts, duplicates, backoff) in
orchestrator.liveness.

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
from typing import Any

import httpx

from base.errors import TierserveError
from db import queries
from db.queries import Engine
from orchestrator import liveness
from orchestrator.runtime import Instance, InstanceSpec, Runtime
from orchestrator.status import Metrics
from policies.decide import Action, HotModel, Rates, decide, pins_in_force
from policies.schema import Policy
from policies.watch import PolicyWatcher

log = logging.getLogger(__name__)

POLICY_EVENT_MODEL = ""  # events about the policy as a whole


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
        self.book = liveness.Book()
        self._deferred: set[str] = set()  # models whose backoff deferral was logged
        self.preparing: set[str] = set()  # models whose start waits for runtime.prepare
        self._probe_fn = probe or self._http_probe
        self._rates_fn = rates or self._db_rates
        self.last_pass: dict[str, Any] = {}
        self._rows_digest: str | None = None  # policy whose experiments/pins are in the db
        self.pins: list[str] = []  # the pins in force at the last pass
        self._left_out: set[str] = set()  # admin pins over max_models (logged once)
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
            wanted = result.loaded.policy.runtime
            if wanted not in ("auto", self.runtime.name):
                self._event(POLICY_EVENT_MODEL, "policy_reload", f"runtime: {wanted}",
                            f"not applied: the runtime is chosen at start (running "
                            f"{self.runtime.name}); restart the orchestrator")
        elif self.watcher.last_error is None and self.watcher.current is not None:
            self.metrics.policy_valid.set(1)
        current = self.watcher.current
        if current is not None and current.digest != self._rows_digest:
            # Until it succeeds (the db may be briefly unavailable), retried every pass.
            self._apply_policy_rows(current.policy)
            self._rows_digest = current.digest
        return current.policy if current else None

    def _apply_policy_rows(self, policy: Policy) -> None:
        """Experiments and pins from the YAML go to the db, where the router reads them. Only
        the policy's own pins are replaced: pins made through the admin API stay."""
        for spec in policy.experiments:
            try:
                created = queries.upsert_experiment(self.engine, spec.stored())
                self._event(spec.name, "experiment", "from policy",
                            "created" if created else "updated")
            except TierserveError as exc:
                self._event(spec.name, "experiment", "from policy", f"failed: {exc}")
        queries.set_policy_pins(self.engine, policy.hot.pinned)

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

    def _pins(self, policy: Policy) -> list[str]:
        """The policy's pins (from the YAML in force) and the admin API's (from the db)."""
        admin = [p.model for p in queries.list_pins(self.engine) if p.source == "admin"]
        pins, left_out = pins_in_force(policy.hot.pinned, admin, policy.hot.max_models)
        for model in sorted(set(left_out) - self._left_out):
            self._event(model, "pin", "admin API", f"not honoured: {len(pins)} pins fill "
                        f"max_models={policy.hot.max_models}")
        self.pins, self._left_out = pins, set(left_out)
        return pins

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
        rules = liveness.Rules.of(policy.hot)
        instances = self.runtime.list_instances()
        stopped = set()
        for inst in liveness.drains_due(self.book, instances, now):
            self._stop(inst, "demote", "drained")
            self.book = self.book.drained(inst.id)
            stopped.add(inst.id)
        live = [i for i in instances if i.id not in self.book.draining and i.id not in stopped]
        live, duplicates = liveness.one_per_model(live, policy.container_hash)
        self._carry_out(duplicates)
        answers = {i.id: self._probe_fn(i) for i in live if i.running}
        health = liveness.assess(live, answers, self._hot_routes(), self.book, rules, now)
        self.book = health.book
        self._carry_out(health.effects)
        alive = health.alive
        live = [i for i in live if i.id in alive]  # minus those stopped for a start timeout
        # Re-read: this pass may have just routed a new instance.
        routes = self._hot_routes()
        for model in liveness.stale_routes(routes, live):
            queries.remove_placement(self.engine, model)
            self._event(model, "route_cold", f"no instance at {routes[model].endpoint}", "ok")

        hot = {i.model: HotModel(since=i.hot_since, alive=alive[i.id],
                                 current_spec=i.policy_hash == policy.container_hash(i.model))
               for i in live}
        actions = decide(self._rates_fn(policy, now), hot, policy.hot, now, self._pins(policy))
        by_model = {i.model: i for i in live}
        self.preparing = set()
        for action in actions:
            self._act(action, by_model.get(action.model), policy, now)
        self.book = self.book.forget_gone(
            {i.id for i in self.runtime.list_instances()} if actions else
            {i.id for i in instances})
        routed = len(self._hot_routes())
        self.metrics.hot_models.set(routed)
        starting = sum(1 for i in live if i.id not in self.book.ready and alive.get(i.id))
        self.metrics.instances.labels("starting").set(starting)
        self.metrics.instances.labels("draining").set(len(self.book.draining))
        self.metrics.instances.labels("dead").set(sum(1 for v in alive.values() if not v))
        return {"actions": [vars(a) for a in actions], "hot": sorted(hot), "routed_hot": routed}

    def _hot_routes(self) -> dict[str, liveness.Route]:
        return {p.model: liveness.Route(p.endpoint, p.healthy, p.grpc_endpoint)
                for p in queries.list_placements(self.engine) if p.pool == "hot"}

    def _carry_out(self, effects: list[liveness.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, liveness.Stop):
                self._stop(effect.instance, effect.action, effect.outcome)
            elif isinstance(effect, liveness.RouteHot):
                queries.set_placement(self.engine, effect.model, "hot", effect.endpoint,
                                      grpc=effect.grpc)
                self._event(effect.model, "route_hot", effect.reason, "ok")
            else:
                queries.remove_placement(self.engine, effect.model)
                self._event(effect.model, "route_cold", effect.reason, "ok")

    # -- acting --------------------------------------------------------------------------

    def _act(self, action: Action, inst: Instance | None, policy: Policy, now: float) -> None:
        if action.kind == "demote" and inst is not None:
            queries.remove_placement(self.engine, action.model)
            if inst.running and policy.hot.drain > 0:
                self.book = self.book.drain(inst.id, now + policy.hot.drain)
                self._event(action.model, "demote", action.reason,
                            f"routed cold; stopping after {policy.hot.drain:g}s drain")
            else:
                self._event(action.model, "demote", action.reason, "routed cold")
                self._stop(inst, "demote", "stopped")
            self.book = self.book.forgive(action.model)
            return
        if not self._due(action.model, now):
            return
        rules = liveness.Rules.of(policy.hot)
        restart = action.kind == "restart" and inst is not None
        spec = InstanceSpec(action.model, policy.store, policy.hot.container,
                            policy.container_hash(action.model),
                            inst.hot_since if restart and inst else now,
                            labels=dict(policy.labels.get(action.model, {})),
                            swarm=policy.hot.swarm)
        if restart and inst is not None and inst.running and inst.policy_hash != spec.policy_hash:
            if self._rolled(action, inst, spec, rules, now):
                return
        try:
            prepared = self.runtime.prepare(spec)
        except TierserveError as exc:
            self._start_failed(action, exc, rules, now)
            return
        if not prepared:
            self.preparing.add(action.model)  # started by a later pass
            return
        if restart and inst is not None:
            queries.remove_placement(self.engine, action.model)
            self._stop(inst, "restart", f"removed old {inst.id[:12]} ({inst.detail})")
        try:
            started = self.runtime.start(spec)
        except TierserveError as exc:
            self._start_failed(action, exc, rules, now)
            return
        self.book = self.book.seen(started.id, now)
        if action.kind == "restart":
            self.book = self.book.retry_later(action.model, rules, now)  # forgiven once AVAILABLE
        self._event(action.model, action.kind, action.reason,
                    f"started {started.id[:12]}; routed hot once AVAILABLE")

    def _rolled(self, action: Action, inst: Instance, spec: InstanceSpec, rules: liveness.Rules,
                now: float) -> bool:
        """A settings change rolled in place by the runtime (Swarm): the route stays on the
        old server until the new one is probed AVAILABLE. False: the runtime cannot roll."""
        try:
            rolled = self.runtime.roll(inst, spec)
        except TierserveError as exc:  # refused: the old instance runs on as it was
            self._start_failed(action, exc, rules, now)
            return True
        if rolled is None:
            return False
        self._event(action.model, "restart", action.reason,
                    f"rolling {inst.id[:12]} to the new settings; the old task serves until "
                    "the new one runs")
        return True

    def _start_failed(self, action: Action, exc: TierserveError, rules: liveness.Rules,
                      now: float) -> None:
        self._event(action.model, action.kind, action.reason, f"failed: {exc.message}")
        self.book = self.book.retry_later(action.model, rules, now)

    def _due(self, model: str, now: float) -> bool:
        if self.book.due(model, now):
            self._deferred.discard(model)
            return True
        if model not in self._deferred:  # log a deferral once, not every pass
            self._deferred.add(model)
            log.info("%s: retry deferred %.1fs (backoff)", model,
                     self.book.backoff[model].next_at - now)
        return False

    def _stop(self, inst: Instance, action: str, outcome: str) -> None:
        try:
            self.runtime.stop(inst)
        except TierserveError as exc:
            self._event(inst.model, action, f"stop {inst.id[:12]}", f"failed: {exc.message}")
            return
        self._event(inst.model, action, f"stop {inst.id[:12]}", outcome)

    # -- running -------------------------------------------------------------------------

    def busy(self) -> bool:
        """Something is preparing, starting or draining: the next pass should come soon."""
        return bool(self.book.draining or self.book.starting() or self.preparing)

    def run_forever(self, stop: threading.Event, fast_interval: float = 0.5) -> None:
        while not stop.is_set():
            self.reconcile_once()
            policy = self.watcher.current.policy if self.watcher.current else None
            interval = policy.interval if policy else 1.0
            stop.wait(min(interval, fast_interval) if self.busy() else interval)

    def status(self) -> dict[str, Any]:
        # Served from another thread while a pass runs: the Book is never changed in place.
        book = self.book
        draining, ready, backoff = book.draining, book.ready, book.backoff
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
                "instances": instances, "preparing": sorted(self.preparing),
                "pins": {"in_force": list(self.pins), "left_out": sorted(self._left_out)},
                "last_pass": self.last_pass,
                "backoff": {m: {"failures": b.failures, "next_at": b.next_at}
                            for m, b in backoff.items()}}

    def close(self) -> None:
        self.http.close()
        self.runtime.close()
