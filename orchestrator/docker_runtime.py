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
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from base.errors import FailedPrecondition, Internal, TierserveError, Unavailable
from base.names import check_model_name
from orchestrator.container_spec import (
    LABEL_HASH,
    LABEL_MODEL,
    LABEL_OWNER,
    LABEL_SCOPE,
    LABEL_SINCE,
    MONITORING_TEXT,
    OWNER,
    ModelMount,
    container_name,
    container_spec,
    store_env,
)
from orchestrator.runtime import (
    GRPC_PORT,
    REST_PORT,
    Instance,
    InstanceSpec,
    Runtime,
    labelled_config,
)
from pools.model_server.command import labelled_versions
from pools.store import open_store

log = logging.getLogger(__name__)

# When the orchestrator itself runs in a container (compose), hot containers join this
# network and are reached there by name: 127.0.0.1 would be the orchestrator's own loopback.
NETWORK_ENV = "TIERSERVE_DOCKER_NETWORK"
SYNC_FRESH = 60.0  # seconds a prepared copy may wait for its start before it is synced again


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
        # Model syncs for the official image run here, never in the reconcile pass.
        self._sync_pool = ThreadPoolExecutor(2, thread_name_prefix="docker-sync")
        self._syncs: dict[tuple[str, str], tuple[float, Future[ModelMount]]] = {}
        try:
            self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except DockerException as exc:
            raise _error(exc, "docker") from None

    def container_name(self, model: str) -> str:
        return container_name(self.scope, model)

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
        bound_grpc = ports.get(f"{GRPC_PORT}/tcp") or []
        grpc = f"127.0.0.1:{bound_grpc[0]['HostPort']}" if bound_grpc else None
        if network and network in (settings.get("Networks") or {}):
            endpoint = f"http://{container.name}:{REST_PORT}"
            grpc = f"{container.name}:{GRPC_PORT}"
        state = container.attrs.get("State") or {}
        running = container.status == "running"
        detail = container.status if running else f"{container.status} ({state.get('ExitCode')})"
        return Instance(model=labels.get(LABEL_MODEL, ""), id=container.id, endpoint=endpoint,
                        running=running, hot_since=float(labels.get(LABEL_SINCE, "0")),
                        policy_hash=labels.get(LABEL_HASH, ""), detail=detail, grpc=grpc)

    def _mount(self, spec: InstanceSpec) -> ModelMount:
        """Where the server finds the model; for the official image this downloads it (slow:
        `prepare` runs it in the background, outside the reconcile pass)."""
        if spec.container.kind == "tensorflow-serving":
            store = open_store(spec.store)
            dest = self.state_dir / "models" / spec.model
            in_store = store.list_versions(spec.model)
            wanted, _ = labelled_versions(spec.labels, in_store)
            for version in wanted or [store.latest_version(spec.model)]:
                store.download(spec.model, version, dest)
            monitoring = self.state_dir / "tf-serving-monitoring.config"
            if not monitoring.is_file() or monitoring.read_text() != MONITORING_TEXT:
                monitoring.write_text(MONITORING_TEXT)  # so Prometheus finds its metrics
            return ModelMount.synced(spec.model, dest.resolve(), monitoring.resolve())
        if "://" in spec.store:
            return ModelMount(open_store(spec.store).model_uri(spec.model), {})
        return ModelMount.local_store(spec.model, Path(spec.store).resolve())

    def prepare(self, spec: InstanceSpec) -> bool:
        if spec.container.kind != "tensorflow-serving":
            return True  # nothing slow to do
        key = (spec.model, spec.store)
        job = self._syncs.get(key)
        if job is None or (job[1].done() and time.monotonic() - job[0] > SYNC_FRESH):
            self._syncs[key] = (time.monotonic(), self._sync_pool.submit(self._mount, spec))
            return False
        if not job[1].done():
            return False
        if job[1].exception() is not None:
            self._syncs.pop(key, None)
            self._result(job[1], spec)
        return True

    def _prepared_mount(self, spec: InstanceSpec) -> ModelMount:
        job = self._syncs.pop((spec.model, spec.store), None)
        if spec.container.kind != "tensorflow-serving" or job is None:
            return self._mount(spec)  # a caller that did not prepare waits here
        return self._result(job[1], spec)

    @staticmethod
    def _result(job: Future[ModelMount], spec: InstanceSpec) -> ModelMount:
        try:
            return job.result()
        except TierserveError:
            raise
        except Exception as exc:  # e.g. an OSError while writing the copy
            raise Internal(f"sync {spec.model} from {spec.store}: {exc}") from exc

    def _config_file(self, spec: InstanceSpec, mount: ModelMount) -> Path | None:
        """A labelled model's model config file (TF Serving's way to carry version_labels),
        written on the host for a read-only bind mount; None without labels."""
        if not spec.labels:
            return None
        config = (self.state_dir / "configs" / f"{self.scope}-{spec.model}.config").resolve()
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(labelled_config(spec, mount.base_path))
        return config

    def start(self, spec: InstanceSpec) -> Instance:
        mount = self._prepared_mount(spec)
        run = container_spec(spec, mount, self.scope, self.network,
                             config_file=self._config_file(spec, mount),
                             inherited_env=store_env(os.environ))
        try:
            container = self.client.containers.run(detach=True, **run)
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
        self._sync_pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
