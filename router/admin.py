"""The admin API under /admin: routing table, pins, stats, events, experiments.

Experiments: an arm naming a model the store lacks, or a version or label the model does
not have, is refused (422 naming the field, e.g. `variants.1.label`); what exists is asked
of the cold pool (router.targets). When it cannot tell, the experiment is accepted and the
answer's `unchecked` lists the fields taken on trust.

Pins: a model is kept hot while the policy (`hot.pinned`) or the admin API pins it. The
admin API adds and removes only its own pin (source "admin"); a policy reload never
clears it, and unpinning here leaves a policy pin in force. `/admin/routing` shows each
placement's `pinned_by` and every pin with its source.

Access (`base.admin_auth`, the same rule as the cold pool's /admin): with an admin token
configured (TIERSERVE_ADMIN_TOKEN or --admin-token), every call needs
`Authorization: Bearer <token>` (401 otherwise). With no token set, /admin answers only
clients connecting from a loopback address (403 for anyone else); behind a reverse proxy
on the same host that means everyone who can reach the proxy, so set a token there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from base.admin_auth import admin_guard
from base.errors import NotFound
from base.names import MODEL_NAME_RE
from db import queries
from db.queries import Stats
from policies.experiments import ExperimentSpec, ExperimentUpdate
from router import targets
from router.state import RouterState, get_state

ModelParam = Annotated[str, Path(pattern=MODEL_NAME_RE.pattern, max_length=128)]
State = Annotated[RouterState, Depends(get_state)]

# The one rule every admin API follows (base.admin_auth), with this router's token.
require_admin = admin_guard(lambda request: get_state(request).config.admin_token)


admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


async def _db(func: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(func, *args, **kwargs)


async def _changed(state: RouterState) -> None:
    # This router sees its own change at once; the others at their next poll.
    await asyncio.to_thread(state.table.reload)


def stats_json(s: Stats) -> dict[str, Any]:
    ms = {f"{k}_ms": (None if v is None else round(v * 1000, 3))
          for k, v in (("mean", s.mean_s), ("p50", s.p50_s), ("p95", s.p95_s), ("p99", s.p99_s))}
    return {"model": s.model, "variant": s.variant, "shadow": s.shadow, "count": s.count,
            "errors": s.errors, "errors_4xx": s.errors_4xx, "errors_5xx": s.errors_5xx,
            "error_rate": round(s.error_rate, 6),
            "rate_per_s": round(s.rate, 6), **ms}


@admin.get("/routing", summary="The routing table: placements, experiments, versions")
async def routing(state: State) -> dict[str, Any]:
    placements = await _db(queries.list_placements, state.engine)
    pins = await _db(queries.list_pins, state.engine)
    shards = await _db(queries.list_shards, state.engine)
    return {"db_version": await _db(queries.routing_version, state.engine),
            "loaded_version": state.table.version, "cold_url": state.config.cold_url,
            # every registered shard; `live`: this router routes to it now
            "cold_shards": [{**asdict(s), "live": s.name in state.table.shards}
                            for s in shards],
            "placements": [asdict(p) for p in placements],
            "pins": [asdict(p) for p in pins],
            "experiments": sorted(state.table.experiments)}


class PlacementBody(BaseModel):
    pool: Literal["hot", "cold"]
    endpoint: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    healthy: bool = True
    grpc: str | None = Field(None, pattern=r"^[^\s/]+:\d+$",
                             description="the hot server's gRPC address, host:port")


@admin.put("/placements/{model}", summary="Route a model to a hot endpoint (or cold)")
async def put_placement(model: ModelParam, body: PlacementBody, state: State) -> dict[str, Any]:
    await _db(queries.set_placement, state.engine, model, body.pool, body.endpoint,
              healthy=body.healthy, grpc=body.grpc)
    await _db(queries.record_event, state.engine, model, "placement", "admin API",
              f"{body.pool} {body.endpoint or ''}".strip())
    await _changed(state)
    return {"model": model, "pool": body.pool, "endpoint": body.endpoint, "grpc": body.grpc}


@admin.delete("/placements/{model}", summary="Send a model back to the cold pool")
async def delete_placement(model: ModelParam, state: State) -> dict[str, Any]:
    await _db(queries.remove_placement, state.engine, model)
    await _changed(state)
    return {"model": model, "pool": "cold"}


async def _pin_state(state: RouterState, model: str) -> dict[str, Any]:
    found = {p.source for p in await _db(queries.list_pins, state.engine) if p.model == model}
    sources = [source for source in queries.PIN_SOURCES if source in found]
    return {"model": model, "pinned": bool(sources), "pinned_by": sources}


@admin.post("/models/{model}/pin", summary="Pin a model: the orchestrator keeps it hot "
            "(an admin pin, alongside the policy's; a policy reload keeps it)")
async def pin(model: ModelParam, state: State) -> dict[str, Any]:
    if await _db(queries.set_pinned, state.engine, model, True, "admin"):
        await _db(queries.record_event, state.engine, model, "pin", "admin API", "pinned")
        await _changed(state)
    return await _pin_state(state, model)


@admin.delete("/models/{model}/pin", summary="Remove the admin pin (a policy pin stays)")
async def unpin(model: ModelParam, state: State) -> dict[str, Any]:
    changed = await _db(queries.set_pinned, state.engine, model, False, "admin")
    result = await _pin_state(state, model)
    if changed:
        outcome = "unpinned" + ("; still pinned by the policy" if result["pinned"] else "")
        await _db(queries.record_event, state.engine, model, "unpin", "admin API", outcome)
        await _changed(state)
    return result


@admin.get("/stats", summary="Top models by request rate over a window")
async def stats(state: State, window_s: Annotated[float, Query(gt=0, le=86400 * 31)] = 300,
                limit: Annotated[int, Query(ge=1, le=10000)] = 20) -> dict[str, Any]:
    rows = await _db(queries.model_stats, state.engine, window_s, time.time(), limit)
    return {"window_s": window_s, "models": [stats_json(s) for s in rows]}


@admin.get("/events", summary="Newest events first")
async def events(state: State, limit: Annotated[int, Query(ge=1, le=10000)] = 100,
                 model: Annotated[str | None, Query(pattern=MODEL_NAME_RE.pattern)] = None
                 ) -> dict[str, Any]:
    rows = await _db(queries.list_events, state.engine, limit, model)
    return {"events": [asdict(e) for e in rows]}


@admin.get("/experiments", summary="Every experiment")
async def list_experiments(state: State) -> dict[str, Any]:
    return {"experiments": await _db(queries.list_experiments, state.engine)}


@admin.post("/experiments", status_code=201, summary="Create an experiment")
async def create_experiment(spec: ExperimentSpec, state: State) -> dict[str, Any]:
    try:
        await _db(queries.get_experiment, state.engine, spec.name)
    except NotFound:
        pass
    else:
        raise HTTPException(409, f"experiment {spec.name!r} already exists; PUT to update")
    unchecked = await targets.check(state, spec, ("body",))
    await _db(queries.upsert_experiment, state.engine, spec.stored())
    await _db(queries.record_event, state.engine, spec.name, "experiment-create", "admin API",
              "created" + _unchecked_note(unchecked))
    await _changed(state)
    return _answer(spec, unchecked)


@admin.get("/experiments/{name}", summary="One experiment")
async def get_experiment(name: ModelParam, state: State) -> dict[str, Any]:
    result: dict[str, Any] = await _db(queries.get_experiment, state.engine, name)
    return result


@admin.put("/experiments/{name}", summary="Update an experiment (weights apply at once)")
async def update_experiment(name: ModelParam, body: ExperimentUpdate,
                            state: State) -> dict[str, Any]:
    await _db(queries.get_experiment, state.engine, name)  # 404 when missing
    try:
        spec = ExperimentSpec.model_validate({"name": name, **body.model_dump(exclude_none=True)})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    unchecked = await targets.check(state, spec, ())
    await _db(queries.upsert_experiment, state.engine, spec.stored())
    await _db(queries.record_event, state.engine, name, "experiment-update", "admin API",
              "weights " + "/".join(str(v.weight) for v in spec.variants)
              + _unchecked_note(unchecked))
    await _changed(state)
    return _answer(spec, unchecked)


def _unchecked_note(unchecked: list[str]) -> str:
    return f"; not checked (cold pool could not tell): {', '.join(unchecked)}" if unchecked \
        else ""


def _answer(spec: ExperimentSpec, unchecked: list[str]) -> dict[str, Any]:
    """The stored spec; `unchecked` names the versions and labels nobody could confirm."""
    return {**spec.stored(), **({"unchecked": unchecked} if unchecked else {})}


@admin.delete("/experiments/{name}", status_code=204, summary="Delete an experiment")
async def delete_experiment(name: ModelParam, state: State) -> Response:
    await _db(queries.delete_experiment, state.engine, name)
    await _db(queries.record_event, state.engine, name, "experiment-delete", "admin API",
              "deleted")
    await _changed(state)
    return Response(status_code=204)


@admin.get("/experiments/{name}/stats", summary="Per-variant counts, errors, percentiles")
async def experiment_stats(name: ModelParam, state: State,
                           window_s: Annotated[float, Query(gt=0, le=86400 * 31)] = 3600
                           ) -> dict[str, Any]:
    await _db(queries.get_experiment, state.engine, name)
    rows = await _db(queries.experiment_stats, state.engine, name, window_s, time.time())
    return {"experiment": name, "window_s": window_s,
            "variants": [stats_json(s) for s in rows]}
