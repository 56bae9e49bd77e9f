"""The pure liveness rules alone: rules one by one, then properties over random histories."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.liveness import (
    Book,
    Route,
    RouteCold,
    RouteHot,
    Rules,
    Stop,
    assess,
    drains_due,
    one_per_model,
    stale_routes,
)
from orchestrator.runtime import Instance

NOW = 50_000.0
RULES = Rules(start_timeout=20.0, backoff_initial=4.0, backoff_max=30.0)


def inst(model: str, n: int = 1, running: bool = True, since: float = 0.0,
         spec: str = "h") -> Instance:
    return Instance(model, f"{model}{n}", f"http://127.0.0.1:{10_000 + n}/{model}", running,
                    since, spec, "running" if running else "exited (137)")


def test_a_new_instance_is_starting_then_routed_hot_once_it_answers() -> None:
    a = inst("a")
    health = assess([a], {}, {}, Book(), RULES, NOW)
    assert health.alive == {a.id: True} and health.effects == []
    assert health.book.first_seen == {a.id: NOW} and health.book.starting() == {a.id}
    later = assess([a], {a.id: True}, {}, health.book, RULES, NOW + 3)
    assert later.effects == [RouteHot("a", a.endpoint, f"{a.endpoint} reports AVAILABLE "
                                      "after 3.0s")]
    assert a.id in later.book.ready and later.book.starting() == set()
    # Routed and healthy: nothing more to do.
    steady = assess([a], {a.id: True}, {"a": Route(a.endpoint)}, later.book, RULES, NOW + 4)
    assert steady.effects == [] and steady.book == later.book
    # Marked unhealthy by the router but answering again: routed hot again.
    unhealthy = {"a": Route(a.endpoint, healthy=False)}
    assert [type(e) for e in assess([a], {a.id: True}, unhealthy, later.book, RULES,
                                    NOW + 5).effects] == [RouteHot]


def test_a_ready_instance_dies_after_three_failed_probes_in_a_row() -> None:
    a = inst("a")
    book = assess([a], {a.id: True}, {}, Book(), RULES, NOW).book
    routes = {"a": Route(a.endpoint)}
    for n in (1, 2):
        health = assess([a], {}, routes, book, RULES, NOW + n)
        assert health.alive == {a.id: True} and health.effects == []
        book = health.book
    # One success resets the count.
    book = assess([a], {a.id: True}, routes, book, RULES, NOW + 3).book
    assert book.probe_failures == {}
    for n in (4, 5):
        book = assess([a], {}, routes, book, RULES, NOW + n).book
    dead = assess([a], {}, routes, book, RULES, NOW + 6)
    assert dead.alive == {a.id: False}
    assert dead.effects == [RouteCold("a", "instance running, probe failed")]


def test_an_exited_instance_is_dead_at_once_and_leaves_routing() -> None:
    a = inst("a", running=False)
    health = assess([a], {a.id: True}, {"a": Route(a.endpoint)}, Book(), RULES, NOW)
    assert health.alive == {a.id: False}
    assert health.effects == [RouteCold("a", "instance exited (137), probe failed")]


def test_start_timeout_stops_and_backs_off() -> None:
    a = inst("a")
    book = assess([a], {}, {}, Book(), RULES, NOW).book
    assert assess([a], {}, {}, book, RULES, NOW + 20).effects == []  # at the limit: waits
    health = assess([a], {}, {}, book, RULES, NOW + 20.5)
    assert health.alive == {}
    assert health.effects == [Stop(a, "start_timeout",
                                   "not AVAILABLE after 20s; stopped, retry after backoff")]
    assert not health.book.due("a", NOW + 24) and health.book.due("a", NOW + 24.5)


def test_backoff_doubles_and_is_capped_and_forgiven() -> None:
    book = Book()
    delays = []
    for _ in range(6):
        book = book.retry_later("a", RULES, NOW)
        delays.append(book.backoff["a"].next_at - NOW)
    assert delays == [4, 8, 16, 30, 30, 30]
    assert book.forgive("a").due("a", NOW)


def test_one_per_model_prefers_running_current_and_oldest() -> None:
    old_spec = inst("a", 1, since=1.0, spec="old")
    current = inst("a", 2, since=5.0)
    older = inst("a", 3, since=2.0)
    dead = inst("a", 4, running=False, since=0.0)
    label_less = replace(inst("x", 5), model="")
    kept, stops = one_per_model([old_spec, current, older, dead, label_less], "h")
    assert kept == [older]
    assert {(s.instance.id, s.action) for s in stops} == {
        ("a1", "remove_duplicate"), ("a2", "remove_duplicate"), ("a4", "remove_duplicate"),
        ("x5", "remove_unknown")}


def test_drains_and_stale_routes() -> None:
    a, b = inst("a", 1), inst("b", 2)
    book = Book().drain(a.id, NOW + 2).drain(b.id, NOW + 5)
    assert drains_due(book, [a, b], NOW + 2) == [a]
    assert book.drained(a.id).draining == {b.id: NOW + 5}
    routes = {"a": Route(a.endpoint), "ghost": Route("http://127.0.0.1:1")}
    assert stale_routes(routes, [a, b]) == ["ghost"]
    assert Book().seen(a.id, NOW).drain(b.id, NOW).forget_gone([b.id]) == \
        Book(draining={b.id: NOW})


# -- properties -----------------------------------------------------------------------------

MODELS = ["a", "b", "c"]
IDS = [f"{m}{n}" for m in MODELS for n in range(1, 5)]
INSTANCE = st.builds(inst, st.sampled_from(MODELS), st.integers(1, 4), st.booleans())
SOME = st.one_of(st.just(set()), st.sets(st.sampled_from(IDS)))
STEP = st.tuples(
    SOME,  # instances gone (stopped, removed) from this pass on
    SOME,  # instances that exit before this pass
    st.one_of(st.just(set(IDS)), st.just(set()), st.sets(st.sampled_from(IDS))),  # answering
    st.sampled_from([0.5, 1.0, 5.0, 30.0]),  # time since the last pass
)


@settings(max_examples=300, deadline=None)
@given(st.lists(INSTANCE, max_size=6, unique_by=lambda i: i.id),
       st.lists(STEP, min_size=1, max_size=12))
def test_rules_hold_over_random_histories(fleet: list[Instance], steps: list[tuple]) -> None:
    book, routes, now = Book(), {}, NOW
    for gone, exiting, answering, dt in steps:
        fleet = [replace(i, running=False) if i.id in exiting else i
                 for i in fleet if i.id not in gone]
        now += dt
        observed, _ = one_per_model(fleet, "h")  # as the loop does before probing
        answers = {i.id: i.id in answering for i in observed if i.running}
        before = book
        health = assess(observed, answers, routes, book, RULES, now)
        book = health.book
        by_id = {i.id: i for i in observed}
        stopped = {e.instance.id for e in health.effects if isinstance(e, Stop)}
        # Every observed instance is judged exactly once: alive, dead or stopped.
        assert set(health.alive) | stopped == set(by_id) and not set(health.alive) & stopped
        for e in health.effects:
            if isinstance(e, RouteHot):
                (i,) = [i for i in observed if i.endpoint == e.endpoint]
                assert i.running and answers[i.id] and health.alive[i.id]
            elif isinstance(e, RouteCold):
                (i,) = [i for i in observed if i.endpoint == routes[e.model].endpoint]
                assert i.id in stopped or not health.alive[i.id]
            else:
                i = e.instance
                # Only an instance that never answered, past its start timeout, is stopped.
                assert i.running and not answers[i.id] and i.id not in before.ready
                assert now - before.first_seen[i.id] > RULES.start_timeout
                assert not book.due(i.model, now)
                assert book.backoff[i.model].next_at <= now + RULES.backoff_max
        for i in observed:
            if not i.running:
                assert health.alive[i.id] is False
            elif answers[i.id]:
                assert health.alive[i.id] and i.id in book.ready
                assert i.id not in book.probe_failures and book.due(i.model, now)
            elif i.id in before.ready:
                fails = book.probe_failures[i.id]
                assert fails == before.probe_failures.get(i.id, 0) + 1
                assert health.alive[i.id] == (fails < RULES.probe_failures_dead)
        # Carry out the routes as the loop would, then forget what is gone.
        for e in health.effects:
            if isinstance(e, RouteHot):
                routes[e.model] = Route(e.endpoint)
            elif isinstance(e, RouteCold):
                routes.pop(e.model, None)
        live = [i for i in observed if i.id in health.alive]
        fleet = live  # the loop stopped duplicates and timed-out starts
        for model in stale_routes(routes, live):
            routes.pop(model)
        book = book.forget_gone(i.id for i in live)
        # Every answering instance is routed hot; nothing stays routed to one gone or dead.
        for i in observed:
            if answers.get(i.id):
                assert routes[i.model] == Route(i.endpoint)
        for model, route in routes.items():
            (i,) = [i for i in live if i.endpoint == route.endpoint]
            assert health.alive[i.id] and i.model == model
        # Bookkeeping never outlives the instances.
        assert set(book.first_seen) <= set(by_id) and book.ready <= set(by_id)


@settings(max_examples=200, deadline=None)
@given(st.lists(INSTANCE, max_size=8, unique_by=lambda i: i.id), st.sampled_from(["h", "x"]))
def test_one_per_model_keeps_one_of_each_valid_model_and_stops_the_rest(
        instances: list[Instance], spec_hash: str) -> None:
    kept, stops = one_per_model(instances, spec_hash)
    assert sorted(i.model for i in kept) == sorted({i.model for i in instances})
    assert sorted([*[i.id for i in kept], *[s.instance.id for s in stops]]) == \
        sorted(i.id for i in instances)
    for k in kept:
        rivals = [i for i in instances if i.model == k.model]
        best = min(rivals, key=lambda i: (not i.running, i.policy_hash != spec_hash,
                                          i.hot_since, i.id))
        assert k is best


def test_the_grpc_address_goes_with_the_route_and_an_old_route_gets_it() -> None:
    a = replace(inst("a"), grpc="127.0.0.1:20001")
    ready = assess([a], {a.id: True}, {}, Book(), RULES, NOW)
    [effect] = ready.effects
    assert isinstance(effect, RouteHot) and effect.grpc == "127.0.0.1:20001"
    # Routed here by an orchestrator that stored no gRPC address: routed again, with it.
    again = assess([a], {a.id: True}, {"a": Route(a.endpoint)}, ready.book, RULES, NOW + 1)
    assert [e.grpc for e in again.effects if isinstance(e, RouteHot)] == ["127.0.0.1:20001"]
    steady = assess([a], {a.id: True}, {"a": Route(a.endpoint, True, a.grpc)}, ready.book,
                    RULES, NOW + 2)
    assert steady.effects == []
