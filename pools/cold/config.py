"""The cold pool's settings: flags override `TIERSERVE_POOL_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from base.asgi_body import DEFAULT_MAX_BODY_BYTES


def default_policy() -> str:
    """The eviction policy `pools.eviction` recommends, else LRU."""
    try:
        from pools.eviction import DEFAULT_POLICY  # type: ignore[attr-defined]
    except ImportError:
        return "lru"
    return str(DEFAULT_POLICY)


class PoolConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERSERVE_POOL_", extra="forbid")

    store_uri: str
    cache_dir: Path

    # Bounds; None means unbounded. Each is enforced before a load or download starts.
    memory_models: int | None = Field(default=20, ge=1)
    memory_bytes: int | None = Field(default=None, ge=1)
    disk_models: int | None = Field(default=200, ge=1)
    disk_bytes: int | None = Field(default=None, ge=1)

    load_wait_s: float = Field(default=30.0, gt=0)
    failure_ttl_s: float = Field(default=60.0, ge=0)
    store_poll_s: float = Field(default=30.0, gt=0)
    max_parallel_loads: int = Field(default=4, ge=1)
    # Misses waiting for loads, bounded: past a bound, or when the queue and the measured
    # load time say load_wait cannot be met, a miss gets 503 + Retry-After at once.
    max_queued_per_model: int = Field(default=256, ge=1)
    max_queued: int = Field(default=1024, ge=1)

    # The pool's own model servers (unless attached): several, so that predictions in one
    # do not wait behind a load in another; started with a lower CPU priority (nice) than
    # hot servers, and TensorFlow's thread pools sized to the CPUs each really gets.
    model_servers: int = Field(default=2, ge=1, le=16)
    model_server_nice: int = Field(default=5, ge=0, le=19)
    model_server_tf_threads: int | None = Field(default=None, ge=1)
    # Seconds between the model servers' collections of unloaded models' memory (None:
    # their default, 10 s). Each stalls the server's predictions; every 2 s measured worse.
    model_server_gc_interval_s: float | None = Field(default=None, gt=0)
    eviction_policy: str = Field(default_factory=default_policy)

    # Attach to a running TF-Serving-compatible server instead of starting one.
    model_server_grpc: str | None = None  # host:port
    model_server_rest: str | None = None  # http://host:port

    # Bodies past this are answered 413 unread (the router's default too).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    # `labels: {model: {label: version}}` at the top of this YAML/JSON file (the policy file
    # will do), re-read when it changes; None: no labels, every label is unknown.
    labels_file: Path | None = None

    host: str = "127.0.0.1"
    port: int = 8600
    grpc_port: int = 8601  # TF Serving's gRPC API (pools.cold.grpc_front)

    @field_validator("cache_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # The model server is told base paths under it, and TF Serving requires absolute ones.
        return path.resolve()

    @model_validator(mode="after")
    def _check(self) -> PoolConfig:
        # A loaded model keeps its files on disk, so the disk tier must hold the memory tier.
        if self.disk_models is not None and (self.memory_models is None
                                             or self.memory_models > self.disk_models):
            raise ValueError("disk_models must be at least memory_models")
        if self.disk_bytes is not None and (self.memory_bytes is None
                                            or self.memory_bytes > self.disk_bytes):
            raise ValueError("disk_bytes must be at least memory_bytes")
        if (self.model_server_grpc is None) != (self.model_server_rest is None):
            raise ValueError("attach with both model_server_grpc and model_server_rest")
        return self

    @property
    def attached(self) -> bool:
        return self.model_server_grpc is not None
