"""A TF Serving command line, unchanged: unsupported flags named once, monitoring config,
tensor_content on request, security flags refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from base.procs import free_port, tierserve_command
from tests.model_server.helpers import ModelServer, metric, start_model_server
from tests.model_server.test_grpc import predict_request


@pytest.fixture(scope="module")
def tfs_flags_server(log_dir: Path, store_root: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    monitoring = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    monitoring.write_text('prometheus_config {\n  enable: true,\n  path: "/metrics"\n}\n')
    server = start_model_server(
        log_dir, "--model_name=m1", f"--model_base_path={store_root / 'm1'}",
        "--enable_batching", "--grpc_channel_arguments=grpc.max_connection_age_ms=2000",
        "--enable_model_warmup=false", f"--monitoring_config_file={monitoring}",
        "--enable_serialization_as_tensor_content", name="ms-flags")
    yield server
    server.stop()


def test_unsupported_flags_are_named_in_one_warning(tfs_flags_server: ModelServer) -> None:
    log_path = tfs_flags_server.proc.log_path
    assert log_path is not None
    warnings = [line for line in log_path.read_text().splitlines() if "not supported" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert "--enable_batching" in warnings[0] and "--grpc_channel_arguments" in warnings[0]
    assert "--enable_model_warmup" not in warnings[0]  # =false asks for nothing


def test_metrics_on_the_configured_path_with_tf_servings_names(
        tfs_flags_server: ModelServer) -> None:
    latency = ":tensorflow:serving:request_latency_count"
    labels = 'model_name="m1",API="Predict",entrypoint="GRPC"'
    before = metric(tfs_flags_server, latency, labels)
    tfs_flags_server.prediction_stub().Predict(predict_request("m1", [1.0]), 30)
    assert metric(tfs_flags_server, latency, labels) == before + 1
    page = httpx.get(f"{tfs_flags_server.rest}/metrics", timeout=10)
    assert page.status_code == 200
    assert ':tensorflow:serving:request_count{model_name="m1",status="OK"} ' in page.text


def test_tensor_content_on_request(tfs_flags_server: ModelServer) -> None:
    response = tfs_flags_server.prediction_stub().Predict(predict_request("m1", [1.0, 3.0]), 30)
    y = response.outputs["y"]
    assert len(y.float_val) == 0 and len(y.tensor_content) == 8


def run_and_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierserve_command("model-server", "--port", str(free_port()), *args),
                          capture_output=True, text=True, timeout=120)


def test_transport_security_flags_are_refused() -> None:
    done = run_and_exit("--ssl_config_file=/etc/ssl.config")
    assert done.returncode == 1 and "--ssl_config_file" in done.stderr


def test_bad_monitoring_config_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "monitoring.config"
    bad.write_text("prometheus_config { enable: perhaps }")
    done = run_and_exit(f"--monitoring_config_file={bad}")
    assert done.returncode == 1 and "Invalid monitoring config" in done.stderr


def test_version() -> None:
    done = run_and_exit("--version")
    assert done.returncode == 0 and done.stdout.startswith("TensorFlow ModelServer: tierserve")
    assert "TensorFlow Library: " in done.stdout
