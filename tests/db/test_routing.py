"""Placements, pins, experiments and the routing version: what routers see and when."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import InvalidArgument, Unavailable
from db import queries
from db.queries import Engine


def test_cold_placement_drops_the_endpoint_and_health_comes_back(engine: Engine) -> None:
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")
    assert queries.mark_unhealthy(engine, "m", "http://127.0.0.1:1")
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")  # the orchestrator's
    [p] = queries.list_placements(engine)
    assert (p.pool, p.healthy) == ("hot", True)
    queries.set_placement(engine, "m", "cold", "http://ignored")
    [p] = queries.list_placements(engine)
    assert (p.pool, p.endpoint) == ("cold", None)
    with pytest.raises(InvalidArgument, match="pool"):
        queries.set_placement(engine, "m", "warm", None)  # type: ignore[arg-type]
    assert queries.routing_version(engine) == 4  # a refused write bumps nothing


def test_pins_keep_the_placement_and_no_ops_do_not_bump(engine: Engine) -> None:
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")
    queries.set_pinned(engine, "m", True)
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:2")  # a restart elsewhere
    [p] = queries.list_placements(engine)
    assert (p.endpoint, p.pinned) == ("http://127.0.0.1:2", True)
    queries.set_pinned(engine, "m", False)  # unpinned while hot: still routed hot
    [p] = queries.list_placements(engine)
    assert (p.pool, p.pinned) == ("hot", False)
    version = queries.routing_version(engine)
    queries.set_pinned(engine, "absent", False)
    assert not queries.set_policy_pins(engine, [])
    queries.remove_placement(engine, "absent")
    assert not queries.mark_unhealthy(engine, "absent", "http://127.0.0.1:1")
    assert queries.routing_version(engine) == version


def test_pins_per_source_union_and_stay_apart(engine: Engine) -> None:
    assert queries.set_policy_pins(engine, ["p", "both"])
    assert queries.set_pinned(engine, "both", True)  # source "admin" by default
    assert queries.set_pinned(engine, "a", True, "admin")
    version = queries.routing_version(engine)
    assert not queries.set_pinned(engine, "a", True)  # already pinned: nothing written
    assert not queries.set_policy_pins(engine, ["both", "p"])
    assert queries.routing_version(engine) == version
    by = {p.model: (p.pool, p.pinned, p.pinned_by) for p in queries.list_placements(engine)}
    assert by == {"a": ("cold", True, ("admin",)), "both": ("cold", True, ("policy", "admin")),
                  "p": ("cold", True, ("policy",))}
    # A new policy replaces only the policy's pins; an admin unpin only the admin's.
    assert queries.set_policy_pins(engine, ["q"])
    assert queries.set_pinned(engine, "a", False)
    assert sorted((p.model, p.source) for p in queries.list_pins(engine)) == [
        ("both", "admin"), ("q", "policy")]
    assert queries.load_routing(engine).placements["both"].pinned_by == ("admin",)
    assert queries.routing_version(engine) == version + 2
    with pytest.raises(InvalidArgument, match="pin source"):
        queries.set_pinned(engine, "x", True, "yaml")  # type: ignore[arg-type]


def test_experiment_needs_a_name_and_reads_back_as_stored(engine: Engine) -> None:
    with pytest.raises(InvalidArgument):
        queries.upsert_experiment(engine, {"variants": []})
    spec = {"name": "e", "variants": [{"model": "a", "weight": 60, "version": 2},
                                      {"model": "b", "weight": 40, "name": "cand"}],
            "shadow": {"model": "c", "percent": 2.5}}
    queries.upsert_experiment(engine, spec)
    assert queries.get_experiment(engine, "e") == spec


def test_snapshot_holds_one_moment(engine: Engine) -> None:
    queries.set_placement(engine, "h", "hot", "http://127.0.0.1:1")
    queries.set_pinned(engine, "p", True)
    queries.upsert_experiment(engine, {"name": "e", "variants": [{"model": "h", "weight": 100}]})
    snap = queries.load_routing(engine)
    assert snap.version == queries.routing_version(engine) == 3
    assert {m: (p.pool, p.pinned) for m, p in snap.placements.items()} == {
        "h": ("hot", False), "p": ("cold", True)}
    assert list(snap.experiments) == ["e"]


def test_a_db_without_tables_is_unavailable(tmp_path: Path) -> None:
    engine = queries.make_engine(f"sqlite:///{tmp_path / 'empty.db'}", create=False)
    with pytest.raises(Unavailable, match="no such table"):
        queries.load_routing(engine)


def test_a_hot_placement_keeps_its_grpc_address_for_its_own_endpoint(engine: Engine) -> None:
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1", grpc="127.0.0.1:2")
    [p] = queries.list_placements(engine)
    assert (p.endpoint, p.grpc_endpoint) == ("http://127.0.0.1:1", "127.0.0.1:2")
    assert queries.load_routing(engine).placements["m"].grpc_endpoint == "127.0.0.1:2"
    assert queries.mark_unhealthy(engine, "m", "http://127.0.0.1:1")
    [p] = queries.list_placements(engine)
    assert (p.healthy, p.grpc_endpoint) == (False, "127.0.0.1:2")
    # A writer that knows no gRPC address (REST only) clears it: never a stale one.
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:3")
    [p] = queries.list_placements(engine)
    assert p.grpc_endpoint is None
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:3", grpc="127.0.0.1:4")
    queries.remove_placement(engine, "m")
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:3")
    [p] = queries.list_placements(engine)
    assert p.grpc_endpoint is None
    queries.set_placement(engine, "m", "cold", None, grpc="127.0.0.1:4")
    [p] = queries.list_placements(engine)
    assert (p.pool, p.grpc_endpoint) == ("cold", None)
