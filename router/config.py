"""Router settings: defaults < environment (TIERSERVE_*) < command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, field_validator

from base.durations import parse_duration
from base.forwarding import TRACE_HEADERS, header_names

ENV_PREFIX = "TIERSERVE_"
MiB = 1024 * 1024


class RouterConfig(BaseModel):
    db_url: str = Field("sqlite:///var/tierserve.db", description="SQLAlchemy URL of the db")
    cold_url: str = Field("http://127.0.0.1:8600", description="base URL of the cold pool")
    cold_grpc: str = Field("127.0.0.1:8601", description="the cold pool's gRPC address")
    host: str = "127.0.0.1"
    # TF Serving's ports: REST on 8501, gRPC on 8500.
    port: int = Field(8501, ge=0, le=65535, description="REST port")
    grpc_port: int = Field(8500, ge=0, le=65535, description="gRPC port")
    # Several processes on one gRPC port (`--workers`): set by the CLI only then, so that a
    # second router started by mistake on a port fails instead of taking half its traffic.
    grpc_reuse_port: bool = False
    # Bearer token for /admin. Unset: /admin answers loopback clients only.
    admin_token: str | None = None
    sticky_header: str = Field("X-User-Id", description="header (gRPC: metadata key) whose "
                                                        "value pins an A/B variant")
    flush_interval: float = Field(1.0, gt=0, description="seconds between count flushes")
    poll_interval: float = Field(1.0, gt=0, description="seconds between routing version polls")
    shard_stale_after: float = Field(
        6.0, gt=0, description="seconds after its last heartbeat a cold shard is skipped")
    max_body_bytes: int = Field(10 * MiB, gt=0)
    connect_timeout: float = Field(1.0, gt=0, description="connecting to a backend, seconds")
    request_timeout: float = Field(60.0, gt=0, description="a backend's answer, seconds")
    max_connections: int = Field(512, gt=0, description="connections per backend")
    max_in_flight: int = Field(
        256, gt=0, description="requests answered at once; past it 503 with Retry-After")
    max_shadow_inflight: int = Field(256, ge=0, description="mirrored requests in flight")
    metrics_top_models: int = Field(20, ge=0, description="models with their own metric label")
    forward_headers: tuple[str, ...] = Field(
        TRACE_HEADERS, description="request headers passed to the backend besides Content-Type, "
                                   "Accept and Content-Encoding (comma-separated in env/flag)")

    @field_validator("cold_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("flush_interval", "poll_interval", "connect_timeout", "request_timeout",
                     mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        # TIERSERVE_REQUEST_TIMEOUT=1m as well as =60, as on the command line.
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("forward_headers", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        header_names(value)  # ValueError names the bad one
        return value

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> RouterConfig:
        """Defaults, then TIERSERVE_<FIELD> variables, then non-None `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.model_validate(values)
