"""Hot instances as Docker Swarm services (`runtime: swarm`). Every Swarm call of the project
lives here; the service spec and how a service's tasks read as an instance are pure
(orchestrator.service_spec).

One replicated service (1 replica) per hot model, named `tierserve-<scope>-<model>` (Swarm
refuses a duplicate name), labelled like the container runtime's containers so a restarted
orchestrator adopts its services. Swarm restarts a task that dies (its restart policy); the loop
sees the replacement as a new instance, routes the model cold meanwhile and hot again once the
new task reports AVAILABLE. A settings change rolls the service in place (`update_config`,
start-first). The orchestrator must run on a manager node: only managers answer the Swarm API.

What it shares with the container runtime (model mounts, the sync for the official image,
image import) it inherits from DockerRuntime.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from docker.errors import APIError, DockerException, NotFound

from base.errors import FailedPrecondition, TierserveError
from orchestrator.container_spec import store_env
from orchestrator.docker_runtime import DockerRuntime, _error
from orchestrator.runtime import Instance, InstanceSpec
from orchestrator.service_spec import instance_of, service_spec

log = logging.getLogger(__name__)
_REFUSALS = ("invalid", "constraint", "not found", "expected")


def swarm_state(client: Any) -> str | None:
    """None when `client`'s engine is a swarm manager, else why it cannot run services."""
    swarm = (client.info() or {}).get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        return (f"this Docker engine is not in a swarm (state {swarm.get('LocalNodeState')!r}):"
                " run `docker swarm init` or join one")
    if not swarm.get("ControlAvailable"):
        return "this node is a swarm worker: run the orchestrator on a manager node"
    return None


def _spec_error(exc: DockerException, what: str) -> TierserveError:
    """Swarm refusing a spec (a bad constraint, an unknown network) is the policy's fault; it
    answers some of those as 500 with the reason from its RPC layer."""
    if isinstance(exc, APIError) and not isinstance(exc, NotFound):
        reason = str(exc.explanation or exc)
        if exc.status_code == 400 or any(w in reason.lower() for w in _REFUSALS):
            return FailedPrecondition(f"{what}: Swarm refused the service: {reason}")
    return _error(exc, what)


class SwarmRuntime(DockerRuntime):
    name = "swarm"

    def __init__(self, state_dir: Path, scope: str = "default", timeout: float = 30.0) -> None:
        super().__init__(state_dir, scope, timeout)
        try:
            reason = swarm_state(self.client)
        except DockerException as exc:
            self.close()
            raise _error(exc, "swarm") from None
        if reason is not None:
            self.close()
            raise FailedPrecondition(reason)

    def list_instances(self) -> list[Instance]:
        try:
            services = self.client.services.list(filters=self._filters())
            nodes = {n.id: str((n.attrs.get("Status") or {}).get("Addr", ""))
                     for n in self.client.nodes.list()} if services else {}
            found = [instance_of(s.attrs, self.client.api.tasks(filters={"service": s.id}),
                                 nodes) for s in services]
        except DockerException as exc:
            raise _error(exc, "list services") from None
        return sorted(found, key=lambda i: (i.model, i.id))

    def _service(self, instance: Instance) -> Any:
        return self.client.services.get(instance.id.split("/")[0])

    def _created(self, service: Any) -> Instance:
        service.reload()
        return instance_of(service.attrs, [], {})

    def _service_kwargs(self, spec: InstanceSpec) -> dict[str, Any]:
        mount = self._prepared_mount(spec)
        return service_spec(spec, mount, self.scope, self._config_file(spec, mount),
                            store_env(os.environ))

    def start(self, spec: InstanceSpec) -> Instance:
        kwargs = self._service_kwargs(spec)
        try:
            service = self.client.services.create(**kwargs)
            return self._created(service)
        except DockerException as exc:
            raise _spec_error(exc, f"start {spec.model}") from None

    def roll(self, instance: Instance, spec: InstanceSpec) -> Instance | None:
        kwargs = self._service_kwargs(spec)
        try:
            service = self._service(instance)
            service.update(**kwargs)
            return self._created(service)
        except DockerException as exc:
            raise _spec_error(exc, f"roll {spec.model}") from None

    def stop(self, instance: Instance, timeout: float = 10.0) -> None:
        try:
            self._service(instance).remove()
        except NotFound:
            return
        except DockerException as exc:
            raise _error(exc, f"stop {instance.model}") from None

    def _container_id(self, instance: Instance) -> str | None:
        task_id = instance.id.partition("/")[2]
        if not task_id:
            return None
        status = self.client.api.inspect_task(task_id).get("Status") or {}
        return (status.get("ContainerStatus") or {}).get("ContainerID")

    def kill(self, instance: Instance) -> None:
        """Kill the task's container, as a crash would (on this node; tests and drills)."""
        try:
            container_id = self._container_id(instance)
            if container_id is None:
                raise FailedPrecondition(f"kill {instance.model}: no task container yet")
            self.client.containers.get(container_id).kill()
        except DockerException as exc:
            raise _error(exc, f"kill {instance.model}") from None

    def logs(self, instance: Instance, tail: int = 50) -> str:
        try:
            lines = self._service(instance).logs(stdout=True, stderr=True, tail=tail)
            return b"".join(lines).decode(errors="replace")
        except DockerException as exc:
            return f"(no logs: {exc})"
