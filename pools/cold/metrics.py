"""Prometheus metrics of the cold pool. No per-model labels: a thousand models would
mean a thousand series per metric; per-model figures are in the admin listing."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pools.cold.cache import Cache, Tier

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class PoolMetrics:
    def __init__(self, cache: Callable[[], Cache]) -> None:
        r = self.registry = CollectorRegistry()
        self.hits = Counter("tierserve_pool_hits", "Requests whose model was loaded", registry=r)
        self.misses = Counter("tierserve_pool_misses", "Requests whose model was not loaded",
                              registry=r)
        self.downloads = Counter("tierserve_pool_downloads", "Model versions downloaded",
                                 registry=r)
        self.loads = Counter("tierserve_pool_loads", "Model versions loaded", registry=r)
        self.download_seconds = Histogram("tierserve_pool_download_seconds",
                                          "Download time per model version", buckets=_SECONDS,
                                          registry=r)
        self.load_seconds = Histogram("tierserve_pool_load_seconds",
                                      "Load time per model version", buckets=_SECONDS, registry=r)
        self.evictions = Counter("tierserve_pool_evictions", "Evictions by tier", ["tier"],
                                 registry=r)
        self.failures = Counter("tierserve_pool_failures",
                                "Failed downloads and loads (and answers from remembered ones)",
                                ["stage"], registry=r)
        self.load_waits = Counter("tierserve_pool_load_wait_timeouts",
                                  "Requests answered 503 after waiting load_wait", registry=r)
        # Saturation: rate(busy seconds) is load-seconds per second, at most max_parallel_loads.
        self.load_busy_seconds = Counter(
            "tierserve_pool_load_busy_seconds",
            "Seconds spent in downloads+loads, summed over the loads running side by side",
            registry=r)
        self.shed = Counter("tierserve_pool_shed",
                            "Misses answered 503 at once: their wait could not end in time "
                            "(too_slow) or a queue was full (queue, model_queue)", ["reason"],
                            registry=r)
        self.miss_phases = Histogram("tierserve_pool_miss_phase_seconds",
                                     "Where a miss's time goes, by phase", ["phase"],
                                     buckets=_SECONDS, registry=r)
        for tier in Tier:
            self.evictions.labels(tier.value)
        for stage in ("download", "load", "remembered"):
            self.failures.labels(stage)
        for reason in ("too_slow", "queue", "model_queue"):
            self.shed.labels(reason)

        def gauge(name: str, doc: str, fn: Callable[[Cache], float]) -> None:
            Gauge(name, doc, registry=r).set_function(lambda: fn(cache()))

        gauge("tierserve_pool_loaded_models", "Model versions in memory (loading included)",
              lambda c: c.usage(Tier.MEMORY).count)
        gauge("tierserve_pool_loaded_bytes", "Bytes (on disk) of the model versions in memory",
              lambda c: c.usage(Tier.MEMORY).bytes)
        gauge("tierserve_pool_disk_models", "Model versions in the disk cache",
              lambda c: c.usage(Tier.DISK).count)
        gauge("tierserve_pool_disk_bytes", "Bytes in the disk cache",
              lambda c: c.usage(Tier.DISK).bytes)
        gauge("tierserve_pool_in_flight", "Requests being served or waiting for a load",
              lambda c: sum(e.in_flight for e in c.entries.values()))

    def watch(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """A gauge read from the pool when scraped."""
        Gauge(name, doc, registry=self.registry).set_function(fn)
