"""The reconcile loop with an in-memory runtime, a fake clock and a real SQLite db."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from db import engine as db_engine
from db import queries
from db.queries import Engine, make_engine
from orchestrator.loop import Orchestrator
from policies.decide import Rates
from policies.schema import Policy
from policies.watch import PolicyWatcher

from .fakes import Clock, FakeRuntime, RollingRuntime, policy_text, write_policy


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.policy_path = tmp_path / "policy.yaml"
        write_policy(self.policy_path, policy_text())
        self.engine: Engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        self.clock = Clock()
        self.runtime = FakeRuntime()
        self.rates: dict[str, float] = {}
        self.orch = self.make_orchestrator()

    def make_orchestrator(self) -> Orchestrator:
        return Orchestrator(self.engine, PolicyWatcher(self.policy_path), self.runtime,
                            clock=self.clock, probe=self.runtime.probe,
                            rates=lambda _p, _n: Rates(dict(self.rates), dict(self.rates)))

    def step(self, seconds: float = 1.0) -> dict:
        self.clock.advance(seconds)
        return self.orch.reconcile_once()

    def hot_routes(self) -> dict[str, str | None]:
        return {p.model: p.endpoint for p in queries.list_placements(self.engine)
                if p.pool == "hot"}

    def events(self, model: str | None = None) -> list[tuple[str, str]]:
        return [(e.action, e.outcome) for e in
                reversed(queries.list_events(self.engine, 1000, model))]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.orch.close()


def promote(h: Harness, model: str, rate: float = 10.0) -> None:
    h.rates[model] = rate
    h.step()
    h.runtime.make_ready()
    h.step()


def test_idle_pass_does_nothing(h: Harness) -> None:
    h.step()
    h.step()
    assert h.runtime.started == [] and h.runtime.stopped == []
    assert [a for a, _ in h.events()] == ["policy_reload"]


def test_promotion_routes_hot_only_once_available(h: Harness) -> None:
    h.rates["a"] = 10.0
    report = h.step()
    assert [x["kind"] for x in report["actions"]] == ["promote"]
    assert h.runtime.started == ["a"]
    assert h.hot_routes() == {}  # not AVAILABLE yet: the cold pool keeps serving
    h.step()
    assert h.runtime.started == ["a"]  # no duplicate while it starts
    h.runtime.make_ready()
    h.step()
    assert h.hot_routes() == {"a": h.runtime.of("a").endpoint}
    actions = [a for a, _ in h.events("a")]
    assert actions == ["promote", "route_hot"]
    h.step()
    assert len(h.events("a")) == 2  # steady state: nothing more


def test_demotion_routes_cold_first_then_stops_after_drain(h: Harness) -> None:
    promote(h, "a")
    h.rates["a"] = 0.0
    h.step(30)  # inside the 60 s cooldown
    assert "a" in h.hot_routes()
    h.step(40)
    assert h.hot_routes() == {}  # routed cold at once
    assert h.runtime.stopped == []  # but still draining
    h.step(1)
    assert h.runtime.stopped == []
    h.step(1.5)
    assert h.runtime.stopped == ["a"]
    assert [a for a, _ in h.events("a")][-2:] == ["demote", "demote"]
    assert h.events("a")[-1][1] == "drained"


def test_dead_instance_goes_cold_and_restarts_with_backoff(h: Harness) -> None:
    promote(h, "a")
    first = h.runtime.of("a")
    h.runtime.crash("a")
    h.step()
    assert h.hot_routes() == {}
    new = h.runtime.of("a")
    assert new.id != first.id and new.hot_since == first.hot_since  # cooldown is kept
    h.runtime.crash("a")  # crashes again at once
    h.step()
    assert h.runtime.of("a").id == new.id  # backoff: no restart yet
    h.step(4)
    third = h.runtime.of("a")
    assert third.id != new.id
    h.runtime.make_ready()
    h.step()
    assert h.hot_routes() == {"a": third.endpoint}
    assert h.orch.book.backoff == {}  # AVAILABLE again resets the backoff


def test_unanswering_instance_counts_as_dead_after_three_probes(h: Harness) -> None:
    promote(h, "a")
    inst = h.runtime.of("a")
    h.runtime.ready.discard(inst.id)  # still "running", no longer answers
    h.step()
    h.step()
    assert h.runtime.of("a").id == inst.id
    h.step()
    assert h.hot_routes() == {}
    assert h.runtime.of("a").id != inst.id


def test_start_timeout_stops_and_retries_later(h: Harness) -> None:
    h.rates["a"] = 10.0
    h.step()
    h.step(21)
    assert h.runtime.instances == {}
    assert ("start_timeout", "not AVAILABLE after 20s; stopped, retry after backoff") in \
        h.events("a")
    h.step()
    assert h.runtime.started == ["a"]  # backing off
    h.step(5)
    assert h.runtime.started == ["a", "a"]


def test_start_failure_is_an_event_and_retried(h: Harness) -> None:
    h.runtime.fail_start = True
    h.rates["a"] = 10.0
    h.step()
    assert h.events("a")[-1] == ("promote", "failed: image not found")
    h.runtime.fail_start = False
    h.step()
    assert h.runtime.started == []
    h.step(5)
    assert h.runtime.started == ["a"]


def test_restarted_orchestrator_adopts_without_duplicates(h: Harness) -> None:
    promote(h, "a")
    promote(h, "b")
    routes = h.hot_routes()
    h.orch.close()
    h.orch = h.make_orchestrator()
    h.step()
    h.step()
    assert h.runtime.started == ["a", "b"]
    assert h.hot_routes() == routes


def test_duplicates_and_stale_routes_are_cleaned(h: Harness) -> None:
    promote(h, "a")
    a = h.runtime.of("a")
    # A second instance of the same model (e.g. left by a crashed orchestrator).
    from dataclasses import replace

    dup = replace(a, id="zz", endpoint="http://127.0.0.1:1", hot_since=a.hot_since + 5)
    h.runtime.instances[dup.id] = dup
    queries.set_placement(h.engine, "ghost", "hot", "http://127.0.0.1:2")
    h.runtime.instances["nolabel"] = replace(a, id="nolabel", model="", endpoint=None)
    h.step()
    assert [i.id for i in h.runtime.list_instances()] == [a.id]
    assert h.hot_routes() == {"a": a.endpoint}


def test_pinned_model_is_hot_and_pinned_in_the_db(h: Harness) -> None:
    write_policy(h.policy_path, policy_text(pinned="[p]"))
    h.step()
    h.runtime.make_ready()
    h.step()
    assert "p" in h.hot_routes()
    assert [p.model for p in queries.list_placements(h.engine) if p.pinned] == ["p"]
    h.step(3600)  # no traffic at all, long after the cooldown
    assert "p" in h.hot_routes()


def test_bad_policy_edit_keeps_the_old_one_and_is_visible(h: Harness) -> None:
    promote(h, "a")
    write_policy(h.policy_path, policy_text().replace("max_models: 2", "max_models: many"))
    h.step()
    assert h.orch.watcher.policy.hot.max_models == 2
    status = h.orch.status()
    assert status["policy"]["valid"] is False
    assert status["policy"]["errors"][0]["path"] == "hot.max_models"
    action, outcome = h.events("")[-1]
    assert action == "policy_reload" and outcome.startswith("rejected: hot.max_models")
    metrics = generate_latest(h.orch.metrics.registry).decode()
    assert "tierserve_policy_valid 0.0" in metrics
    assert "tierserve_policy_reload_errors_total 1.0" in metrics
    # The loop runs on under the old policy.
    h.rates["b"] = 10.0
    h.step()
    assert h.runtime.started == ["a", "b"]
    write_policy(h.policy_path, policy_text(max_models=3))
    h.step()
    assert h.orch.watcher.policy.hot.max_models == 3
    assert "tierserve_policy_valid 1.0" in generate_latest(h.orch.metrics.registry).decode()


def test_changed_container_settings_replace_the_instance(h: Harness) -> None:
    promote(h, "a")
    old = h.runtime.of("a")
    write_policy(h.policy_path, policy_text(image="img:2"))
    h.step()
    new = h.runtime.of("a")
    assert new.id != old.id and new.policy_hash != old.policy_hash
    h.runtime.make_ready()
    h.step()
    assert h.hot_routes() == {"a": new.endpoint}


def test_swarm_roll_replaces_settings_in_place_without_stopping(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.runtime = RollingRuntime()
    h.orch = h.make_orchestrator()
    promote(h, "a")
    old = h.runtime.of("a")
    write_policy(h.policy_path, policy_text(image="img:2"))
    h.step()
    new = h.runtime.of("a")
    assert h.runtime.rolled == ["a"] and h.runtime.stopped == [] and h.runtime.started == ["a"]
    assert new.policy_hash != old.policy_hash and new.hot_since == old.hot_since
    action, outcome = h.events("a")[-1]
    assert action == "restart" and outcome.startswith("rolling ")
    h.runtime.make_ready()
    h.step()
    assert h.hot_routes() == {"a": new.endpoint}
    h.step()
    assert h.runtime.rolled == ["a"]  # rolled once: the new settings are in force
    h.orch.close()


def test_swarm_refused_roll_keeps_the_old_instance_serving(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.runtime = RollingRuntime(refuse_roll=True)
    h.orch = h.make_orchestrator()
    promote(h, "a")
    old = h.runtime.of("a")
    write_policy(h.policy_path, policy_text(image="img:2"))
    h.step()
    assert h.runtime.of("a") == old and h.hot_routes() == {"a": old.endpoint}
    action, outcome = h.events("a")[-1]
    assert action == "restart" and "failed: Swarm refused the service" in outcome
    h.orch.close()


def test_swarm_runtime_named_by_a_reload_is_reported_not_applied(h: Harness) -> None:
    h.step()
    write_policy(h.policy_path, "runtime: swarm\n" + policy_text())
    h.step()
    assert h.orch.runtime is h.runtime
    action, outcome = h.events("")[-1]
    assert action == "policy_reload" and outcome == (
        "not applied: the runtime is chosen at start (running fake); restart the orchestrator")


def test_experiments_in_the_policy_reach_the_db(h: Harness) -> None:
    write_policy(h.policy_path, policy_text() + "experiments:\n  - name: rec\n    variants:\n"
                 "      - {model: a, weight: 50}\n      - {model: b, weight: 50}\n")
    h.step()
    (spec,) = queries.list_experiments(h.engine)
    assert spec["name"] == "rec" and [v["model"] for v in spec["variants"]] == ["a", "b"]


def test_max_models_bound_holds_in_the_loop(h: Harness) -> None:
    h.rates.update({"a": 9.0, "b": 8.0, "c": 7.0})
    h.step()
    assert sorted(h.runtime.started) == ["a", "b"]


def test_policy_type_is_the_schema() -> None:
    assert Policy.model_fields["hot"].is_required()


def test_stale_route_replaced_by_a_new_instance_in_the_same_pass(h: Harness) -> None:
    h.rates["a"] = 10.0
    h.step()
    queries.set_placement(h.engine, "a", "hot", "http://127.0.0.1:9")  # left by a crash
    h.runtime.make_ready()
    h.step()
    assert h.hot_routes() == {"a": h.runtime.of("a").endpoint}


def test_a_locked_db_fails_the_pass_not_the_loop(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 100)  # wait less than 10 s
    h = Harness(tmp_path)
    try:
        h.rates["a"] = 10.0
        h.step()
        h.runtime.make_ready()
        other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            report = h.step()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert "db unavailable" in report["error"] and h.hot_routes() == {}
        h.step()  # the db is back: the same pass succeeds
        assert h.hot_routes() == {"a": h.runtime.of("a").endpoint}
        assert h.runtime.started == ["a"]
    finally:
        h.orch.close()


def test_slow_preparation_never_holds_up_a_pass(h: Harness) -> None:
    promote(h, "a")
    h.runtime.preparing["b"] = 2  # e.g. a large model being synced for the official image
    h.rates["b"] = 10.0
    h.step()
    assert h.orch.status()["preparing"] == ["b"] and h.orch.busy()
    assert h.runtime.started == ["a"]
    # Meanwhile the other instances are still watched: a crash is seen and handled.
    h.runtime.crash("a")
    h.step()
    assert h.hot_routes() == {} and h.runtime.started == ["a", "a"]
    h.step()
    assert h.runtime.started == ["a", "a", "b"]
    assert h.orch.status()["preparing"] == []


def test_failed_preparation_is_an_event_and_retried_after_backoff(h: Harness) -> None:
    h.runtime.fail_prepare = True
    h.rates["a"] = 10.0
    h.step()
    assert h.events("a")[-1] == ("promote", "failed: a is not in the store")
    h.runtime.fail_prepare = False
    h.step()
    assert h.runtime.started == []  # backing off
    h.step(5)
    assert h.runtime.started == ["a"]


def test_admin_pin_makes_a_model_hot_and_survives_policy_reloads(h: Harness) -> None:
    queries.set_pinned(h.engine, "x", True, "admin")  # POST /admin/models/x/pin
    h.step()
    h.runtime.make_ready()
    h.step()
    assert "x" in h.hot_routes() and ("promote", "started c1; routed hot once AVAILABLE") in \
        h.events("x")
    # A policy edit (pinning another model) keeps the admin pin: both count.
    write_policy(h.policy_path, policy_text(pinned="[p]"))
    h.step()
    h.runtime.make_ready()
    h.step(3600)  # long past the cooldown, no traffic at all
    assert set(h.hot_routes()) == {"x", "p"}
    assert {p.model: p.pinned_by for p in queries.list_placements(h.engine)} == {
        "p": ("policy",), "x": ("admin",)}
    write_policy(h.policy_path, policy_text())  # the policy drops its pin
    h.step()
    assert [(p.model, p.source) for p in queries.list_pins(h.engine)] == [("x", "admin")]
    h.step()
    assert set(h.hot_routes()) == {"x"}  # p demoted (idle, past its cooldown), x stays
    queries.set_pinned(h.engine, "x", False, "admin")  # DELETE /admin/models/x/pin
    h.step()
    assert h.hot_routes() == {}


def test_admin_unpin_leaves_a_policy_pin_in_force(h: Harness) -> None:
    write_policy(h.policy_path, policy_text(pinned="[p]"))
    queries.set_pinned(h.engine, "p", True, "admin")
    h.step()
    h.runtime.make_ready()
    h.step()
    queries.set_pinned(h.engine, "p", False, "admin")
    h.step(3600)
    assert "p" in h.hot_routes() and h.runtime.started == ["p"]


def test_admin_pins_beyond_max_models_wait_their_turn(h: Harness) -> None:
    write_policy(h.policy_path, policy_text(pinned="[p]"))  # max_models: 2
    queries.set_pinned(h.engine, "a", True)
    h.clock.advance(1)
    queries.set_pinned(h.engine, "b", True)  # pinned later: no slot left
    h.step()
    h.step()
    assert sorted(h.runtime.started) == ["a", "p"]
    assert h.events("b") == [("pin", "not honoured: 2 pins fill max_models=2")]  # once
    assert h.orch.status()["pins"] == {"in_force": ["p", "a"], "left_out": ["b"]}
    h.runtime.make_ready()
    h.step()
    queries.set_pinned(h.engine, "a", False)
    h.step(3600)  # a: idle, past its cooldown, no longer pinned; b takes its slot
    h.runtime.make_ready()
    h.step()
    assert set(h.hot_routes()) == {"b", "p"}


def _router_flush(engine: Engine, model: str, now: float, per_s: int) -> None:
    """What a router's count flush at `now` writes: `per_s` requests over the last second."""
    deltas: dict[int, queries.CountDelta] = {}
    for j in range(per_s):
        ts = now - 1 + (j + 0.5) / per_s
        deltas.setdefault(queries.bucket_of(ts), queries.CountDelta.at(model, ts)).record(
            0.001, 200)
    queries.add_counts(engine, deltas.values())


