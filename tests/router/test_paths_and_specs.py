"""Pure parts: TF Serving path grammar, config, metric labels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from base.errors import InvalidArgument
from router import paths
from router.config import RouterConfig
from router.metrics import OTHER, RouterMetrics, top_models


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/v1/models/m", paths.ModelPath("m")),
    ("GET", "/v1/models/m/versions/3", paths.ModelPath("m", version=3)),
    ("GET", "/v1/models/m/labels/stable/metadata",
     paths.ModelPath("m", label="stable", kind="metadata")),
    ("POST", "/v1/models/m:predict", paths.ModelPath("m", kind="predict")),
    ("POST", "/v1/models/m/versions/00012:classify",
     paths.ModelPath("m", version=12, kind="classify")),
    ("POST", "/v1/models/a.b-c_d/labels/canary:regress",
     paths.ModelPath("a.b-c_d", label="canary", kind="regress")),
])
def test_parse_valid(method: str, path: str, expected: paths.ModelPath) -> None:
    assert paths.parse(method, path) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/models/m:explode"),
    ("POST", "/v1/models/m"),
    ("GET", "/v1/models/m:predict"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/m/versions/0"),
    ("GET", "/v1/models/m/versions/x"),
    ("GET", "/v1/models/m/versions/1/labels/a"),
    ("GET", "/v1/models/-bad"),
    ("GET", "/v1/models/m/other"),
    ("GET", "/v2/models/m"),
])
def test_parse_malformed(method: str, path: str) -> None:
    with pytest.raises(InvalidArgument, match="Malformed request"):
        paths.parse(method, path)


def test_render_and_retarget() -> None:
    call = paths.parse("POST", "/v1/models/pub/versions/2:predict")
    assert call.render() == "/v1/models/pub/versions/2:predict"
    assert call.with_target("real", None, None).render() == "/v1/models/real/versions/2:predict"
    assert (call.with_target("real", None, "canary").render()
            == "/v1/models/real/labels/canary:predict")
    meta = paths.parse("GET", "/v1/models/pub/metadata")
    assert meta.with_target("x", 4, None).render() == "/v1/models/x/versions/4/metadata"


def test_config_env_then_overrides() -> None:
    env = {"TIERSERVE_ADMIN_TOKEN": "t", "TIERSERVE_PORT": "9000",
           "TIERSERVE_COLD_URL": "http://127.0.0.1:1/"}
    config = RouterConfig.load({"port": 9100, "host": None}, environ=env)
    assert (config.admin_token, config.port, config.host, config.cold_url) == (
        "t", 9100, "127.0.0.1", "http://127.0.0.1:1")
    assert config.max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(ValidationError):
        RouterConfig.load({"cold_url": "ftp://x"}, environ={})


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
