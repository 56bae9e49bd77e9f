"""The policy file's schema: what an operator writes in the YAML, field by field.

Durations are seconds as a number or a string with units (`500ms`, `30s`, `5m`, `1h30m`);
sizes are bytes as a number or a string with a unit (`512m`, `2g`, `1.5GiB`). Unknown keys
are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from base import durations
from base.names import MODEL_NAME_RE, is_valid_model_name
from policies.experiments import ExperimentSpec, Known, check_targets
from policies.swarm import SwarmSettings

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_duration(value: object) -> object:
    """`30`, `30s`, `5m`, `1h30m`, `250ms` -> seconds (float); other values go on to pydantic."""
    if isinstance(value, str):
        return durations.parse_duration(value)
    return value


def parse_size(value: object) -> object:
    """`1024`, `512m`, `2g`, `1.5GiB` -> bytes (int, binary units); other values go on."""
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 512m, 2g, 1073741824)")
        power = _SIZE_POWERS[match.group(2).lower()]
        return int(float(match.group(1)) * 1024**power)
    return value


def _check_model_name(value: object) -> object:
    if isinstance(value, str) and not is_valid_model_name(value):
        raise ValueError(f"invalid model name {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
ModelName = Annotated[str, BeforeValidator(_check_model_name)]
# TF Serving's labels are free strings; ours go into URLs (/v1/models/m/labels/stable), so
# they follow the model-name rule.
LabelName = Annotated[str, Field(pattern=MODEL_NAME_RE.pattern, max_length=128)]
LabelVersion = Annotated[int, Field(gt=0, strict=True)]


# How finely request counts are stored (db.counts: BUCKET_S, RECENT_MINUTES; a test holds the
# two together), so operators know which windows are honoured.
WINDOW_RESOLUTION = ("counts are stored per 5 s for the last 5 minutes and per minute before: "
                     "a window up to 5m is honoured to within 5 s (10s means 10 s, not a "
                     "minute); the older part of a longer one is read per minute. Requests "
                     "count once the router flushes them (every 1 s by default)")

# The cold pool's default for its model servers' niceness (pools.cold.config).
COLD_NICE_DEFAULT = 5


RuntimeName = Literal["auto", "process", "docker", "swarm"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromoteRule(Strict):
    """A cold model becomes hot when its rate over `window` reaches `min_rate`."""

    min_rate: float = Field(gt=0, description="requests per second, averaged over `window`")
    window: PositiveDuration = Field(60.0, description=f"how far back the rate is measured; "
                                     f"{WINDOW_RESOLUTION}")


class DemoteRule(Strict):
    """A hot model goes back to the cold pool when its rate over `window` is at most `max_rate`."""

    max_rate: float = Field(ge=0, description="requests per second, averaged over `window`")
    window: PositiveDuration = Field(300.0, description="how far back; at least the promote "
                                     "window; same resolution as promote.window")


class Backoff(Strict):
    """Delay before restarting a dead hot instance: doubles per failure, capped."""

    initial: PositiveDuration = Field(2.0, description="delay after the first failure")
    max: PositiveDuration = Field(60.0, description="longest delay")


class ContainerSettings(Strict):
    """How one hot model's server is started (a container, or a local process)."""

    image: str = Field("tierserve/model-server:latest", min_length=1,
                       description="Docker image (ignored by the process runtime)")
    kind: Literal["tierserve", "tensorflow-serving"] = Field(
        "tierserve", description="our model server (reads s3:// itself) or the official "
        "tensorflow/serving image (the model is synced to a local volume first)")
    command: list[str] | None = Field(
        None, description="the program before the TF Serving flags; default "
        "`tierserve model-server` or `tensorflow_model_server` by kind")
    args: list[str] = Field(default_factory=list, description="extra flags appended")
    memory: Size | None = Field(None, description="memory limit, e.g. 1g")
    cpus: float | None = Field(
        None, gt=0, description="CPU limit in cores, e.g. 0.5 (Docker: nano_cpus); in both "
        "runtimes also the size of the server's TensorFlow thread pools. Default: no limit, "
        "the server sizes its pools to the CPUs it may run on")
    cpu_shares: int = Field(
        1024, ge=2, le=262144, description="Docker: CPU weight when the CPUs are contended "
        "(Docker's default 1024, as the router; the compose cold pool runs at 256, so hot "
        "servers win)")
    nice: int = Field(
        0, ge=0, le=19, description="process runtime: niceness steps below the orchestrator "
        "(0: the same CPU priority); keep it below cold.model_server_nice so hot servers win")
    env: dict[str, str] = Field(default_factory=dict, description="environment of the server")
    volumes: dict[str, str] = Field(
        default_factory=dict, description="extra read-only bind mounts, host path -> path inside")


