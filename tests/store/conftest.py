"""Stores holding real toy SavedModels, locally and on moto's S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import stores as testing

# name -> {version: a}; "m2" also has a version folder spelled with leading zeros.
MODELS: dict[str, dict[int, float]] = {"m1": {1: 1.0, 2: 2.0}, "m2": {3: 3.0}, "alpha.v2": {7: 0.5}}


def populate(root: Path) -> Path:
    """A store with MODELS plus entries every listing must ignore."""
    testing.make_local_store(root, MODELS)
    (root / "m2" / "3").rename(root / "m2" / "00000003")
    testing.make_local_store(root, {"m2": {10: 10.0}})
    (root / "m1" / "0").mkdir()            # not a positive version
    (root / "m1" / "latest").mkdir()       # not a version
    (root / "m1" / "README").write_text("a file, not a version")
    (root / "-bad").mkdir()                # not a valid model name
    (root / "has space").mkdir()
    (root / "notes.txt").write_text("a file, not a model")
    (root / "empty").mkdir()               # a model without versions
    return root


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory, toy_template: Path) -> Path:
    return populate(tmp_path_factory.mktemp("store"))
