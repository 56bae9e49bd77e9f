"""Pure parts: router config, metric labels (paths and experiments are tested elsewhere)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.config import RouterConfig
from router.metrics import OTHER, RouterMetrics, top_models


def test_config_env_then_overrides() -> None:
    env = {"TIERSERVE_ADMIN_TOKEN": "t", "TIERSERVE_PORT": "9000",
           "TIERSERVE_COLD_URL": "http://127.0.0.1:1/"}
    config = RouterConfig.load({"port": 9100, "host": None}, environ=env)
    assert (config.admin_token, config.port, config.host, config.cold_url) == (
        "t", 9100, "127.0.0.1", "http://127.0.0.1:1")
    assert config.max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(ValidationError):
        RouterConfig.load({"cold_url": "ftp://x"}, environ={})


def test_forward_headers_from_env_flag_and_refusals() -> None:
    assert RouterConfig.load(environ={}).forward_headers == (
        "X-Request-Id", "traceparent", "tracestate")
    env = {"TIERSERVE_FORWARD_HEADERS": "X-Request-Id, X-B3-TraceId"}
    assert RouterConfig.load(environ=env).forward_headers == ("X-Request-Id", "X-B3-TraceId")
    # The flag wins; '' and ',' (how `--workers` hands an empty list on) forward none.
    assert RouterConfig.load({"forward_headers": ""}, environ=env).forward_headers == ()
    assert RouterConfig.load(environ={"TIERSERVE_FORWARD_HEADERS": ","}).forward_headers == ()
    for bad in ("Content-Length", "host", "X Bad", "Transfer-Encoding"):
        with pytest.raises(ValidationError):
            RouterConfig.load({"forward_headers": bad}, environ={})


def test_metric_model_label_is_bounded() -> None:
    metrics = RouterMetrics(top_n=3)
    for i in range(50):
        for _ in range(50 - i):
            metrics.observe(f"m{i}", "cold", 200, 0.01)
    metrics.refresh_labels()
    assert top_models({"a": 3, "b": 5, "c": 1}, 2) == {"a", "b"}
    text = metrics.render().decode()
    labelled = {line.split('model="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("tierserve_router_requests_total{")}
    assert labelled == {"m0", "m1", "m2", OTHER}
    # Traffic moves: the new busiest model takes a label, the quiet one loses its series.
    for _ in range(10_000):
        metrics.observe("m40", "hot", 200, 0.01)
    metrics.refresh_labels()
    metrics.observe("m40", "hot", 200, 0.01)
    text = metrics.render().decode()
    labelled = {line.split('model="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("tierserve_router_requests_total{")}
    assert "m40" in labelled and len(labelled - {OTHER}) <= 3
