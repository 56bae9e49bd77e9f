"""The local folder store against real toy SavedModels on disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from base.errors import InvalidArgument, NotFound
from pools.store import LocalStore, ModelStore, open_store, split_base_path
from testkit.stores import make_local_store
from tierserve import toy_models


@pytest.fixture
def store(store_root: Path) -> ModelStore:
    return open_store(str(store_root))


def test_lists_valid_models_and_versions(store: ModelStore) -> None:
    assert store.list_models() == ["alpha.v2", "empty", "m1", "m2"]
    assert store.list_versions("m1") == [1, 2]
    assert store.list_versions("m2") == [3, 10]  # "00000003" is version 3
    assert store.list_versions("empty") == []
    assert store.latest_version("m2") == 10


def test_absent_model_and_version(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.list_versions("nope")
    with pytest.raises(NotFound):
        store.latest_version("empty")
    with pytest.raises(NotFound):
        store.version_size("m1", 3)
    with pytest.raises(NotFound):
        store.download("m1", 3, tmp_path)
    with pytest.raises(NotFound):
        open_store(str(tmp_path / "no-such-store")).list_models()


def test_version_size_counts_every_file(store: ModelStore, store_root: Path) -> None:
    files = [p for p in (store_root / "m2" / "00000003").rglob("*") if p.is_file()]
    assert store.version_size("m2", 3) == sum(p.stat().st_size for p in files) > 0


def test_download_is_a_loadable_saved_model(store: ModelStore, tmp_path: Path) -> None:
    import tensorflow as tf

    path = store.download("m2", 3, tmp_path / "cache" / "m2")
    assert path == tmp_path / "cache" / "m2" / "3"
    model = tf.saved_model.load(str(path))
    y = model.signatures["serving_default"](x=tf.constant([2.0]))["y"].numpy()
    assert list(y) == toy_models.expected(3.0, 0.0, [2.0])
    assert os.listdir(path.parent) == ["3"]  # no temporary folder left behind


def test_download_twice_returns_the_existing_folder(store: ModelStore, tmp_path: Path) -> None:
    first = store.download("m1", 2, tmp_path)
    marker = first / "marker"
    marker.write_text("kept")
    assert store.download("m1", 2, tmp_path) == first
    assert marker.read_text() == "kept"


def test_concurrent_downloads_of_one_version(store: ModelStore, tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(store.download("m1", 1, tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(results) == {tmp_path / "1"}
    assert (tmp_path / "1" / "saved_model.pb").is_file()
    assert os.listdir(tmp_path) == ["1"]


def test_failure_midway_leaves_nothing(store: ModelStore, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[Path] = []
    real_copy = LocalStore._copy_file

    def failing_copy(self: LocalStore, source: Path, target: Path) -> None:
        if len(copied) == 2:
            raise OSError("disk full (simulated)")
        real_copy(self, source, target)
        copied.append(target)

    monkeypatch.setattr(LocalStore, "_copy_file", failing_copy)
    with pytest.raises(OSError, match="simulated"):
        store.download("m1", 1, tmp_path)
    assert len(copied) == 2  # it really failed in the middle
    assert os.listdir(tmp_path) == []


def test_version_without_saved_model_is_not_installed(tmp_path: Path) -> None:
    (tmp_path / "store" / "m" / "1" / "variables").mkdir(parents=True)
    (tmp_path / "store" / "m" / "1" / "variables" / "x").write_text("x")
    store = open_store(f"file://{tmp_path / 'store'}")
    with pytest.raises(NotFound, match="saved_model"):
        store.download("m", 1, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


@pytest.mark.parametrize("name", ["..", "../m1", "m1/../m2", "/etc", ".hidden", "a b", ""])
def test_bad_names_rejected(store: ModelStore, tmp_path: Path, name: str) -> None:
    for call in (lambda: store.list_versions(name), lambda: store.latest_version(name),
                 lambda: store.version_size(name, 1), lambda: store.download(name, 1, tmp_path)):
        with pytest.raises(InvalidArgument):
            call()


@pytest.mark.parametrize("version", [0, -1, "1/../2", "abc", True])
def test_bad_versions_rejected(store: ModelStore, tmp_path: Path, version: object) -> None:
    with pytest.raises(InvalidArgument):
        store.download("m1", version, tmp_path)  # type: ignore[arg-type]


def test_symlinks_may_not_leave_the_store(tmp_path: Path, toy_template: Path) -> None:
    outside = make_local_store(tmp_path / "outside", {"secret": {1: 9.0}})
    root = make_local_store(tmp_path / "store", {"m": {1: 1.0}})
    (root / "escape").symlink_to(outside / "secret")          # a model folder outside
    (root / "m" / "2").symlink_to(outside / "secret" / "1")   # a version folder outside
    (root / "alias").symlink_to(root / "m")                   # inside: allowed
    leak = root / "m" / "1" / "assets" / "leak"
    leak.symlink_to(outside / "secret" / "1" / "saved_model.pb")  # a file outside
    store = open_store(str(root))

    assert store.list_models() == ["alias", "m"]
    assert store.list_versions("m") == [1]
    with pytest.raises(NotFound):
        store.list_versions("escape")
    with pytest.raises(InvalidArgument, match="outside"):
        store.download("m", 1, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []
    leak.unlink()
    assert store.download("alias", 1, tmp_path / "cache2").joinpath("saved_model.pb").is_file()


def test_uris(store_root: Path) -> None:
    assert open_store(f"file://{store_root}").uri == str(store_root.resolve())
    assert open_store(str(store_root)).model_uri("m1") == str(store_root.resolve() / "m1")
    with pytest.raises(InvalidArgument):
        open_store("gs://bucket/models")
    assert split_base_path("s3://b/models/m1/") == ("s3://b/models", "m1")
    assert split_base_path("s3://b/m1") == ("s3://b", "m1")
    assert split_base_path("file:///srv/models/m1") == ("/srv/models", "m1")
    assert split_base_path("/srv/models/m1") == ("/srv/models", "m1")
