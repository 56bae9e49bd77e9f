"""A hot model's Swarm service, built purely from the instance spec, and the instance a service
and its tasks amount to. No Docker calls: the docker SDK's `docker.types` are plain data.

The service runs the same command, mounts, environment and labels as the container runtime's
container (orchestrator.container_spec), plus what only Swarm has: reservations, placement
constraints and preferences, Swarm's restart policy, `update_config` (start-first by default,
so a changed image rolls without a gap) and an endpoint spec that either publishes the REST and
gRPC ports in host mode on the task's node (`reach: published`) or publishes nothing and joins
an overlay network where routers reach `http://<service name>:8501` (`reach: network`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from docker.types import (
    EndpointSpec,
    Healthcheck,
    Mount,
    Resources,
    RestartPolicy,
    ServiceMode,
    UpdateConfig,
)

from orchestrator.container_spec import (
    LABEL_HASH,
    LABEL_MODEL,
    LABEL_SINCE,
    ModelMount,
    container_name,
    instance_labels,
    read_only_binds,
    server_command,
)
from orchestrator.runtime import GRPC_PORT, REST_PORT, Instance, InstanceSpec

NS = 10**9  # Swarm's durations are nanoseconds
TMP_BYTES = 256 * 1024**2
# Only on the tasks' containers: the container runtime adopts containers by owner and scope
# labels, and must never take a service's task for one of its own.
LABEL_SERVICE = "tierserve.swarm-service"
# On the service, when the policy sets hot.swarm.published_host: the host in its endpoint.
LABEL_PUBLISHED_HOST = "tierserve.published-host"
STOP_GRACE_S = 10
HEALTH_INTERVAL_S = 2
# Task states (swarmkit's api.TaskState) after which a task never runs again.
DONE_STATES = frozenset({"complete", "shutdown", "failed", "rejected", "orphaned", "remove"})


def service_spec(spec: InstanceSpec, mount: ModelMount, scope: str,
                 config_file: Path | None = None,
                 inherited_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for the docker SDK's `services.create` (and `Service.update`);
    `config_file`: a labelled model's model config on the host (bound read-only);
    `inherited_env`: the orchestrator's store settings (`store_env`), under the policy's."""
    settings, swarm = spec.container, spec.swarm
    mounts = [Mount(inside, host, type="bind", read_only=True)
              for host, inside in read_only_binds(spec, mount, config_file).items()]
    mounts.append(Mount("/tmp", "", type="tmpfs", tmpfs_size=TMP_BYTES))
    name = container_name(scope, spec.model)
    nano = int(settings.cpus * NS) if settings.cpus else None
    reserve = int(swarm.reserve_cpus * NS) if swarm.reserve_cpus else None
    if swarm.reach == "published":
        ports = [{"Protocol": "tcp", "TargetPort": port, "PublishMode": "host"}
                 for port in (REST_PORT, GRPC_PORT)]  # no PublishedPort: the node picks one
        endpoint = EndpointSpec(mode="vip", ports=ports)
    else:
        endpoint = EndpointSpec(mode="vip")
    kwargs: dict[str, Any] = {
        "image": settings.image, "command": server_command(spec, mount, config_file), "name": name,
        "labels": {**instance_labels(spec, scope), **(
            {LABEL_PUBLISHED_HOST: swarm.published_host} if swarm.published_host else {})},
        "container_labels": {LABEL_SERVICE: name, LABEL_MODEL: spec.model},
        "env": {"HOME": "/tmp", **(inherited_env or {}), **settings.env}, "mounts": mounts,
        "cap_drop": ["ALL"],
        "mode": ServiceMode("replicated", replicas=1),
        "resources": Resources(cpu_limit=nano, mem_limit=settings.memory,
                               cpu_reservation=reserve, mem_reservation=swarm.reserve_memory),
        "constraints": list(swarm.constraints),
        "preferences": [("spread", label) for label in swarm.preferences],
        "restart_policy": RestartPolicy(
            condition=swarm.restart.condition, delay=int(swarm.restart.delay * NS),
            max_attempts=swarm.restart.max_attempts, window=int(swarm.restart.window * NS)),
        "update_config": UpdateConfig(
            parallelism=1, delay=int(swarm.update.delay * NS),
            failure_action=swarm.update.failure_action, monitor=int(swarm.update.monitor * NS),
            order=swarm.update.order),
        "endpoint_spec": endpoint,
        "stop_grace_period": STOP_GRACE_S * NS,
    }
    if swarm.health_cmd:
        # Swarm counts a task as running (and, start-first, stops the old one) once healthy.
        kwargs["healthcheck"] = Healthcheck(
            test=["CMD", *(a.replace("{model}", spec.model) for a in swarm.health_cmd)],
            interval=HEALTH_INTERVAL_S * NS,
            timeout=HEALTH_INTERVAL_S * NS, retries=3, start_period=int(swarm.health_start * NS))
    if swarm.network:
        kwargs["networks"] = [swarm.network]
    return kwargs


