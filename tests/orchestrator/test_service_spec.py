"""A hot model's Swarm service built purely from the spec, and what a service's tasks read as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.container_spec import ModelMount, container_spec
from orchestrator.runtime import InstanceSpec
from orchestrator.service_spec import instance_of, service_spec
from policies.schema import ContainerSettings
from policies.swarm import SwarmSettings


def spec(swarm: dict[str, Any] | None = None, **settings: object) -> InstanceSpec:
    return InstanceSpec("m", "/store", ContainerSettings.model_validate(settings), "h1", 12.5,
                        SwarmSettings.model_validate(swarm or {}))


MOUNT = ModelMount.local_store("m", Path("/store"))


def test_swarm_service_runs_what_the_container_runtime_runs() -> None:
    s = spec(memory="1g", cpus=0.5, env={"A": "1"}, volumes={"/etc/x": "/x"})
    svc, run = service_spec(s, MOUNT, "sc"), container_spec(s, MOUNT, "sc")
    assert svc["command"] == run["command"] and svc["image"] == run["image"]
    assert svc["name"] == run["name"] == "tierserve-sc-m"
    assert svc["labels"] == run["labels"]  # adopted by the same labels
    # The tasks' containers carry no owner/scope label: the container runtime never adopts them.
    assert "tierserve.scope" not in svc["container_labels"]
    assert svc["env"] == run["environment"] and svc["cap_drop"] == ["ALL"]
    binds = {(m["Source"], m["Target"], m["ReadOnly"]) for m in svc["mounts"]
             if m["Type"] == "bind"}
    assert binds == {(h, v["bind"], True) for h, v in run["volumes"].items()}
    assert [m["Target"] for m in svc["mounts"] if m["Type"] == "tmpfs"] == ["/tmp"]


def test_swarm_service_of_a_labelled_model_binds_its_model_config_as_the_container_does(
) -> None:
    s = spec()
    config = Path("/state/configs/sc-m.config")
    svc, run = service_spec(s, MOUNT, "sc", config), container_spec(s, MOUNT, "sc",
                                                                     config_file=config)
    assert svc["command"] == run["command"]
    assert any(arg.startswith("--model_config_file=") for arg in svc["command"])
    binds = {(m["Source"], m["Target"]) for m in svc["mounts"] if m["Type"] == "bind"}
    assert (str(config), run["volumes"][str(config)]["bind"]) in binds

def test_swarm_resources_placement_restart_and_update_come_from_the_policy() -> None:
    svc = service_spec(spec({"reserve_memory": "512m", "reserve_cpus": 0.25,
                             "constraints": ["node.role==worker", "node.labels.tier==hot"],
                             "preferences": ["node.labels.zone"],
                             "restart": {"delay": "2s", "max_attempts": 3},
                             "update": {"monitor": "10s"}}, memory="1g", cpus=0.5), MOUNT, "sc")
    assert svc["mode"] == {"replicated": {"Replicas": 1}}
    assert svc["resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 1024**3},
                                "Reservations": {"NanoCPUs": 250_000_000,
                                                 "MemoryBytes": 512 * 1024**2}}
    assert svc["constraints"] == ["node.role==worker", "node.labels.tier==hot"]
    assert svc["preferences"] == [("spread", "node.labels.zone")]
    assert svc["restart_policy"] == {"Condition": "any", "Delay": 2 * 10**9, "MaxAttempts": 3,
                                     "Window": 0}
    update = svc["update_config"]
    assert (update["Order"], update["Parallelism"], update["FailureAction"],
            update["Monitor"]) == ("start-first", 1, "rollback", 10 * 10**9)
    assert "healthcheck" not in svc and "networks" not in svc


def test_swarm_reach_published_publishes_both_ports_in_host_mode() -> None:
    svc = service_spec(spec({"published_host": "127.0.0.1"}), MOUNT, "sc")
    assert svc["endpoint_spec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8501, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 8500, "PublishMode": "host"}]
    assert svc["labels"]["tierserve.published-host"] == "127.0.0.1"


def test_swarm_reach_network_publishes_nothing_and_joins_the_network() -> None:
    svc = service_spec(spec({"reach": "network", "network": "tiernet",
                             "health_cmd": ["probe", "/v1/models/{model}"]}), MOUNT, "sc")
    assert "Ports" not in svc["endpoint_spec"] and svc["networks"] == ["tiernet"]
    assert svc["healthcheck"]["Test"] == ["CMD", "probe", "/v1/models/m"]


SERVICE = {"ID": "svc1", "Spec": {"Name": "tierserve-sc-m", "Labels": {
    "tierserve.model": "m", "tierserve.policy-hash": "h1", "tierserve.hot-since": "12.5"}},
    "Endpoint": {"Spec": {"Ports": [{"TargetPort": 8501, "PublishMode": "host"}]}}}


def task(tid: str, state: str, desired: str = "running", index: int = 1, port: int | None = None,
         err: str = "", grpc_port: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Err": err}
    if port:
        ports = [{"TargetPort": 8501, "PublishedPort": port}]
        if grpc_port:
            ports.append({"TargetPort": 8500, "PublishedPort": grpc_port})
        status["PortStatus"] = {"Ports": ports}
    return {"ID": tid, "NodeID": "n1", "DesiredState": desired, "Version": {"Index": index},
            "Status": status}


NODES = {"n1": "10.1.2.3"}


def test_swarm_running_task_is_the_instance_at_its_nodes_published_port() -> None:
    inst = instance_of(SERVICE, [task("t1", "running", port=30001)], NODES)
    assert (inst.id, inst.running, inst.endpoint) == ("svc1/t1", True, "http://10.1.2.3:30001")
    assert (inst.model, inst.hot_since, inst.policy_hash) == ("m", 12.5, "h1")
    labelled = {**SERVICE, "Spec": {**SERVICE["Spec"], "Labels": {
        **SERVICE["Spec"]["Labels"], "tierserve.published-host": "127.0.0.1"}}}
    assert instance_of(labelled, [task("t1", "running", port=30001)], NODES).endpoint == \
        "http://127.0.0.1:30001"
    assert inst.grpc is None  # its gRPC port is not published: the cold pool answers gRPC
    both = instance_of(labelled, [task("t1", "running", port=30001, grpc_port=30002)], NODES)
    assert (both.endpoint, both.grpc) == ("http://127.0.0.1:30001", "127.0.0.1:30002")


def test_swarm_task_restarted_by_swarm_is_a_new_starting_instance() -> None:
    tasks = [task("t1", "failed", desired="shutdown", index=5, err="task: non-zero exit (137)"),
             task("t2", "ready", desired="ready", index=6)]
    inst = instance_of(SERVICE, tasks, NODES)
    assert (inst.id, inst.running, inst.endpoint) == ("svc1/t2", True, None)
    assert inst.detail == "task ready"


def test_swarm_pending_task_says_why_it_waits() -> None:
    inst = instance_of(SERVICE, [task("t1", "pending", err="no suitable node")], NODES)
    assert inst.running and inst.endpoint is None
    assert inst.detail == "task pending: no suitable node"


def test_swarm_new_service_without_tasks_is_starting() -> None:
    inst = instance_of(SERVICE, [], NODES)
    assert (inst.id, inst.running, inst.endpoint) == ("svc1/", True, None)


def test_swarm_service_whose_restarts_are_spent_is_dead() -> None:
    tasks = [task("t1", "failed", desired="shutdown", index=3, err="exit 1"),
             task("t2", "failed", desired="shutdown", index=7, err="exit 2")]
    inst = instance_of(SERVICE, tasks, NODES)
    assert (inst.id, inst.running) == ("svc1/t2", False) and inst.detail == "task failed: exit 2"


def test_swarm_start_first_roll_reads_as_the_newest_running_task() -> None:
    tasks = [task("old", "running", index=3, port=30001),
             task("new", "running", index=9, port=30002)]
    assert instance_of(SERVICE, tasks, NODES).endpoint == "http://10.1.2.3:30002"


def test_swarm_network_reach_endpoint_is_the_service_name() -> None:
    service = {**SERVICE, "Endpoint": {"Spec": {}}}
    inst = instance_of(service, [task("t1", "running")], NODES)
    assert (inst.endpoint, inst.grpc) == ("http://tierserve-sc-m:8501", "tierserve-sc-m:8500")
