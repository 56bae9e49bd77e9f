"""Hot instances as Docker containers. Every Docker SDK call of the project lives here.

One container per hot model, named `tierserve-<scope>-<model>` (the engine itself then refuses
a duplicate), labelled with the owner, scope, model, settings hash and hot-since time, ports
published on 127.0.0.1 only, memory/CPU limits, all capabilities dropped, no new privileges.
With the official `tensorflow/serving` image (no s3:// support) the model's latest version is
first synced from the store into `<state_dir>/models/<model>` and mounted read-only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from base.errors import FailedPrecondition, Internal, TierserveError, Unavailable
from base.names import check_model_name
from orchestrator.runtime import GRPC_PORT, REST_PORT, Instance, InstanceSpec, Runtime
from pools.model_server.command import model_server_args
from pools.store import open_store

log = logging.getLogger(__name__)

LABEL_OWNER = "tierserve.managed-by"
LABEL_SCOPE = "tierserve.scope"
LABEL_MODEL = "tierserve.model"
LABEL_HASH = "tierserve.policy-hash"
LABEL_SINCE = "tierserve.hot-since"
OWNER = "tierserve"

# Our model server binds 127.0.0.1 by default; inside a container it must answer on the
# container's interface for the published port to reach it.
TIERSERVE_HOST = "0.0.0.0"
TF_SERVING_MODELS = "/models"
# When the orchestrator itself runs in a container (compose), hot containers join this
# network and are reached there by name: 127.0.0.1 would be the orchestrator's own loopback.
NETWORK_ENV = "TIERSERVE_DOCKER_NETWORK"


def _error(exc: Exception, what: str) -> TierserveError:
    """Docker SDK errors -> tierserve's, at the edge."""
    if isinstance(exc, ImageNotFound):
        return FailedPrecondition(f"{what}: image not found ({exc.explanation})")
    if isinstance(exc, APIError):
        return Internal(f"{what}: {exc.explanation or exc}")
    return Unavailable(f"{what}: Docker engine unreachable ({exc})")


