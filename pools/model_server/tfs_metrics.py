"""TF Serving's own metrics, named and written as its Prometheus exporter writes them.

So dashboards and alerts built on `tensorflow_model_server` carry over: same names
(`/tensorflow/serving/request_count` -> `:tensorflow:serving:request_count`), labels,
units (latencies in microseconds), buckets (TF's exponential 10 * 1.8^i, 33 of them)
and text (`# TYPE` lines only, bucket bounds in six significant digits, counters
without `_total`). prometheus_client would rename counters and reformat bounds, so
the few series are kept here and rendered by hand.
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass

# Where each of TF Serving's APIs records (its prediction_service_impl.cc and
# http_server.cc): gRPC Predict/Classify/Regress, and every REST call with the verb as
# the API ("" for status and metadata). gRPC metadata and status calls are not counted.
GRPC_APIS = {"predict": "Predict", "classify": "Classify", "regress": "Regress",
             "multi_inference": "MultiInference"}
REST_APIS = {"predict": "predict", "classify": "classify", "regress": "regress",
             "status": "", "metadata": ""}
RUNTIME = "TF1"  # TF Serving's label for its (non-TFRT) TensorFlow runtime


@dataclass(frozen=True)
class Metric:
    name: str  # TF's monitoring name, e.g. /tensorflow/serving/request_count
    kind: str  # counter | histogram
    labels: tuple[str, ...]

    @property
    def prometheus_name(self) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", ":", self.name)


REQUEST_COUNT = Metric("/tensorflow/serving/request_count", "counter", ("model_name", "status"))
REQUEST_LATENCY = Metric("/tensorflow/serving/request_latency", "histogram",
                         ("model_name", "API", "entrypoint"))
RUNTIME_LATENCY = Metric("/tensorflow/serving/runtime_latency", "histogram",
                         ("model_name", "API", "runtime"))
LOAD_ATTEMPTS = Metric("/tensorflow/cc/saved_model/load_attempt_count", "counter",
                       ("model_path", "status"))
LOAD_LATENCY = Metric("/tensorflow/cc/saved_model/load_latency", "counter", ("model_path",))
ALL = (REQUEST_COUNT, REQUEST_LATENCY, RUNTIME_LATENCY, LOAD_ATTEMPTS, LOAD_LATENCY)


def exponential_bounds(scale: float = 10.0, growth: float = 1.8, count: int = 33) -> list[float]:
    """TF's Buckets::Exponential, computed the same way (repeated products)."""
    bounds, bound = [], scale
    for _ in range(count):
        bounds.append(bound)
        bound *= growth
    return bounds


BOUNDS = exponential_bounds()


class _Histogram:
    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BOUNDS) + 1)  # the last one has no upper bound
        self.total = 0.0

    def add(self, value: float) -> None:
        # TF's histogram counts a value in the first bucket whose bound is above it.
        self.buckets[bisect.bisect_right(BOUNDS, value)] += 1
        self.total += value


class TfsMetrics:
    """Thread-safe store of TF Serving's series; `render` gives its exporter's text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[Metric, dict[tuple[str, ...], int]] = {
            m: {} for m in ALL if m.kind == "counter"}
        self._histograms: dict[Metric, dict[tuple[str, ...], _Histogram]] = {
            m: {} for m in ALL if m.kind == "histogram"}

    def add(self, metric: Metric, labels: tuple[str, ...], value: int = 1) -> None:
        with self._lock:
            cells = self._counters[metric]
            cells[labels] = cells.get(labels, 0) + value

    def observe(self, metric: Metric, labels: tuple[str, ...], value: float) -> None:
        with self._lock:
            cell = self._histograms[metric].get(labels)
            if cell is None:
                cell = self._histograms[metric][labels] = _Histogram()
            cell.add(value)

    def request(self, model: str, api: str, entrypoint: str, code: str,
                micros: float) -> None:
        """One finished request; as TF Serving, only successful ones feed the latency."""
        self.add(REQUEST_COUNT, (model, code))
        if code == "OK":
            self.observe(REQUEST_LATENCY, (model, api, entrypoint), micros)

    def runtime(self, model: str, api: str, micros: float) -> None:
        """Time inside TensorFlow for one Predict, Classify or Regress."""
        self.observe(RUNTIME_LATENCY, (model, api, RUNTIME), micros)

    def load(self, model_path: str, ok: bool, micros: float) -> None:
        self.add(LOAD_ATTEMPTS, (model_path, "success" if ok else "fail"))
        if ok:
            self.add(LOAD_LATENCY, (model_path,), int(micros))

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for metric in sorted(ALL, key=lambda m: m.name):  # TF's registry is a sorted map
                if metric.kind == "counter":
                    _counter_lines(metric, self._counters[metric], lines)
                else:
                    _histogram_lines(metric, self._histograms[metric], lines)
        return "\n".join(lines) + "\n"


def _label_text(metric: Metric, values: tuple[str, ...]) -> str:
    return ",".join(f'{re.sub(r"[^a-zA-Z0-9]", "_", name)}="{_escape(value)}"'
                    for name, value in zip(metric.labels, values, strict=True))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    """absl::StrCat of a double: six significant digits."""
    return f"{value:.6g}"


def _counter_lines(metric: Metric, cells: dict[tuple[str, ...], int],
                   lines: list[str]) -> None:
    name = metric.prometheus_name
    lines.append(f"# TYPE {name} counter")
    for labels, value in cells.items():
        lines.append(f"{name}{{{_label_text(metric, labels)}}} {value}")


def _histogram_lines(metric: Metric, cells: dict[tuple[str, ...], _Histogram],
                     lines: list[str]) -> None:
    name = metric.prometheus_name
    lines.append(f"# TYPE {name} histogram")
    for labels, cell in cells.items():
        text = _label_text(metric, labels)
        prefix = f"{name}_bucket{{{text}{',' if text else ''}"
        cumulative = 0
        for i, count in enumerate(cell.buckets):
            cumulative += count
            bound = _number(BOUNDS[i]) if i < len(BOUNDS) else "+Inf"
            lines.append(f'{prefix}le="{bound}"}} {cumulative}')
        lines.append(f"{name}_sum{{{text}}} {_number(cell.total)}")
        lines.append(f"{name}_count{{{text}}} {cumulative}")
