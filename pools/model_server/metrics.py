"""Prometheus metrics of one model server, served at /monitoring/prometheus/metrics.

Two families in one page: tierserve's own (`tierserve_model_server_*`) and TF Serving's
(`:tensorflow:serving:*`, `:tensorflow:cc:saved_model:*`, see tfs_metrics).
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from pools.model_server import tfs_metrics

# Per-model labels are bounded: past this many names, models share the label "__other__".
MAX_MODEL_LABELS = 1000
OTHER = "__other__"
# Names no configured model has (typos, probes) share one label.
UNKNOWN = "__unknown__"

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)
_LOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "tierserve_model_server_requests_total", "Inference and metadata requests.",
            ["model", "api", "method", "code"], registry=self.registry)
        self.latency = Histogram(
            "tierserve_model_server_request_latency_seconds", "Request latency.",
            ["model", "api", "method"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge(
            "tierserve_model_server_requests_in_flight", "Requests being answered now.",
            ["api"], registry=self.registry)
        self.loaded = Gauge(
            "tierserve_model_server_loaded_versions", "Model versions AVAILABLE now.",
            registry=self.registry)
        self.loaded_models = Gauge(
            "tierserve_model_server_loaded_models", "Models with an AVAILABLE version now.",
            registry=self.registry)
        self.load_seconds = Histogram(
            "tierserve_model_server_model_load_seconds", "Time to fetch and load one version.",
            buckets=_LOAD_BUCKETS, registry=self.registry)
        self.loads = Counter(
            "tierserve_model_server_model_loads_total", "Version loads by outcome.",
            ["outcome"], registry=self.registry)
        self.tfs = tfs_metrics.TfsMetrics()
        self._names: set[str] = set()
        self._paths: set[str] = set()
        self._lock = threading.Lock()

    def model_label(self, name: str) -> str:
        return self._bounded(self._names, name)

    def _bounded(self, seen: set[str], value: str) -> str:
        with self._lock:
            if value in seen:
                return value
            if len(seen) < MAX_MODEL_LABELS:
                seen.add(value)
                return value
        return OTHER

    def observe_request(self, model: str, api: str, method: str, code: str,
                        seconds: float) -> None:
        label = self.model_label(model)
        self.requests.labels(label, api, method, code).inc()
        self.latency.labels(label, api, method).observe(seconds)
        tfs_api = (tfs_metrics.GRPC_APIS if api == "grpc" else tfs_metrics.REST_APIS).get(method)
        if tfs_api is not None:
            self.tfs.request(label, tfs_api, api.upper(), code, seconds * 1e6)

    def observe_runtime(self, model: str, method: str, seconds: float) -> None:
        """Time spent running the model (TF Serving's runtime_latency)."""
        self.tfs.runtime(self.model_label(model), tfs_metrics.GRPC_APIS[method], seconds * 1e6)

    def observe_load(self, seconds: float, ok: bool, model_path: str = "") -> None:
        self.load_seconds.observe(seconds)
        self.loads.labels("ok" if ok else "error").inc()
        self.tfs.load(self._bounded(self._paths, model_path), ok, seconds * 1e6)

    def exposition(self) -> bytes:
        return generate_latest(self.registry) + self.tfs.render().encode()
