"""Prometheus metrics for the router itself, with the `model` label bounded.

Thousands of models would make thousands of series per metric, so only the top
N models by (decaying) recent traffic keep their own label; the rest share
"other". A model that falls out of the top N has its series removed. Requests answered
404 share the label "_not_found" and are never ranked: a bogus name takes no slot.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

OTHER = "other"
# Requests answered 404 (a model name no backend has): one label for all, never per name.
# Not a valid model name, so no model can take it.
NOT_FOUND = "_not_found"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def top_models(traffic: dict[str, float], n: int) -> set[str]:
    """The n busiest models (pure; ties broken by name for stability)."""
    ranked = sorted(traffic.items(), key=lambda kv: (-kv[1], kv[0]))
    return {model for model, _ in ranked[:n]}


class RouterMetrics:
    def __init__(self, top_n: int) -> None:
        self.top_n = top_n
        self.registry = CollectorRegistry()
        self.requests = Counter("tierserve_router_requests", "Requests answered",
                                ["model", "pool", "code"], registry=self.registry)
        self.latency = Histogram("tierserve_router_request_duration_seconds",
                                 "Time from request to answer", ["model", "pool"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.fallbacks = Counter("tierserve_router_hot_fallbacks",
                                 "Hot endpoints unreachable, retried on the cold pool",
                                 registry=self.registry)
        self.shadow = Counter("tierserve_router_shadow_requests", "Mirrored requests sent",
                              ["outcome"], registry=self.registry)
        self.in_flight = Gauge("tierserve_router_in_flight",
                               "Inference requests being answered (the bound: max_in_flight)",
                               registry=self.registry)
        self.shed = Counter("tierserve_router_shed_requests",
                            "Requests answered 503 at once because max_in_flight were in flight",
                            registry=self.registry)
        self.routing_version = Gauge("tierserve_router_routing_version",
                                     "Routing version in memory", registry=self.registry)
        self.pending_counts = Gauge("tierserve_router_pending_counts",
                                    "Requests counted but not yet flushed to the db",
                                    registry=self.registry)
        self._traffic: dict[str, float] = {}
        self._labelled: set[str] = set()
        self._series: dict[str, set[tuple[str, ...]]] = {}

    def label(self, model: str) -> str:
        return model if model in self._labelled else OTHER

    def observe(self, model: str, pool: str, code: int, latency_s: float) -> None:
        self._traffic[model] = self._traffic.get(model, 0.0) + 1.0
        name = self.label(model)
        if name == OTHER and len(self._labelled) < self.top_n:
            # Room left: a new model gets its label at once.
            self._labelled.add(model)
            name = model
        self.requests.labels(name, pool, str(code)).inc()
        self.latency.labels(name, pool).observe(latency_s)
        if name != OTHER:
            self._series.setdefault(name, set()).add((pool, str(code)))

    def observe_not_found(self, pool: str, latency_s: float) -> None:
        self.requests.labels(NOT_FOUND, pool, "404").inc()
        self.latency.labels(NOT_FOUND, pool).observe(latency_s)

    def refresh_labels(self, decay: float = 0.5) -> None:
        """Recompute the top N and decay traffic (call every few seconds)."""
        wanted = top_models(self._traffic, self.top_n)
        for model in self._labelled - wanted:
            for pool, code in self._series.pop(model, set()):
                self.requests.remove(model, pool, code)
                try:
                    self.latency.remove(model, pool)
                except KeyError:
                    pass
        self._labelled = wanted
        self._traffic = {m: c * decay for m, c in self._traffic.items() if c * decay >= 0.01}

    def render(self) -> bytes:
        return generate_latest(self.registry)
