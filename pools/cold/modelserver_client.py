"""gRPC client of a TF-Serving-compatible model server: the calls the cold pool makes.

Every grpc call sits here and its errors become tierserve's at this edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from base.errors import NotFound, TierserveError, Unavailable, from_grpc_code
from pools.cold.protos import (
    file_system_storage_path_source_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_server_config_pb2,
    model_service_pb2_grpc,
)

_State = get_model_status_pb2.ModelVersionStatus.State

# A reload returns only when its new models are loaded: generous, loads can be slow.
RELOAD_TIMEOUT_S = 600.0
STATUS_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class VersionStatus:
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (or ABSENT: the server has no such)
    error_code: str = "OK"
    error_message: str = ""

    @property
    def settled(self) -> bool:
        """Done loading: available or failed (or never there)."""
        return self.state in ("AVAILABLE", "END", "ABSENT")

    @property
    def gone(self) -> bool:
        return self.state in ("END", "ABSENT")


ABSENT = VersionStatus("ABSENT")


ModelList = dict[str, tuple[str, list[int]]]  # name -> (base path, versions)


def build_config(models: ModelList) -> model_server_config_pb2.ModelServerConfig:
    """`{name: (base_path, versions)}` -> a ModelServerConfig loading exactly those versions."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()
    policy_cls = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig
    for name in sorted(models):
        base_path, versions = models[name]
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = base_path
        entry.model_platform = "tensorflow"
        entry.model_version_policy.CopyFrom(policy_cls.ServableVersionPolicy(
            specific=policy_cls.ServableVersionPolicy.Specific(versions=sorted(versions))))
    return config


class ModelServerClient:
    def __init__(self, grpc_address: str) -> None:
        self.address = grpc_address
        self._channel: grpc.aio.Channel | None = None
        self._service: model_service_pb2_grpc.ModelServiceStub | None = None
        self.status_calls = 0

    @property
    def _stub(self) -> model_service_pb2_grpc.ModelServiceStub:
        # Made on first use: a grpc.aio channel belongs to the event loop it was made in.
        if self._service is None:
            self._channel = grpc.aio.insecure_channel(self.address)
            self._service = model_service_pb2_grpc.ModelServiceStub(self._channel)
        return self._service

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._service = None

    async def reload(self, models: ModelList) -> None:
        """Replace the server's model list; raises the server's error if a model failed."""
        request = model_management_pb2.ReloadConfigRequest(config=build_config(models))
        try:
            response = await self._stub.HandleReloadConfigRequest(
                request, timeout=RELOAD_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _convert(exc, "reloading the model server's config") from exc
        if response.status.error_code != 0:
            code = grpc.StatusCode(_code_tuple(response.status.error_code))
            raise from_grpc_code(code, response.status.error_message)

    async def status(self, model: str, version: int) -> VersionStatus:
        self.status_calls += 1
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        request.model_spec.version.value = version
        try:
            response = await self._stub.GetModelStatus(request, timeout=STATUS_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            error = _convert(exc, f"status of {model}/{version}")
            if isinstance(error, NotFound):
                return ABSENT
            raise error from exc
        for item in response.model_version_status:
            if item.version == version:
                code = grpc.StatusCode(_code_tuple(item.status.error_code))
                return VersionStatus(_State.Name(item.state), code.name,
                                     item.status.error_message)
        return ABSENT

    async def wait_for(self, model: str, version: int, done: Callable[[VersionStatus], bool],
                       limit_s: float) -> VersionStatus:
        """Poll `model/version` until `done(status)` or `limit_s`; the last status seen.

        A server may report a state change a moment after its reload call returns.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        delay = 0.005
        while True:
            status = await self.status(model, version)
            if done(status) or loop.time() >= deadline:
                return status
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def _code_tuple(value: int) -> tuple[int, str]:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def _convert(exc: grpc.aio.AioRpcError, what: str) -> TierserveError:
    code = exc.code()
    message = f"{what}: {exc.details() or code.name}"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Unavailable(message)
    return from_grpc_code(code, message)
