"""What exists of the models an experiment names, asked of the cold pool (which lists the
store and reads the policy's labels): `GET /admin/models/{m}/versions`, no load.

A pool that cannot answer (unreachable, an older pool without the call, the store away)
leaves the model's facts unknown: the experiment is accepted and the fields that could
not be checked are said in the answer (`unchecked`) and in its event.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi.exceptions import RequestValidationError

from policies.experiments import UNKNOWN, ExperimentSpec, Known, arms, check_targets
from router.state import RouterState

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0


async def known_model(state: RouterState, model: str) -> Known:
    url = f"{state.table.route_cold(model).base_url}/admin/models/{model}/versions"
    try:
        response = await state.http().get(url, timeout=TIMEOUT_S)
        if response.status_code != 200:
            return UNKNOWN
        body = response.json()
        return Known(in_store=bool(body["in_store"]),
                     versions=frozenset(int(v) for v in body["versions"]),
                     labels={str(k): int(v) for k, v in body["labels"].items()})
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("cannot check the targets of %s: %s", model, exc)
        return UNKNOWN


async def check(state: RouterState, spec: ExperimentSpec, body_loc: tuple[str, ...]
                ) -> list[str]:
    """RequestValidationError (422 naming the fields) for arms that do not exist; else the
    fields that could not be checked."""
    models = sorted({target.model for _, target in arms(spec)})
    facts = await asyncio.gather(*(known_model(state, m) for m in models))
    errors, unchecked = check_targets(spec, dict(zip(models, facts, strict=True)))
    if errors:
        raise RequestValidationError([
            {"type": "value_error", "loc": (*body_loc, *loc), "msg": message,
             "input": None} for loc, message in errors])
    return unchecked
