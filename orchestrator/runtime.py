"""The small interface every runtime (Docker, local processes) offers the reconcile loop.

A runtime knows how to start, list and stop one model server per hot model. It owns no
decisions: the loop asks it what exists and tells it what to start or stop. Instances carry
their bookkeeping (model, when the model became hot, the container settings hash) with them,
as container labels or state files, so a restarted orchestrator adopts them instead of
starting duplicates.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from base.errors import TierserveError
from policies.schema import ContainerSettings
from policies.swarm import SwarmSettings
from pools.model_server.command import labelled_versions, model_config_text
from pools.model_server.threads import pool_sizes
from pools.store import open_store

log = logging.getLogger(__name__)

# Ports inside a container; TF Serving's defaults, so the official image works unchanged.
GRPC_PORT = 8500
REST_PORT = 8501


@dataclass(frozen=True)
class InstanceSpec:
    """What to run for one hot model."""

    model: str
    store: str  # the policy's store URI; the model's base path is <store>/<model>
    container: ContainerSettings
    policy_hash: str
    hot_since: float
    swarm: SwarmSettings = field(default_factory=SwarmSettings)  # the swarm runtime's only
    # The policy's version labels of the model; with any, the server keeps every labelled
    # version loaded (pools.model_server.command.labelled_versions).
    labels: Mapping[str, int] = field(default_factory=dict)


def granted_threads(settings: ContainerSettings) -> tuple[int | None, int | None]:
    """TensorFlow's (intra-op, inter-op) pools for the CPUs the policy grants a hot server;
    (None, None): the server sizes them to the CPUs it finds."""
    return pool_sizes(settings.cpus) if settings.cpus else (None, None)


@dataclass(frozen=True)
class Instance:
    """One running (or dead) model server as observed right now."""

    model: str
    id: str  # container id, or "pid:<pid>"
    endpoint: str | None  # REST base URL on 127.0.0.1, None when not reachable
    running: bool
    hot_since: float
    policy_hash: str
    detail: str = ""  # e.g. "exited (137)"
    grpc: str | None = None  # gRPC address, host:port on 127.0.0.1, None when not reachable


class Runtime(ABC):
    name: str = ""

    @abstractmethod
    def list_instances(self) -> list[Instance]:
        """Every instance this orchestrator owns (its scope), running or not."""

    def prepare(self, spec: InstanceSpec) -> bool:
        """Begin, in the background, any slow work `start(spec)` needs first (e.g. a model
        download), so no reconcile pass waits on it. True once `start` can run at once;
        raises base.errors.TierserveError when the preparation failed. Default: none."""
        return True

    @abstractmethod
    def start(self, spec: InstanceSpec) -> Instance:
        """Start a server for `spec.model` (returns at once; readiness is the loop's job).
        Raises base.errors.TierserveError when it cannot."""

    @abstractmethod
    def stop(self, instance: Instance, timeout: float = 10.0) -> None:
        """Stop and remove `instance`; a missing one is not an error."""

    def roll(self, instance: Instance, spec: InstanceSpec) -> Instance | None:
        """Replace a running instance's settings in place, the old one serving until the new
        one runs (Swarm's rolling update); None when this runtime cannot (the loop then stops
        the old instance and starts a new one). Raises base.errors.TierserveError when the
        runtime refuses the new settings: the old instance keeps running as it was."""
        return None

    def close(self) -> None:
        """Release clients; instances keep running (the next orchestrator adopts them)."""
        return None


def labelled_config(spec: InstanceSpec, base_path: str) -> str:
    """The `--model_config_file` text of a labelled hot model: its labelled versions and the
    latest, as the store holds them now (one listing; a store away: labels only as given,
    so the server waits for them as TF Serving would)."""
    try:
        in_store = open_store(spec.store).list_versions(spec.model)
    except TierserveError as exc:
        log.warning("%s: listing its versions for its labels failed: %s", spec.model, exc)
        in_store = sorted(set(spec.labels.values()))
    versions, labels = labelled_versions(spec.labels, in_store)
    dropped = sorted(set(spec.labels) - set(labels))
    if dropped:
        log.warning("%s: labels %s name versions the store lacks; served without them",
                    spec.model, ", ".join(dropped))
    return model_config_text(spec.model, base_path, versions, labels)
