"""The dashboard's totals and model pages (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.overview import merge_cold_listings, page_of, pool_totals


def model(name: str, pool: str, rate: float | None, e4: int = 0, e5: int = 0
          ) -> dict[str, Any]:
    stats = None if rate is None else {"rate_per_s": rate, "count": int(rate * 300),
                                       "errors_4xx": e4, "errors_5xx": e5}
    return {"model": name, "pool": pool, "stats": stats}


def test_totals_overall_and_per_pool() -> None:
    totals = pool_totals([model("a", "hot", 4.0, e5=3), model("b", "cold", 0.5, e4=2),
                          model("c", "cold", 1.5, e4=1, e5=1), model("d", "cold", None)])
    assert totals["all"] == {"rate_per_s": 6.0, "requests": 1800, "errors_4xx": 3,
                             "errors_5xx": 4, "models": 4}
    assert totals["hot"] == {"rate_per_s": 4.0, "requests": 1200, "errors_4xx": 0,
                             "errors_5xx": 3, "models": 1}
    assert totals["cold"] == {"rate_per_s": 2.0, "requests": 600, "errors_4xx": 3,
                              "errors_5xx": 1, "models": 3}


def test_search_is_a_name_part_in_any_case() -> None:
    models = [model(f"Model-{i:04d}", "cold", 1.0) for i in range(1000)]
    found = page_of(models, " model-01 ", 1, 25)
    assert found["matching"] == 100 and found["pages"] == 4
    assert [m["model"] for m in found["models"]][:2] == ["Model-0100", "Model-0101"]
    assert page_of(models, "nothing", 3, 25) | {"models": None} == {
        "models": None, "matching": 0, "page": 1, "pages": 1, "page_size": 25}


@given(n=st.integers(0, 300), page=st.integers(-5, 50), size=st.integers(1, 60))
def test_pages_cover_every_model_once(n: int, page: int, size: int) -> None:
    models = [model(f"m{i}", "cold", None) for i in range(n)]
    shown = page_of(models, "", page, size)
    assert 1 <= shown["page"] <= shown["pages"]
    assert len(shown["models"]) == min(size, n - (shown["page"] - 1) * size)
    every = [m["model"] for p in range(1, shown["pages"] + 1)
             for m in page_of(models, "", p, size)["models"]]
    assert every == [m["model"] for m in models]


def listing(models: list[str], memory: int, bound: int | None, hits: int) -> dict[str, Any]:
    return {"usage": {"memory_models": memory, "memory_bytes": 10 * memory},
            "bounds": {"memory_models": bound, "memory_bytes": None},
            "totals": {"hits": hits, "misses": 1, "evictions": {"memory": 2, "disk": 0}},
            "models": [{"model": m, "loaded": True} for m in models]}


def test_a_lone_cold_pool_is_shown_as_it_answers() -> None:
    one = listing(["a"], 1, 4, 3)
    assert merge_cold_listings({"": one}) is one
    assert merge_cold_listings({"": "connection refused"}) == {
        "error": "cold pool: connection refused"}


def test_cold_shards_add_up_and_each_model_names_its_shard() -> None:
    merged = merge_cold_listings({"cold-1": listing(["b"], 1, 4, 5),
                                  "cold-0": listing(["a", "c"], 2, 4, 3),
                                  "cold-2": "timed out"})
    assert merged["shards"] == ["cold-0", "cold-1", "cold-2"]
    assert merged["shard_errors"] == {"cold-2": "timed out"}
    assert merged["usage"] == {"memory_models": 3, "memory_bytes": 30}
    assert merged["bounds"] == {"memory_models": 8, "memory_bytes": None}
    assert merged["totals"] == {"hits": 8, "misses": 2, "evictions": {"memory": 4, "disk": 0}}
    assert [(m["model"], m["shard"]) for m in merged["models"]] == [
        ("a", "cold-0"), ("c", "cold-0"), ("b", "cold-1")]


def test_one_unbounded_shard_makes_the_bound_none() -> None:
    for unbounded in ("x", "y"):  # whichever shard comes first
        bounded = "y" if unbounded == "x" else "x"
        merged = merge_cold_listings({unbounded: listing([], 0, None, 0),
                                      bounded: listing([], 0, 4, 0)})
        assert merged["bounds"]["memory_models"] is None
    assert merge_cold_listings({"x": "down", "y": "down too"})["error"] == "x: down; y: down too"
