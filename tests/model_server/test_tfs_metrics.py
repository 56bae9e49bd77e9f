"""TF Serving's metrics, written as its Prometheus exporter writes them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from pools.model_server import tfs_metrics
from pools.model_server.tfs_metrics import TfsMetrics


def test_buckets_are_tfs_exponential_ones() -> None:
    bounds = tfs_metrics.BOUNDS
    assert len(bounds) == 33 and bounds[:4] == [10.0, 18.0, 32.4, 58.32]
    assert [tfs_metrics._number(b) for b in bounds[4:6]] == ["104.976", "188.957"]
    assert tfs_metrics._number(bounds[-1]) == "1.47476e+09"  # 10 * 1.8**32


def test_text_matches_tf_servings_exporter() -> None:
    metrics = TfsMetrics()
    metrics.request("m", "Predict", "GRPC", "OK", 15.0)
    metrics.request("m", "Predict", "GRPC", "OK", 10.0)   # on a bound: the next bucket
    metrics.request("m", "Predict", "GRPC", "NOT_FOUND", 3.0)  # counted, no latency
    metrics.load("/models/m/1", True, 2_500_000.7)
    metrics.load('/models/"q"/1', False, 10.0)
    text = metrics.render()
    lines = text.splitlines()
    # Sorted by TF's metric name; counters keep their name (no _total), only TYPE lines.
    assert [line for line in lines if line.startswith("#")] == [
        "# TYPE :tensorflow:cc:saved_model:load_attempt_count counter",
        "# TYPE :tensorflow:cc:saved_model:load_latency counter",
        "# TYPE :tensorflow:serving:request_count counter",
        "# TYPE :tensorflow:serving:request_latency histogram",
        "# TYPE :tensorflow:serving:runtime_latency histogram"]
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2' in lines
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1' in lines
    assert ':tensorflow:cc:saved_model:load_latency{model_path="/models/m/1"} 2500000' in lines
    assert (':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/\\"q\\"/1",'
            'status="fail"} 1') in lines
    prefix = ':tensorflow:serving:request_latency_bucket{model_name="m",API="Predict",'
    assert f'{prefix}entrypoint="GRPC",le="10"}} 0' in lines
    assert f'{prefix}entrypoint="GRPC",le="18"}} 2' in lines
    assert f'{prefix}entrypoint="GRPC",le="+Inf"}} 2' in lines
    assert ':tensorflow:serving:request_latency_sum{model_name="m",API="Predict",' \
           'entrypoint="GRPC"} 25' in lines
    # And Prometheus reads it.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    latency = families[":tensorflow:serving:request_latency"]
    assert latency.type == "histogram" and len(latency.samples) == 34 + 2
