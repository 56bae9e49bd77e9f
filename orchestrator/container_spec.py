"""A hot model's container, built purely from the instance spec (no Docker, no store calls):
the keyword arguments of the Docker SDK's `containers.run`.

Labelled with the owner, scope, model, settings hash and hot-since time; ports published on
127.0.0.1 only; memory and CPU limits, a CPU weight (hot servers above the cold pool) and
TensorFlow thread pools sized to the granted CPUs; all capabilities dropped, no new privileges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.runtime import GRPC_PORT, REST_PORT, InstanceSpec, granted_threads
from pools.model_server.command import config_file_args, model_server_args

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
# Where a labelled model's --model_config_file is mounted (read-only) inside the container.
CONFIG_INSIDE = "/etc/tierserve/model.config"
STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL")
# The official image serves Prometheus metrics only when a monitoring config says so; the
# runtime writes this text on the host and mounts it here (read-only).
MONITORING_CONFIG = "/etc/tierserve/monitoring.config"
MONITORING_TEXT = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'


@dataclass(frozen=True)
class ModelMount:
    """The model's `--model_base_path` inside the container and the bind mounts it needs."""

    base_path: str
    volumes: dict[str, str]  # host path -> path inside, read-only

    @classmethod
    def synced(cls, model: str, local: Path, monitoring: Path | None = None) -> ModelMount:
        """A copy on the host (for the official image, which cannot read s3://), and the
        monitoring config file (MONITORING_TEXT) written on the host, if any."""
        inside = f"{TF_SERVING_MODELS}/{model}"
        volumes = {str(local): inside}
        if monitoring is not None:
            volumes[str(monitoring)] = MONITORING_CONFIG
        return cls(inside, volumes)

    @classmethod
    def local_store(cls, model: str, root: Path) -> ModelMount:
        """A local store, mounted at the same path."""
        return cls(str(root / model), {str(root): str(root)})


def container_name(scope: str, model: str) -> str:
    return f"tierserve-{scope}-{model}"


def store_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The store settings and credentials a hot container gets from the orchestrator's own
    environment (it reads the same store), so they are written in one place."""
    return {name: environ[name] for name in STORE_ENV if environ.get(name)}


def read_only_binds(spec: InstanceSpec, mount: ModelMount,
                    config_file: Path | None = None) -> dict[str, str]:
    """host path -> path inside: the policy's extra volumes, then the model's own (and a
    labelled model's config file)."""
    binds = dict(spec.container.volumes)
    for host, inside in mount.volumes.items():
        binds.setdefault(host, inside)
    if config_file is not None:
        binds[str(config_file)] = CONFIG_INSIDE
    return binds


def server_command(spec: InstanceSpec, mount: ModelMount,
                   config_file: Path | None = None) -> list[str]:
    """The model server's command line inside the container (TF Serving's flags)."""
    settings = spec.container
    extra = list(settings.args)
    if config_file is not None:
        extra = [*config_file_args(CONFIG_INSIDE), *extra]
    official = settings.kind == "tensorflow-serving"
    # The official image's entrypoint already runs tensorflow_model_server with the
    # command's items as its flags: naming the program again would pass it as an argument.
    program = settings.command or ([] if official else ["tierserve", "model-server"])
    if MONITORING_CONFIG in mount.volumes.values():
        extra = [f"--monitoring_config_file={MONITORING_CONFIG}", *extra]
    intra, inter = granted_threads(settings)
    return [*program, *model_server_args(
        port=GRPC_PORT, rest_api_port=REST_PORT, model_name=spec.model,
        model_base_path=mount.base_path, host=None if official else TIERSERVE_HOST,
        intra_op_threads=intra, inter_op_threads=inter, extra=extra)]


def instance_labels(spec: InstanceSpec, scope: str) -> dict[str, str]:
    """The labels a restarted orchestrator adopts its instances by."""
    return {LABEL_OWNER: OWNER, LABEL_SCOPE: scope, LABEL_MODEL: spec.model,
            LABEL_HASH: spec.policy_hash, LABEL_SINCE: repr(spec.hot_since)}


def container_spec(spec: InstanceSpec, mount: ModelMount, scope: str,
                   network: str | None = None, config_file: Path | None = None,
                   inherited_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`config_file`: the host file of a labelled model's model config (mounted read-only);
    `inherited_env` (`store_env`) comes first: the policy's `env` overrides it."""
    settings = spec.container
    volumes = {host: {"bind": inside, "mode": "ro"}
               for host, inside in read_only_binds(spec, mount, config_file).items()}
    command = server_command(spec, mount, config_file)
    run: dict[str, Any] = {
        "image": settings.image, "command": command, "name": container_name(scope, spec.model),
        "labels": instance_labels(spec, scope),
        "environment": {"HOME": "/tmp", **(inherited_env or {}), **settings.env},
        "volumes": volumes,
        "tmpfs": {"/tmp": "rw,size=256m"},
        "ports": {f"{REST_PORT}/tcp": ("127.0.0.1", None), f"{GRPC_PORT}/tcp": ("127.0.0.1", None)},
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "privileged": False,
        # Weighs against the other containers only when the CPUs are contended.
        "cpu_shares": settings.cpu_shares,
    }
    if settings.memory:
        run["mem_limit"] = settings.memory
    if settings.cpus:
        run["nano_cpus"] = int(settings.cpus * 1e9)
    if network:
        run["network"] = network
    return run