class HotPool(Strict):
    """One dedicated, always-on server per popular model."""

    max_models: int = Field(ge=0, description="at most this many models hot at once")
    promote: PromoteRule
    demote: DemoteRule
    cooldown: Duration = Field(600.0, description="minimum time a model stays hot once promoted")
    pinned: list[ModelName] = Field(
        default_factory=list, description="always hot. Pins made through the router's admin "
        "API (POST /admin/models/{m}/pin) count too, after these while they fit in "
        "max_models; a policy reload never clears them")
    drain: Duration = Field(5.0, description="grace between route switch and stop on demotion")
    start_timeout: PositiveDuration = Field(
        120.0, description="how long a new instance may take to report AVAILABLE")
    restart_backoff: Backoff = Field(default_factory=Backoff)
    container: ContainerSettings = Field(default_factory=ContainerSettings)
    # -- Docker Swarm (runtime: swarm; policies/swarm.py) --
    swarm: SwarmSettings = Field(default_factory=SwarmSettings,
                                 description="runtime swarm: placement, reservations, restart "
                                 "and update policy, how routers reach a service")

    @model_validator(mode="after")
    def _consistent(self) -> HotPool:
        if self.demote.max_rate >= self.promote.min_rate:
            raise ValueError(f"demote.max_rate ({self.demote.max_rate}) must be below "
                             f"promote.min_rate ({self.promote.min_rate}): the gap is the "
                             "hysteresis that keeps a model near the threshold from flapping")
        if self.demote.window < self.promote.window:
            raise ValueError(f"demote.window ({self.demote.window}s) must be at least "
                             f"promote.window ({self.promote.window}s)")
        if len(set(self.pinned)) != len(self.pinned):
            raise ValueError("pinned lists a model twice")
        if len(self.pinned) > self.max_models:
            raise ValueError(f"{len(self.pinned)} pinned models do not fit in "
                             f"max_models={self.max_models}")
        return self


class ColdPool(Strict):
    """The shared caching server; the policy carries its bounds for `tierserve up`."""

    max_models: int | None = Field(None, gt=0, description="models kept loaded at once")
    max_bytes: Size | None = Field(None, description="disk cache bound, e.g. 20g")
    load_wait: Duration = Field(10.0, description="how long a request waits for a load "
                                "before 503 + Retry-After")
    eviction: str | None = Field(None, description="cache eviction policy (pools.eviction: "
                                 "lru, lfu, tinylfu); default: the pool's")
    model_server_nice: int | None = Field(
        None, ge=0, le=19, description="niceness steps below the pool for its own model "
        f"servers, so hot servers win the CPU; default: the pool's ({COLD_NICE_DEFAULT})")

    # Sharded cold tier (issue 11): kept apart from the bounds above.
    shards: int = Field(
        1, description="cold pools for `tierserve up` to start, each owning the models "
        "that rendezvous hashing of their names gives it (the bounds above are per shard); "
        "at least 1")

    @field_validator("shards")
    @classmethod
    def _at_least_one_shard(cls, shards: int) -> int:
        if shards < 1:
            raise ValueError(f"must be at least 1, not {shards}: the cold tier is one pool or "
                             "several shards, never none")
        return shards

    @field_validator("eviction")
    @classmethod
    def _known_eviction(cls, name: str | None) -> str | None:
        from pools.eviction import available

        if name is not None and name not in available():
            raise ValueError(f"unknown eviction policy {name!r}; choose one of {available()}")
        return name


class Policy(Strict):
    """The whole file."""

    store: str = Field(min_length=1, description="model store: s3://bucket/prefix or a path")
    interval: PositiveDuration = Field(5.0, description="reconcile loop period")
    # -- runtime (read when the orchestrator starts; its --runtime flag wins) --
    runtime: RuntimeName = Field(
        "auto", description="where hot servers run: process (local processes), docker "
        "(containers on one engine), swarm (Docker Swarm services, hot.swarm), auto (docker "
        "when an engine answers, else process). Read at orchestrator start")
    hot: HotPool
    cold: ColdPool = Field(default_factory=ColdPool)
    labels: dict[ModelName, dict[LabelName, LabelVersion]] = Field(
        default_factory=dict, description="version labels, TF Serving's version_labels: "
        "{model: {label: version}}, e.g. {recommender: {stable: 1, canary: 2}}; served at "
        "/v1/models/{m}/labels/{l} by the cold pool (which re-reads this file) and by hot "
        "servers (each keeps every labelled version loaded); experiments may name them")
    experiments: list[ExperimentSpec] = Field(
        default_factory=list, description="A/B experiments, the router admin API's shape; "
        "a label an arm names must be in `labels` (versions are checked by the router's "
        "admin API against the store, not here)")

    @model_validator(mode="after")
    def _unique_experiments(self) -> Policy:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("two experiments share a name")
        return self

    @model_validator(mode="after")
    def _experiment_labels(self) -> Policy:
        # Only labels are known here; versions need the store (the router checks them).
        for i, spec in enumerate(self.experiments):
            known = {m: Known(labels=labels) for m, labels in self.labels.items()}
            for target in (*spec.variants, *([spec.shadow] if spec.shadow else [])):
                known.setdefault(target.model, Known(labels={}))
            errors, _ = check_targets(spec, known)
            if errors:
                loc, message = errors[0]
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
                raise ValueError(f"experiments[{i}]{where}: {message}")
        return self

    @model_validator(mode="after")
    def _hot_before_cold(self) -> Policy:
        cold = self.cold.model_server_nice
        cold = COLD_NICE_DEFAULT if cold is None else cold
        if self.hot.container.nice >= cold:
            raise ValueError(f"hot.container.nice ({self.hot.container.nice}) must be below "
                             f"the cold pool's model servers' niceness ({cold}): cold loads "
                             "must not take the CPU from hot servers")
        return self

    def container_hash(self, model: str | None = None) -> str:
        """Short hash of everything that shapes a hot instance (of `model`: its labels too);
        a change means replace it. A model without labels, under default Swarm settings,
        hashes as it always did."""
        shape: dict[str, object] = {"store": self.store,
                                    "container": self.hot.container.model_dump(mode="json")}
        if model is not None and self.labels.get(model):
            shape["labels"] = dict(sorted(self.labels[model].items()))
        if self.hot.swarm != SwarmSettings():  # Swarm rolls its services on a change
            shape["swarm"] = self.hot.swarm.model_dump(mode="json")
        blob = json.dumps(shape, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