@pytest.mark.parametrize("phase", [0.0, 12.5, 31.0, 50.0, 58.5])  # where in a minute it starts
def test_promotion_follows_a_short_window_not_a_minute(h: Harness, phase: float) -> None:
    """Real request rates from the db: the policy's 10 s window at 5 req/s. A model at 6 req/s
    is promoted within window + one bucket + one interval of its first request; one at
    4 req/s never is."""
    orch = Orchestrator(h.engine, PolicyWatcher(h.policy_path), h.runtime, clock=h.clock,
                        probe=h.runtime.probe)  # the db's rates, not the harness's
    h.clock.now = 20_000 * 60 + phase
    start = h.clock.now
    promoted_at = None
    try:
        while h.clock.now - start < 60:
            h.clock.advance(1.0)
            _router_flush(h.engine, "busy", h.clock.now, 6)
            _router_flush(h.engine, "quiet", h.clock.now, 4)
            orch.reconcile_once()  # one pass per interval
            h.runtime.make_ready()
            if promoted_at is None and h.runtime.started:
                promoted_at = h.clock.now - start
        hot = orch.watcher.policy.hot
        assert (hot.promote.window, hot.promote.min_rate, orch.watcher.policy.interval) == (
            10.0, 5.0, 1.0)
    finally:
        orch.close()
    assert h.runtime.started == ["busy"]
    assert promoted_at is not None and promoted_at <= 10.0 + queries.BUCKET_S + 1.0