def docker_available(timeout: float = 3.0) -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        client = docker.from_env(timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except DockerException as exc:
        return str(exc)
    return None


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, state_dir: Path, scope: str = "default", timeout: float = 30.0,
                 network: str | None = None) -> None:
        self.scope = check_model_name(scope)
        self.network = network or os.environ.get(NETWORK_ENV) or None
        self.state_dir = Path(state_dir)
        try:
            self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except DockerException as exc:
            raise _error(exc, "docker") from None

    def container_name(self, model: str) -> str:
        return f"tierserve-{self.scope}-{model}"

    def _filters(self) -> dict[str, Any]:
        return {"label": [f"{LABEL_OWNER}={OWNER}", f"{LABEL_SCOPE}={self.scope}"]}

    def list_instances(self) -> list[Instance]:
        try:
            containers = self.client.containers.list(all=True, filters=self._filters())
        except DockerException as exc:
            raise _error(exc, "list containers") from None
        return sorted((self._instance(c, self.network) for c in containers),
                      key=lambda i: (i.model, i.id))

    @staticmethod
    def _instance(container: Any, network: str | None = None) -> Instance:
        labels = container.labels
        settings = container.attrs.get("NetworkSettings") or {}
        ports = settings.get("Ports") or {}
        bound = ports.get(f"{REST_PORT}/tcp") or []
        endpoint = f"http://127.0.0.1:{bound[0]['HostPort']}" if bound else None
        if network and network in (settings.get("Networks") or {}):
            endpoint = f"http://{container.name}:{REST_PORT}"
        state = container.attrs.get("State") or {}
        running = container.status == "running"
        detail = container.status if running else f"{container.status} ({state.get('ExitCode')})"
        return Instance(model=labels.get(LABEL_MODEL, ""), id=container.id, endpoint=endpoint,
                        running=running, hot_since=float(labels.get(LABEL_SINCE, "0")),
                        policy_hash=labels.get(LABEL_HASH, ""), detail=detail)

    def _command(self, spec: InstanceSpec) -> tuple[list[str], dict[str, dict[str, str]]]:
        settings = spec.container
        volumes = {host: {"bind": inside, "mode": "ro"}
                   for host, inside in settings.volumes.items()}
        if settings.kind == "tensorflow-serving":
            local = self._sync(spec)
            inside = f"{TF_SERVING_MODELS}/{spec.model}"
            volumes[str(local)] = {"bind": inside, "mode": "ro"}
            program = settings.command or ["tensorflow_model_server"]
            return [*program, *model_server_args(
                port=GRPC_PORT, rest_api_port=REST_PORT, model_name=spec.model,
                model_base_path=inside, extra=settings.args)], volumes
        store = open_store(spec.store)
        base_path = store.model_uri(spec.model)
        if "://" not in spec.store:  # a local store is mounted at the same path, read-only
            root = str(Path(spec.store).resolve())
            volumes.setdefault(root, {"bind": root, "mode": "ro"})
            base_path = str(Path(root) / spec.model)
        program = settings.command or ["tierserve", "model-server"]
        return [*program, *model_server_args(
            port=GRPC_PORT, rest_api_port=REST_PORT, model_name=spec.model,
            model_base_path=base_path, host=TIERSERVE_HOST, extra=settings.args)], volumes

    def _sync(self, spec: InstanceSpec) -> Path:
        """The model's latest version copied from the store into a local folder."""
        store = open_store(spec.store)
        dest = self.state_dir / "models" / spec.model
        store.download(spec.model, store.latest_version(spec.model), dest)
        return dest.resolve()

    def start(self, spec: InstanceSpec) -> Instance:
        command, volumes = self._command(spec)
        settings = spec.container
        labels = {LABEL_OWNER: OWNER, LABEL_SCOPE: self.scope, LABEL_MODEL: spec.model,
                  LABEL_HASH: spec.policy_hash, LABEL_SINCE: repr(spec.hot_since)}
        kwargs: dict[str, Any] = {}
        if settings.memory:
            kwargs["mem_limit"] = settings.memory
        if settings.cpus:
            kwargs["nano_cpus"] = int(settings.cpus * 1e9)
        if self.network:
            kwargs["network"] = self.network
        try:
            container = self.client.containers.run(
                settings.image, command=command, name=self.container_name(spec.model),
                detach=True, labels=labels, environment={"HOME": "/tmp", **settings.env},
                volumes=volumes, tmpfs={"/tmp": "rw,size=256m"},
                ports={f"{REST_PORT}/tcp": ("127.0.0.1", None),
                       f"{GRPC_PORT}/tcp": ("127.0.0.1", None)},
                cap_drop=["ALL"], security_opt=["no-new-privileges"], privileged=False,
                **kwargs)
            container.reload()  # the published host ports are known only after start
        except DockerException as exc:
            raise _error(exc, f"start {spec.model}") from None
        return self._instance(container, self.network)

    def stop(self, instance: Instance, timeout: float = 10.0) -> None:
        try:
            container = self.client.containers.get(instance.id)
            with contextlib.suppress(APIError):
                container.stop(timeout=int(max(1, timeout)))
            container.remove(force=True)
        except NotFound:
            return
        except DockerException as exc:
            raise _error(exc, f"stop {instance.model}") from None

    def kill(self, instance: Instance) -> None:
        """`docker kill`, as a crash would (tests and fault drills)."""
        try:
            self.client.containers.get(instance.id).kill()
        except DockerException as exc:
            raise _error(exc, f"kill {instance.model}") from None

    def logs(self, instance: Instance, tail: int = 50) -> str:
        try:
            return self.client.containers.get(instance.id).logs(tail=tail).decode(errors="replace")
        except DockerException as exc:
            return f"(no logs: {exc})"

    def import_image(self, rootfs_tar: bytes, tag: str) -> str:
        """`docker import` of a root filesystem tarball (no registry needed); returns the id."""
        repository, _, version = tag.partition(":")
        try:
            result = self.client.api.import_image_from_data(
                io.BytesIO(rootfs_tar).getvalue(), repository=repository, tag=version or "latest")
            return str(self.client.images.get(tag).id) if result is not None else ""
        except DockerException as exc:
            raise _error(exc, f"import image {tag}") from None

    def has_image(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
            return True
        except ImageNotFound:
            return False
        except DockerException as exc:
            raise _error(exc, f"inspect image {tag}") from None

    def close(self) -> None:
        self.client.close()
