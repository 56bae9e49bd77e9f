"""The Swarm runtime against a real one-node swarm (`docker swarm init --advertise-addr
127.0.0.1`, made for the run and left again when the engine was in no swarm): the service's
shape as Swarm stores it, its host-mode published port answering on 127.0.0.1, an in-place roll
to new settings, and what Swarm refuses. Promotion, a killed task, adoption and demotion through
the router with no failed request: tests/orchestrator/test_through_router.py[swarm].
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from base.errors import FailedPrecondition
from orchestrator.runtime import Instance, InstanceSpec
from orchestrator.swarm_runtime import SwarmRuntime
from policies.swarm import SwarmSettings
from testkit import docker_image
from tierserve.toy_models import expected

from .conftest import MODELS
from .realworld import wait_for

pytestmark = pytest.mark.slow
SWARM = {"published_host": "127.0.0.1", "reserve_memory": "64m", "reserve_cpus": 0.1,
         "constraints": ["node.role==manager"], "preferences": ["node.labels.zone"],
         "restart": {"delay": "1s"}}


@pytest.fixture(scope="module")
def runtime(swarm_engine: None, test_image: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmRuntime]:
    rt = SwarmRuntime(tmp_path_factory.mktemp("swarm-state"), f"s{os.getpid()}")
    try:
        yield rt
    finally:
        for inst in rt.list_instances():
            rt.stop(inst)
        rt.close()


def make_spec(store: Path, model: str = "alpha", swarm: dict | None = None,
              **container: object) -> InstanceSpec:
    settings = docker_image.container_settings(memory="1g", cpus=1.0, **container)
    return InstanceSpec(model, str(store), settings, "hash-1", 1234.5,
                        SwarmSettings.model_validate(swarm if swarm is not None else SWARM))


def available(rt: SwarmRuntime, model: str, not_id: str = "") -> Instance | None:
    (inst,) = [i for i in rt.list_instances() if i.model == model]
    if inst.id == not_id or not inst.endpoint:
        return None
    assert inst.endpoint.startswith("http://127.0.0.1:")  # loopback only, never 10.x/172.x
    resp = httpx.get(f"{inst.endpoint}/v1/models/{model}", timeout=5)
    return inst if "AVAILABLE" in resp.text else None


def predict(inst: Instance, xs: list[float]) -> list[float]:
    resp = httpx.post(f"{inst.endpoint}/v1/models/{inst.model}:predict",
                      json={"instances": xs}, timeout=10)
    return list(resp.json()["predictions"])


def test_swarm_service_has_the_policys_shape_and_answers_on_loopback(
        runtime: SwarmRuntime, toy_store: Path) -> None:
    started = runtime.start(make_spec(toy_store))
    assert started.running and started.endpoint is None  # no task running yet
    inst = wait_for("alpha AVAILABLE", lambda: available(runtime, "alpha"), timeout=300)
    assert predict(inst, [1.0, 2.0]) == expected(MODELS["alpha"], 0.0, [1.0, 2.0])
    assert (inst.hot_since, inst.policy_hash) == (1234.5, "hash-1")
    client = docker.from_env()
    try:
        spec = client.services.get(inst.id.split("/")[0]).attrs["Spec"]
    finally:
        client.close()
    assert spec["Labels"]["tierserve.model"] == "alpha"
    assert spec["Labels"]["tierserve.scope"] == runtime.scope
    task = spec["TaskTemplate"]
    assert task["Resources"] == {"Limits": {"NanoCPUs": 10**9, "MemoryBytes": 1024**3},
                                 "Reservations": {"NanoCPUs": 10**8, "MemoryBytes": 64 * 1024**2}}
    assert task["Placement"]["Constraints"] == ["node.role==manager"]
    assert task["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor":
                                                            "node.labels.zone"}}]
    assert task["RestartPolicy"]["Condition"] == "any"
    assert task["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert all(m["ReadOnly"] for m in task["ContainerSpec"]["Mounts"] if m["Type"] == "bind")
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert {p["PublishMode"] for p in spec["EndpointSpec"]["Ports"]} == {"host"}


def test_swarm_roll_moves_the_service_to_new_settings_in_place(
        runtime: SwarmRuntime, toy_store: Path) -> None:
    (old,) = runtime.list_instances()
    # With a health command Swarm counts the new task as running only once the model is
    # AVAILABLE, and only then (start-first) stops the old one.
    health = [sys.executable, "-c", "import urllib.request as u; assert b'AVAILABLE' in "
              "u.urlopen('http://127.0.0.1:8501/v1/models/{model}', timeout=3).read()"]
    new_spec = make_spec(toy_store, swarm={**SWARM, "health_cmd": health},
                         env={"TF_CPP_MIN_LOG_LEVEL": "3",
                              "PYTHONPATH": str(docker_image.REPO_ROOT)})
    new_spec = InstanceSpec(new_spec.model, new_spec.store, new_spec.container, "hash-2",
                            old.hot_since, new_spec.swarm)
    assert runtime.roll(old, new_spec) is not None
    inst = wait_for("the rolled task AVAILABLE",
                    lambda: available(runtime, "alpha", not_id=old.id), timeout=300)
    assert inst.id.split("/")[0] == old.id.split("/")[0]  # the same service, a new task
    assert inst.policy_hash == "hash-2" and inst.hot_since == old.hot_since
    assert predict(inst, [3.0]) == expected(MODELS["alpha"], 0.0, [3.0])
    client = docker.from_env()
    try:
        task = client.api.inspect_task(inst.id.split("/")[1])
        container = client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
    finally:
        client.close()


def test_swarm_refused_roll_leaves_the_service_as_it_was(runtime: SwarmRuntime,
                                                         toy_store: Path) -> None:
    (before,) = runtime.list_instances()
    bad = make_spec(toy_store, swarm={**SWARM, "network": "tierserve-no-such-net"})
    with pytest.raises(FailedPrecondition, match="Swarm refused the service"):
        runtime.roll(before, bad)
    time.sleep(2)
    (after,) = runtime.list_instances()
    assert after.id == before.id and after.policy_hash == before.policy_hash
    assert predict(after, [1.0]) == expected(MODELS["alpha"], 0.0, [1.0])


def test_swarm_refused_start_is_a_clear_error_and_starts_nothing(runtime: SwarmRuntime,
                                                                  toy_store: Path) -> None:
    bad = make_spec(toy_store, "beta", swarm={**SWARM, "network": "tierserve-no-such-net"})
    with pytest.raises(FailedPrecondition, match="tierserve-no-such-net"):
        runtime.start(bad)
    assert [i.model for i in runtime.list_instances()] == ["alpha"]


def test_swarm_unplaceable_task_says_why_it_waits(runtime: SwarmRuntime,
                                                  toy_store: Path) -> None:
    spec = make_spec(toy_store, "gamma", swarm={**SWARM, "constraints": ["node.role==worker"]})
    runtime.start(spec)
    inst = wait_for("gamma pending", lambda: next(
        (i for i in runtime.list_instances() if i.model == "gamma"
         and "no suitable node" in i.detail), None), timeout=60)
    assert inst.running and inst.endpoint is None  # starting: the loop's start_timeout applies
    runtime.stop(inst)
    assert [i.model for i in runtime.list_instances()] == ["alpha"]


def test_swarm_runtime_refuses_an_engine_outside_a_swarm_clearly() -> None:
    from orchestrator.swarm_runtime import swarm_state

    class Engine:
        def __init__(self, swarm: dict) -> None:
            self.swarm = swarm

        def info(self) -> dict:
            return {"Swarm": self.swarm}

    assert "not in a swarm" in str(swarm_state(Engine({"LocalNodeState": "inactive"})))
    worker = Engine({"LocalNodeState": "active", "ControlAvailable": False})
    assert "manager node" in str(swarm_state(worker))
    assert swarm_state(Engine({"LocalNodeState": "active", "ControlAvailable": True})) is None
