"""The orchestrator's admin face: Prometheus metrics and a small HTTP server (/status, /metrics).

`/status` shows the running policy (digest, load time) and the last rejected edit with each
error's YAML path, the hot instances and what is starting, draining or backing off.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

# Every state of a hot instance, as /status names them; each is exported, zeros included,
# so a dashboard's series do not vanish when no instance is in a state.
INSTANCE_STATES: tuple[str, ...] = ("starting", "serving", "draining", "dead")


class Metrics:
    """One registry per orchestrator (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.policy_valid = Gauge(
            "tierserve_policy_valid", "1 when the policy file on disk is the one in force, "
            "0 when the last edit was rejected", registry=self.registry)
        self.policy_errors = Counter(
            "tierserve_policy_reload_errors", "rejected policy edits", registry=self.registry)
        self.policy_loaded_at = Gauge(
            "tierserve_policy_loaded_timestamp_seconds", "when the policy in force was loaded",
            registry=self.registry)
        self.actions = Counter(
            "tierserve_orchestrator_actions", "actions carried out",
            ["action", "outcome"], registry=self.registry)
        self.hot_models = Gauge(
            "tierserve_hot_models", "models routed to a hot instance", registry=self.registry)
        self.instances = Gauge(
            "tierserve_hot_instances", "hot instances by state", ["state"],
            registry=self.registry)
        self.passes = Counter(
            "tierserve_orchestrator_passes", "reconcile passes", ["result"],
            registry=self.registry)

    def set_instance_states(self, states: Iterable[str]) -> None:
        """`tierserve_hot_instances` from the states of every instance, one string each."""
        counts = Tally(states)
        for state in (*INSTANCE_STATES, *(set(counts) - set(INSTANCE_STATES))):
            self.instances.labels(state).set(counts.get(state, 0))


class StatusServer:
    """uvicorn in a daemon thread, serving /status (JSON) and /metrics on 127.0.0.1."""

    def __init__(self, status: Callable[[], dict[str, Any]], metrics: Metrics,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn
        from fastapi import FastAPI, Response

        from base.http_errors import install_error_handlers

        def scrape() -> Response:
            # Instance states as /status sees them now (serving included), not as of the
            # last pass; a sync route, so listing the instances runs off the event loop.
            listed = status().get("instances", [])
            metrics.set_instance_states(i["state"] for i in listed if "state" in i)
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

        app = FastAPI(title="tierserve orchestrator")
        install_error_handlers(app)
        app.get("/status")(lambda: status())
        app.get("/healthz")(lambda: {"ok": True})
        app.get("/metrics")(scrape)
        app.get("/metrics/", include_in_schema=False)(scrape)  # the address it had when mounted
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                     lifespan="off")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="orchestrator-status",
                                       daemon=True)

    def start(self) -> StatusServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