def _state(task: Mapping[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State", ""))


def _newest(tasks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return max(tasks, key=lambda t: ((t.get("Version") or {}).get("Index", 0),
                                     t.get("CreatedAt", "")))


def _published(task: Mapping[str, Any], target: int = REST_PORT) -> int | None:
    ports = ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
    for port in ports:
        if port.get("TargetPort") == target and port.get("PublishedPort"):
            return int(port["PublishedPort"])
    return None


def instance_of(service: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                node_addrs: Mapping[str, str]) -> Instance:
    """The instance one service amounts to right now (`service`, `tasks`: the Engine API's
    attrs; `node_addrs`: node id -> address, replaced by the service's published-host label
    when it has one). Its id is `<service id>/<task id>`: a task Swarm
    restarts is a new instance to the loop, which probes it before routing to it again.

    - a running task (the newest, during a start-first roll): running, with its endpoint;
    - else a task Swarm is still bringing up (pending, preparing, waiting for its restart
      delay): running (starting), no endpoint; the detail says why it waits;
    - else (no task, and Swarm will start none: its restart attempts are spent): not running,
      so the loop restarts the service.
    """
    spec = service.get("Spec") or {}
    labels = spec.get("Labels") or {}
    name = str(spec.get("Name", ""))
    reach_network = not (((service.get("Endpoint") or {}).get("Spec") or {}).get("Ports"))

    def make(task_id: str, running: bool, endpoint: str | None, detail: str,
             grpc: str | None = None) -> Instance:
        return Instance(model=labels.get(LABEL_MODEL, ""), id=f"{service['ID']}/{task_id}",
                        endpoint=endpoint, running=running,
                        hot_since=float(labels.get(LABEL_SINCE, "0")),
                        policy_hash=labels.get(LABEL_HASH, ""), detail=detail, grpc=grpc)

    wanted = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
    up = [t for t in wanted if _state(t) == "running"]
    if up:
        task = _newest(up)
        grpc: str | None
        if reach_network:
            endpoint: str | None = f"http://{name}:{REST_PORT}"
            grpc = f"{name}:{GRPC_PORT}"
        else:
            port, grpc_port = _published(task), _published(task, GRPC_PORT)
            host = labels.get(LABEL_PUBLISHED_HOST) or node_addrs.get(str(task.get("NodeID", "")))
            endpoint = f"http://{host}:{port}" if port and host else None
            grpc = f"{host}:{grpc_port}" if grpc_port and host else None
        return make(str(task["ID"]), True, endpoint, "running", grpc)
    coming = [t for t in wanted if _state(t) not in DONE_STATES]
    if coming or not tasks:
        task = _newest(coming) if coming else {"ID": "", "Status": {"State": "new"}}
        status = task.get("Status") or {}
        why = status.get("Err") or status.get("Message") or ""
        return make(str(task["ID"]), True, None,
                    f"task {_state(task)}" + (f": {why}" if why else ""))
    last = _newest(tasks)
    status = last.get("Status") or {}
    why = status.get("Err") or status.get("Message") or ""
    return make(str(last["ID"]), False, None, f"task {_state(last)}" + (f": {why}" if why else ""))
