"""The dashboard at /ui: one static page and the one JSON call it polls.

The page shows request totals (overall and per pool) and errors split into 4xx
and 5xx, the models (searchable, one page at a time) with their pool, who pins
them and a request-rate sparkline, the cold
pool's cache, experiments with per-variant traffic (weights editable
through the admin API) and the event timeline. The JSON call sits behind the
same admin guard as /admin: it reveals traffic, so it is not public.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from base.admin_auth import bearer_headers
from db import queries
from router.admin import State, require_admin, stats_json
from router.overview import merge_cold_listings, page_of, pool_totals

_PAGE = Path(__file__).with_name("static") / "dashboard.html"
SPARK_MINUTES = 30
STATS_WINDOW_S = 300.0

ui = APIRouter(tags=["dashboard"])


@ui.get("/ui", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text())


def _overview_from_db(state: Any, now: float, query: str, page: int,
                      page_size: int) -> dict[str, Any]:
    engine = state.engine
    placements = {p.model: p for p in queries.list_placements(engine)}
    stats = {s.model: s for s in queries.model_stats(engine, STATS_WINDOW_S, now)}
    series = queries.minute_series(engine, SPARK_MINUTES, now)
    experiments = []
    for spec in queries.list_experiments(engine):
        per_variant = queries.experiment_stats(engine, spec["name"], 3600.0, now)
        experiments.append({"spec": spec, "variants": [stats_json(s) for s in per_variant]})
    models = []
    for name in sorted(set(placements) | set(stats) | set(series)):
        p = placements.get(name)
        hot = p is not None and p.pool == "hot"
        models.append({
            "model": name, "pool": "hot" if hot else "cold",
            "endpoint": p.endpoint if hot and p else None,
            "healthy": p.healthy if p else True, "pinned": bool(p and p.pinned),
            "pinned_by": list(p.pinned_by) if p else [],
            "series": series.get(name, [0] * SPARK_MINUTES),
            "stats": stats_json(stats[name]) if name in stats else None,
        })
    # Hot first, then the busiest: the models an operator looks for are at the top.
    models.sort(key=lambda m: (m["pool"] != "hot", -(m["stats"] or {}).get("count", 0),
                               m["model"]))
    events = [{"ts": e.ts, "model": e.model, "action": e.action, "reason": e.reason,
               "outcome": e.outcome} for e in queries.list_events(engine, limit=50)]
    return {"now": now, "spark_minutes": SPARK_MINUTES, "window_s": STATS_WINDOW_S,
            "totals": pool_totals(models), **page_of(models, query, page, page_size),
            "experiments": experiments, "events": events}


async def _cold_listing(state: Any, url: str) -> dict[str, Any] | str:
    try:
        # The cold pool's /admin follows the same rule as ours: send our token along.
        response = await state.http().get(f"{url}/admin/models",
                                          headers=bearer_headers(state.config.admin_token),
                                          timeout=2.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
    except (httpx.HTTPError, ValueError) as exc:
        return str(exc)


async def _cold_cache(state: Any) -> dict[str, Any]:
    """Every cold shard's cache in one view (router.overview); the lone pool's without shards."""
    shards = {name: url for name, (url, _grpc) in state.table.shards.items()}
    if not shards:
        shards = {"": state.config.cold_url}
    names = sorted(shards)
    listings = await asyncio.gather(*(_cold_listing(state, shards[n]) for n in names))
    merged = merge_cold_listings(dict(zip(names, listings, strict=True)))
    if "error" in merged:
        merged["error"] = f"cold pool cache not available: {merged['error']}"
    return merged


@ui.get("/ui/api/overview", dependencies=[Depends(require_admin)],
        summary="Everything the dashboard shows, in one call")
async def overview(state: State,
                   q: Annotated[str, Query(max_length=128, description="model name part")] = "",
                   page: Annotated[int, Query(ge=1)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=500)] = 25) -> dict[str, Any]:
    body, cache = await asyncio.gather(
        asyncio.to_thread(_overview_from_db, state, time.time(), q, page, page_size),
        _cold_cache(state))
    return {**body, "cold_cache": cache}
