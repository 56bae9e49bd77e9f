"""A one-node Docker Swarm for a test run, left as it was found.

`join()` makes the engine a swarm manager advertising 127.0.0.1 (`docker swarm init
--advertise-addr 127.0.0.1`) when it is in no swarm, and says so; `leave()` then takes it out
again (`docker swarm leave --force`). An engine already in a swarm is used as it is and never
left. Services of the tests publish in host mode on the node: the routing mesh (ingress) does
not answer on 127.0.0.1 in every sandbox, and tests send traffic to 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Any

import docker
from docker.errors import APIError, DockerException

LOOPBACK = "127.0.0.1"


def _state(client: Any) -> dict[str, Any]:
    return (client.info() or {}).get("Swarm") or {}


def join() -> tuple[str | None, bool]:
    """(None, True): this call made a one-node swarm; (None, False): the engine already was a
    swarm manager; (reason, False): no usable swarm."""
    try:
        client = docker.from_env(timeout=30)
    except DockerException as exc:
        return f"no Docker engine: {exc}", False
    try:
        state = _state(client)
        node_state = state.get("LocalNodeState")
        if node_state == "active":
            if not state.get("ControlAvailable"):
                return "this engine is a swarm worker: services need a manager", False
            return None, False
        if node_state != "inactive":
            return f"swarm state {node_state!r}: left alone", False
        try:
            client.swarm.init(advertise_addr=LOOPBACK, listen_addr=f"{LOOPBACK}:2377")
        except APIError as exc:
            return f"docker swarm init failed: {exc.explanation}", False
        return None, True
    finally:
        client.close()


def leave() -> None:
    """Take the engine out of the swarm this run made (removes what is left of its services)."""
    client = docker.from_env(timeout=60)
    try:
        client.swarm.leave(force=True)
    finally:
        client.close()
