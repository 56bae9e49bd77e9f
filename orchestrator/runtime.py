"""The small interface every runtime (Docker, local processes) offers the reconcile loop.

A runtime knows how to start, list and stop one model server per hot model. It owns no
decisions: the loop asks it what exists and tells it what to start or stop. Instances carry
their bookkeeping (model, when the model became hot, the container settings hash) with them,
as container labels or state files, so a restarted orchestrator adopts them instead of
starting duplicates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from policies.schema import ContainerSettings
from pools.model_server.threads import pool_sizes

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

    def close(self) -> None:
        """Release clients; instances keep running (the next orchestrator adopts them)."""
        return None
