"""A model server as a real process on 127.0.0.1, with official gRPC stubs and httpx."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args


@dataclass
class ModelServer:
    proc: ServerProcess
    rest: str
    grpc_target: str
    _channel: Any = field(default=None, repr=False)

    @property
    def channel(self) -> Any:
        import grpc

        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_target)
        return self._channel

    def prediction_stub(self) -> Any:
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        return prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def model_stub(self) -> Any:
        from tensorflow_serving.apis import model_service_pb2_grpc

        return model_service_pb2_grpc.ModelServiceStub(self.channel)

    def status(self, name: str) -> httpx.Response:
        return httpx.get(f"{self.rest}/v1/models/{name}", timeout=10)

    def states(self, name: str) -> dict[int, str]:
        response = self.status(name)
        if response.status_code != 200:
            return {}
        return {int(s["version"]): s["state"] for s in response.json()["model_version_status"]}

    def predict(self, name: str, body: dict[str, Any], suffix: str = "") -> httpx.Response:
        return httpx.post(f"{self.rest}/v1/models/{name}{suffix}:predict", json=body, timeout=30)

    def stop(self) -> int | None:
        if self._channel is not None:
            self._channel.close()
        return self.proc.stop()


def start_model_server(log_dir: Path, *args: str, name: str = "ms",
                       env: dict[str, str] | None = None) -> ModelServer:
    rest_port, grpc_port = free_port(), free_port()
    cmd = tierserve_command("model-server", *model_server_args(
        port=grpc_port, rest_api_port=rest_port, extra=args))
    rest = f"http://127.0.0.1:{rest_port}"
    proc = ServerProcess(cmd, f"{rest}/monitoring/prometheus/metrics",
                         log_path=log_dir / f"{name}-{rest_port}.log", env=env)
    proc.wait_ready(timeout=120)
    return ModelServer(proc, rest, f"127.0.0.1:{grpc_port}")


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `check` until true; a bounded wait, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def config_text(models: dict[str, str], extra: dict[str, str] | None = None) -> str:
    """A text-format ModelServerConfig for {name: base_path}; `extra` adds fields per model."""
    entries = []
    for name, base in models.items():
        more = (extra or {}).get(name, "")
        entries.append(f'  config {{ name: "{name}" base_path: "{base}" '
                       f'model_platform: "tensorflow" {more} }}')
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"


def reload_request(models: dict[str, str]) -> Any:
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(config_text(models), model_server_config_pb2.ModelServerConfig())
    return model_management_pb2.ReloadConfigRequest(config=config)


def metric(server: ModelServer, name: str, labels: str = "") -> float:
    text = httpx.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=10).text
    prefix = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
