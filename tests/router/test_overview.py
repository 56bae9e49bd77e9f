"""The dashboard's totals and model pages (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.overview import page_of, pool_totals


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
