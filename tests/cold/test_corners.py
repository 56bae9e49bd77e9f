"""A real cold pool's corners: version labels from a file it re-reads, bogus names, bodies past
its limit, cache files deleted under it, and the router checking experiment arms against it
(moto's S3, real model servers, toy models)."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pools.cold.catalog import NEGATIVE_TTL_S
from pools.cold.labels import CHECK_EVERY_S
from tests.cold.conftest import Pool, expected, start_pool, upload_version, wait_until

XS = [1.0, 4.0]
LIMIT = 4096


@pytest.fixture(scope="module")
def labels_file(module_tmp: Path) -> Path:
    path = module_tmp / "policy.yaml"
    path.write_text("store: s3://ignored\nlabels:\n  lab:\n    stable: 1\n    canary: 2\n")
    return path


@pytest.fixture(scope="module")
def pool(log_dir: Path, moto_s3: str, module_bucket: str, module_tmp: Path, s3: object,
         labels_file: Path) -> Iterator[Pool]:
    upload_version(s3, module_bucket, "lab", 1, a=1.0)
    upload_version(s3, module_bucket, "lab", 2, a=2.0)
    upload_version(s3, module_bucket, "other", 1, a=3.0)
    started = start_pool(log_dir, module_tmp / "cache", f"s3://{module_bucket}/models",
                         moto_s3, labels_file=labels_file, memory_models=1, model_servers=1,
                         max_body_bytes=LIMIT)
    yield started
    started.stop()


def label_predict(pool: Pool, label: str) -> object:
    return pool.http.post(f"/v1/models/lab/labels/{label}:predict", json={"instances": XS})


def test_labels_name_versions_loaded_on_demand(pool: Pool, labels_file: Path) -> None:
    canary = label_predict(pool, "canary")
    assert canary.status_code == 200, canary.text
    assert canary.json() == {"predictions": expected(2.0, XS)}
    assert canary.headers["x-tierserve-model-version"] == "2"
    stable = label_predict(pool, "stable")
    assert stable.json() == {"predictions": expected(1.0, XS)}
    status = pool.http.get("/v1/models/lab/labels/stable").json()
    assert [s["version"] for s in status["model_version_status"]] == ["1"]
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    meta = pool.http.get("/v1/models/lab/labels/canary/metadata")
    assert meta.status_code == 200 and meta.json()["model_spec"]["version"] == "2"
    unknown = label_predict(pool, "beta")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "Unrecognized servable version label: beta"}
    # An edit is picked up; a bad one keeps the last good labels.
    labels_file.write_text("labels:\n  lab:\n    stable: 1\n    canary: 1\n")
    time.sleep(CHECK_EVERY_S + 0.1)
    wait_until(lambda: label_predict(pool, "canary").json() == {
        "predictions": expected(1.0, XS)}, timeout=10)
    labels_file.write_text("labels:\n  lab:\n    canary: -1\n")
    time.sleep(CHECK_EVERY_S + 0.1)
    assert label_predict(pool, "canary").json() == {"predictions": expected(1.0, XS)}
    assert pool.listing()["labels_error"]
    labels_file.write_text("labels:\n  lab:\n    stable: 1\n    canary: 2\n")


def test_bogus_names_cost_no_listing_each(pool: Pool) -> None:
    before = pool.listing()["totals"]["store_listings"]
    started = time.monotonic()
    for i in range(500):
        r = pool.predict(f"bogus-{i % 50}", XS)
        assert r.status_code == 404 and set(r.json()) == {"error"}
    elapsed = time.monotonic() - started
    listings = pool.listing()["totals"]["store_listings"] - before
    # One listing per name, again only once its "not found" has expired.
    assert 50 <= listings <= 50 * (1 + math.ceil(elapsed / NEGATIVE_TTL_S))
    listing = pool.listing()
    assert not any(m["model"].startswith("bogus") for m in listing["models"])


def test_a_body_past_the_limit_is_413(pool: Pool) -> None:
    r = pool.http.post("/v1/models/other:predict", content=b"[" * (LIMIT + 1),
                       headers={"content-type": "application/json"})
    assert r.status_code == 413 and set(r.json()) == {"error"}
    assert pool.predict("other", XS).json() == {"predictions": expected(3.0, XS)}


def test_cache_files_deleted_under_the_pool_are_downloaded_again(pool: Pool) -> None:
    assert pool.predict("lab", XS, version=1).status_code == 200
    assert pool.predict("other", XS).status_code == 200  # lab/1 leaves memory, stays on disk
    assert pool.entry("lab", 1)["on_disk"] and not pool.entry("lab", 1)["loaded"]
    downloads = pool.entry("lab", 1)["downloads"]
    shutil.rmtree(pool.cache_dir / "lab")
    again = pool.predict("lab", XS, version=1)
    assert again.status_code == 200, again.text
    assert again.json() == {"predictions": expected(1.0, XS)}
    assert pool.entry("lab", 1)["downloads"] == downloads + 1
    assert pool.entry("lab", 1)["failure"] is None
    shutil.rmtree(pool.cache_dir)  # the whole folder
    assert pool.predict("other", XS).json() == {"predictions": expected(3.0, XS)}


async def test_the_router_checks_experiment_arms_against_the_pool(pool: Pool,
                                                                  tmp_path: Path) -> None:
    from db.queries import make_engine
    from tests.router.test_app import running

    engine = make_engine(f"sqlite:///{tmp_path / 'router.db'}")
    async with running(engine, cold_url=pool.url) as (client, _):
        def arms(*variants: dict[str, object]) -> dict[str, object]:
            return {"name": "pub", "variants": list(variants)}

        for arm, field in (({"model": "lab", "label": "beta"}, "label"),
                           ({"model": "lab", "version": 7}, "version"),
                           ({"model": "ghost-model"}, "model")):
            r = await client.post("/admin/experiments", json=arms({**arm, "weight": 100}))
            assert r.status_code == 422, r.text
            assert [e["loc"] for e in json.loads(r.json()["error"])] == [
                ["body", "variants", 0, field]]
        r = await client.post("/admin/experiments", json=arms(
            {"model": "lab", "label": "canary", "weight": 50},
            {"model": "lab", "version": 1, "weight": 50}))
        assert r.status_code == 201 and "unchecked" not in r.json(), r.text
        seen = set()
        for user in range(20):
            answer = await client.post("/v1/models/pub:predict", json={"instances": XS},
                                       headers={"X-User-Id": str(user)})
            assert answer.status_code == 200, answer.text
            seen.add((answer.headers["x-tierserve-variant"], answer.json()["predictions"][0]))
        assert seen == {("lab.canary", expected(2.0, XS)[0]), ("lab.v1", expected(1.0, XS)[0])}
