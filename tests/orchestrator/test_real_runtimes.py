"""Orchestrator scenarios against real runtimes: Docker containers of the local test image, and
local model-server processes. The orchestrator is the real `tierserve orchestrator` process; the
request rates it reads are counts written to the db as the router flushes them.

The scenarios run in order on one world per runtime (promote, kill, restart, bad edit, demote).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tierserve.toy_models import expected

from .conftest import MODELS
from .realworld import World, make_runtime, policy_dict, wait_for

pytestmark = pytest.mark.slow


# The docker world reaches the engine through getfixturevalue: marked so it runs with the
# other Docker tests (tests/conftest.py).
@pytest.fixture(scope="module",
                params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          toy_store: Path, log_dir: Path) -> Iterator[World]:
    kind = request.param
    root = tmp_path_factory.mktemp(f"world-{kind}")
    scope = f"t{os.getpid()}-{kind}"
    if kind == "docker":
        request.getfixturevalue("test_image")
    runtime, container = make_runtime(kind, root, scope, memory="1g", cpus=1.0)
    w = World(root, runtime, kind, scope, policy_dict(toy_store, container), log_dir)
    w.container = container  # type: ignore[attr-defined]
    w.start_orchestrator()
    try:
        yield w
    finally:
        w.close()


def check_serves(w: World, model: str, endpoint: str) -> None:
    xs = [1.0, 2.0, -3.0]
    assert w.predict(endpoint, model, xs) == expected(MODELS[model], 0.0, xs)


def test_promotion_starts_an_instance_and_routes_it_hot(world: World) -> None:
    w = world
    wait_for("a valid policy", lambda: w.status()["policy"]["valid"])
    assert w.instances() == []  # no traffic yet: nothing hot
    w.traffic("alpha")
    endpoint = wait_for("alpha routed hot", lambda: w.hot_endpoint("alpha"), timeout=400)
    (inst,) = w.instances("alpha")
    assert inst.running and inst.endpoint == endpoint
    assert endpoint.startswith("http://127.0.0.1:")
    check_serves(w, "alpha", endpoint)
    actions = [a for a, _ in w.events("alpha")]
    assert actions[:2] == ["promote", "route_hot"]
    assert w.instances("beta") == []


def test_docker_container_is_labelled_limited_and_local(world: World) -> None:
    if world.runtime_flag != "docker":
        pytest.skip("docker only")
    import docker

    client = docker.from_env()
    try:
        (container,) = client.containers.list(filters={"label": f"tierserve.scope={world.scope}"})
        attrs = container.attrs
    finally:
        client.close()
    labels = attrs["Config"]["Labels"]
    assert labels["tierserve.managed-by"] == "tierserve"
    assert labels["tierserve.model"] == "alpha"
    assert len(labels["tierserve.policy-hash"]) == 12
    host = attrs["HostConfig"]
    assert host["Memory"] == 1024**3
    assert host["NanoCpus"] == 10**9
    assert host["CapDrop"] == ["ALL"] and not host["Privileged"]
    assert "no-new-privileges" in host["SecurityOpt"]
    for bindings in host["PortBindings"].values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings)
    assert all(m["RW"] is False for m in attrs["Mounts"])


def test_killed_instance_goes_cold_and_comes_back(world: World) -> None:
    w = world
    (old,) = w.instances("alpha")
    w.runtime.kill(old)  # type: ignore[attr-defined]
    # Routed cold while it is down (the router then serves it from the cold pool) ...
    wait_for("alpha routed cold", lambda: w.hot_endpoint("alpha") != old.endpoint
             or None, timeout=30)
    # ... and a new instance takes over.
    endpoint = wait_for("alpha hot again", lambda: w.hot_endpoint("alpha"), timeout=400)
    (new,) = w.instances("alpha")
    assert new.id != old.id and new.running and endpoint == new.endpoint
    assert new.hot_since == old.hot_since
    check_serves(w, "alpha", endpoint)
    actions = [a for a, _ in w.events("alpha")]
    assert "route_cold" in actions and "restart" in actions


def test_restarted_orchestrator_adopts_without_duplicates(world: World) -> None:
    w = world
    (before,) = w.instances("alpha")
    endpoint = w.hot_endpoint("alpha")
    events_before = len(w.events("alpha"))
    w.stop_orchestrator()
    (still,) = w.instances("alpha")  # instances outlive the orchestrator
    assert still.id == before.id
    w.start_orchestrator()
    wait_for("two passes", lambda: w.status()["last_pass"].get("at"), timeout=30)
    w.traffic("alpha")
    wait_for("adopted as serving", lambda: [i for i in w.status()["instances"]
                                            if i["state"] == "serving"], timeout=30)
    (after,) = w.instances("alpha")
    assert after.id == before.id
    assert w.hot_endpoint("alpha") == endpoint
    new_actions = [a for a, _ in w.events("alpha")[events_before:]]
    assert "promote" not in new_actions and "restart" not in new_actions


def test_bad_policy_edit_keeps_the_old_policy_and_is_visible(world: World) -> None:
    w = world
    good = w.policy_path.read_text()
    digest = w.status()["policy"]["digest"]
    w.write_policy(good.replace("max_models: 2", "max_models: plenty"))
    status = wait_for("rejected edit in /status",
                      lambda: (s := w.status())["policy"]["valid"] is False and s)
    assert status["policy"]["digest"] == digest
    assert status["policy"]["errors"][0]["path"] == "hot.max_models"
    assert "tierserve_policy_valid 0.0" in w.metrics()
    action, outcome = w.events("")[-1]
    assert action == "policy_reload" and outcome.startswith("rejected: hot.max_models")
    # The old policy is still in force: a new busy model is promoted under it.
    w.traffic("beta")
    endpoint = wait_for("beta routed hot", lambda: w.hot_endpoint("beta"), timeout=400)
    check_serves(w, "beta", endpoint)
    w.write_policy(good)
    wait_for("policy valid again", lambda: w.status()["policy"]["valid"])
    assert "tierserve_policy_valid 1.0" in w.metrics()


def test_demotion_routes_cold_then_removes_the_instance(world: World) -> None:
    w = world
    # An operator raises the bar: every hot model is now below the demote rate.
    text = w.policy_path.read_text()
    text = text.replace("min_rate: 1\n", "min_rate: 2000000000\n").replace(
        "max_rate: 0.5\n", "max_rate: 1000000000\n")
    w.write_policy(text)
    wait_for("alpha and beta routed cold",
             lambda: w.hot_endpoint("alpha") is None and w.hot_endpoint("beta") is None,
             timeout=30)
    wait_for("instances removed", lambda: w.instances() == [] or None, timeout=60)
    demotes = [o for a, o in w.events("alpha") if a == "demote"]
    assert demotes[0].startswith("routed cold") and demotes[-1] == "drained"
