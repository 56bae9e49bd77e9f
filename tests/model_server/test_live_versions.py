"""Base path polling: a new version is picked up with no failed request; a removed one unloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.model_server.helpers import ModelServer, wait_for
from tierserve import toy_models

MAX_REQUESTS = 20_000  # a bound, not a target: the loop ends once the new version answers


def loop_until(served: ModelServer, a_new: float, xs: list[float]) -> list[tuple[int, str]]:
    """Predict in a loop (bounded) until 20 answers came from the model `a_new * x`."""
    seen_new = 0
    failures: list[tuple[int, str]] = []
    with httpx.Client(base_url=served.rest, timeout=30) as client:
        for _ in range(MAX_REQUESTS):
            response = client.post("/v1/models/live:predict", json={"instances": xs})
            if response.status_code != 200:
                failures.append((response.status_code, response.text))
                continue
            if response.json()["predictions"] == toy_models.expected(a_new, 0.0, xs):
                seen_new += 1
                if seen_new >= 20:
                    break
    assert seen_new >= 20, "the new version never answered"
    return failures


def test_new_version_is_served_without_a_failed_request(served: ModelServer,
                                                        store_root: Path) -> None:
    base = store_root / "live"
    xs = [1.0, 2.0]
    assert served.predict("live", {"instances": xs}).json() == {"predictions": [1.0, 2.0]}

    toy_models.write_version(base / "2", a=10.0)
    assert loop_until(served, 10.0, xs) == []
    wait_for(lambda: served.states("live") == {2: "AVAILABLE", 1: "END"}, what="v1 unloaded")

    # Version 2 removed from disk: version 1 (latest again) is loaded, then 2 unloaded.
    shutil.rmtree(base / "2")
    assert loop_until(served, 1.0, xs) == []
    wait_for(lambda: served.states("live") == {2: "END", 1: "AVAILABLE"}, what="v2 unloaded")
