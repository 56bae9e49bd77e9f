"""The dashboard's model list, reduced to what one screen shows (pure).

A thousand models must not push the cold cache, experiments and events out of
sight: the page gets totals for every model, and one page of the models that
match its search.
"""

from __future__ import annotations

from typing import Any

POOLS = ("hot", "cold")


def pool_totals(models: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Requests per second, requests, client (4xx) and server (5xx) errors and model
    counts, overall and per pool.

    Each model's window of requests is credited to the pool it is placed in now
    (the counts do not record the pool), so right after a promotion the hot
    pool's figure includes the traffic that led to it.
    """
    totals = {name: {"rate_per_s": 0.0, "requests": 0, "errors_4xx": 0, "errors_5xx": 0,
                     "models": 0}
              for name in ("all", *POOLS)}
    for m in models:
        stats = m.get("stats") or {}
        for name in ("all", m["pool"]):
            totals[name]["rate_per_s"] += stats.get("rate_per_s", 0.0)
            totals[name]["requests"] += stats.get("count", 0)
            totals[name]["errors_4xx"] += stats.get("errors_4xx", 0)
            totals[name]["errors_5xx"] += stats.get("errors_5xx", 0)
            totals[name]["models"] += 1
    for entry in totals.values():
        entry["rate_per_s"] = round(entry["rate_per_s"], 6)
    return totals


def page_of(models: list[dict[str, Any]], query: str, page: int, size: int) -> dict[str, Any]:
    """The `page`-th (from 1) `size` models whose name contains `query` (any case).

    A page past the end gives the last one, so a search that narrows the list
    never leaves the user on an empty page.
    """
    needle = query.strip().lower()
    matching = [m for m in models if needle in m["model"].lower()] if needle else models
    pages = max(1, -(-len(matching) // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return {"models": matching[start:start + size], "matching": len(matching),
            "page": page, "pages": pages, "page_size": size}


def merge_cold_listings(listings: dict[str, dict[str, Any] | str]) -> dict[str, Any]:
    """One cold-cache view from each cold shard's `/admin/models` listing (or the error
    text of a shard that did not answer), by shard name ("" for a lone cold pool).

    Usage, bounds and totals add up over the shards that answered (a bound is None, no
    limit, when any shard has none); each model row names its shard. With one pool and
    its listing, the listing is returned as it is.
    """
    if list(listings) == [""] and isinstance(listings[""], dict):
        return listings[""]
    answered = {n: v for n, v in listings.items() if isinstance(v, dict)}
    errors = {n: v for n, v in listings.items() if isinstance(v, str)}
    if not answered:
        return {"error": "; ".join(f"{n or 'cold pool'}: {e}" for n, e in errors.items())}
    merged: dict[str, Any] = {"shards": sorted(listings), "shard_errors": errors,
                              "usage": {}, "bounds": {}, "totals": {}, "models": []}
    for name in sorted(answered):
        listing = answered[name]
        _add_totals(merged["usage"], listing.get("usage") or {})
        for key, bound in (listing.get("bounds") or {}).items():
            have = merged["bounds"].get(key, 0)
            merged["bounds"][key] = None if bound is None or have is None else have + bound
        _add_totals(merged["totals"], listing.get("totals") or {})
        merged["models"].extend({**m, "shard": name} for m in listing.get("models") or [])
    return merged


def _add_totals(into: dict[str, Any], totals: dict[str, Any]) -> None:
    for key, value in totals.items():
        if isinstance(value, dict):
            _add_totals(into.setdefault(key, {}), value)
        elif isinstance(value, int | float):
            into[key] = into.get(key, 0) + value
