"""The policy's Docker Swarm block (`hot.swarm`), used when `runtime: swarm`.

Swarm itself accepts a constraint with an unknown key or an impossible value (`node.role==boss`)
and then leaves the task pending forever ("no suitable node"): the schema refuses those at
policy load instead, with the constraint syntax Swarm documents for `docker service create
--constraint`: `<key>==<value>` or `<key>!=<value>` on node.id, node.hostname, node.role
(manager|worker), node.platform.os, node.platform.arch, node.ip (an address or CIDR),
node.labels.<name>, engine.labels.<name>.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from base import durations

_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$")
_LABEL_KEY_RE = re.compile(r"^(node|engine)\.labels\.[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# Swarm's own value pattern (swarmkit manager/constraint), minus whitespace inside.
_VALUE_RE = re.compile(r"^[A-Za-z0-9:\-_.*()?+\[\]\\^$|/]+$")
_PLAIN_KEYS = ("node.id", "node.hostname", "node.role", "node.platform.os",
               "node.platform.arch", "node.ip")


def check_constraint(text: str) -> str:
    """`node.role==manager` -> itself, normalised (no spaces); ValueError saying what is wrong."""
    match = _CONSTRAINT_RE.match(text)
    if not match:
        raise ValueError(f"constraint {text!r}: expected <key>==<value> or <key>!=<value>, "
                         "e.g. node.role==manager or node.labels.zone!=b")
    key, op, value = match.groups()
    if key not in _PLAIN_KEYS and not _LABEL_KEY_RE.match(key):
        raise ValueError(f"constraint {text!r}: unknown key {key!r}; use one of "
                         f"{', '.join(_PLAIN_KEYS)}, node.labels.<name>, engine.labels.<name>")
    if not _VALUE_RE.match(value):
        raise ValueError(f"constraint {text!r}: value {value!r} has characters Swarm refuses")
    if key == "node.role" and value not in ("manager", "worker"):
        raise ValueError(f"constraint {text!r}: node.role is manager or worker")
    if key == "node.ip":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"constraint {text!r}: node.ip takes an address or a CIDR "
                             "such as 10.0.0.0/8") from None
    return f"{key}{op}{value}"


def _check_preference(text: str) -> str:
    if not _LABEL_KEY_RE.match(text.strip()):
        raise ValueError(f"preference {text!r}: Swarm spreads over a label, "
                         "node.labels.<name> or engine.labels.<name>")
    return text.strip()


def _duration(value: object) -> object:
    return durations.parse_duration(value) if isinstance(value, str) else value


def _size(value: object) -> object:
    from policies.schema import parse_size  # schema imports this module

    return parse_size(value)


Constraint = Annotated[str, AfterValidator(check_constraint)]
Preference = Annotated[str, AfterValidator(_check_preference)]
Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SwarmRestart(_Strict):
    """Swarm's restart policy for a hot service's task (Swarm restarts it, not the loop)."""

    condition: Literal["any", "on-failure", "none"] = Field(
        "any", description="any: also after a clean exit (a hot server should never exit)")
    delay: Seconds = Field(1.0, description="wait between a task's end and its replacement")
    max_attempts: int = Field(0, ge=0, description="0: no limit")
    window: Seconds = Field(0.0, description="how long a restart must run to count as a "
                            "success (0: Swarm's default)")


class SwarmUpdate(_Strict):
    """Swarm's update_config: how a changed image or setting rolls onto a running service."""

    order: Literal["start-first", "stop-first"] = Field(
        "start-first", description="start-first: the new task runs before the old one stops "
        "(no gap for routers reaching the service by name)")
    delay: Seconds = Field(0.0, description="between batches of tasks")
    monitor: Seconds = Field(5.0, description="how long a new task is watched for failure")
    failure_action: Literal["rollback", "pause", "continue"] = Field(
        "rollback", description="what Swarm does when the new task fails")


class SwarmSettings(_Strict):
    """Hot servers as Swarm services: reservations, placement, restart and update policy, and
    how routers reach them. Limits (memory, cpus) are hot.container's."""

    reach: Literal["published", "network"] = Field(
        "published", description="published: each service publishes its REST port in host mode "
        "on the node running its task, routers use <node address>:<port> (routers outside "
        "the swarm, or one node). network: routers attached to `network` reach "
        "http://<service name>:8501 (routers inside the swarm; survives a task moving)")
    network: str | None = Field(
        None, min_length=1, description="overlay network the services join (reach: network "
        "needs one: the routers' network)")
    published_host: str | None = Field(
        None, min_length=1, description="reach: published: host in the endpoint instead of "
        "the node's address as Swarm reports it (e.g. 127.0.0.1 on a one-node swarm)")
    reserve_memory: Annotated[int | None, BeforeValidator(_size)] = Field(
        None, gt=0, description="memory Swarm reserves on the node, e.g. 512m")
    reserve_cpus: float | None = Field(None, gt=0, description="CPUs Swarm reserves, e.g. 0.5")
    constraints: list[Constraint] = Field(
        default_factory=list, description="placement constraints, all must hold, e.g. "
        "node.role==worker, node.labels.tier==hot")
    preferences: list[Preference] = Field(
        default_factory=list, description="spread tasks over these labels, e.g. "
        "node.labels.zone")
    health_cmd: list[str] | None = Field(
        None, min_length=1, description="command run inside the task that exits 0 once the "
        "model is AVAILABLE (Docker's HEALTHCHECK CMD; `{model}` in it stands for the model's "
        "name); Swarm then counts a task as running "
        "only when healthy, so a start-first roll under reach: network never sends requests "
        "to a server still loading. The official image has no HTTP client: leave it unset")
    health_start: Seconds = Field(
        120.0, description="health_cmd: how long a task may take to become healthy")
    restart: SwarmRestart = Field(default_factory=SwarmRestart)
    update: SwarmUpdate = Field(default_factory=SwarmUpdate)

    @model_validator(mode="after")
    def _network_to_reach(self) -> SwarmSettings:
        if self.reach == "network" and not self.network:
            raise ValueError("reach: network needs `network`, the overlay network the "
                             "routers are attached to")
        return self
