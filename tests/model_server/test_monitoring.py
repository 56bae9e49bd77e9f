"""--monitoring_config_file: TF Serving's MonitoringConfig text format."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import InvalidArgument
from pools.model_server import monitoring


@pytest.mark.parametrize("text, expected", [
    ('prometheus_config { enable: true, path: "/metrics" }', (True, "/metrics")),
    ("prometheus_config {\n  enable: true\n}  # path left to the default\n",
     (True, "/monitoring/prometheus/metrics")),
    ('prometheus_config { enable: false path: "/x" }', (False, "/x")),
    ("", (False, "/monitoring/prometheus/metrics")),
])
def test_parse(text: str, expected: tuple[bool, str]) -> None:
    settings = monitoring.parse_text(text)
    assert (settings.enabled, settings.path) == expected


@pytest.mark.parametrize("text", ["prometheus_config { enable: maybe }",
                                  "nope { }", 'prometheus_config { path: "metrics" }'])
def test_bad_configs_are_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument, match="monitoring config"):
        monitoring.parse_text(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="Cannot read the monitoring config file"):
        monitoring.read_file(tmp_path / "absent.config")
