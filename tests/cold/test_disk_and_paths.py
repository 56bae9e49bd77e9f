"""The cache folder's index rebuild and TF Serving's REST paths (pure, no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import InvalidArgument
from base.tfs_rest import ModelPath
from pools.cold import disk
from pools.cold.app import parse_path


def whole(path: Path, size: int = 10) -> None:
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"x" * size)


def test_scan_keeps_whole_versions_and_deletes_leftovers(tmp_path: Path) -> None:
    whole(tmp_path / "m" / "1", 10)
    whole(tmp_path / "m" / "2", 20)
    (tmp_path / "m" / ".tmp-3-abc").mkdir()  # a download cut short
    (tmp_path / "m" / ".tmp-3-abc" / "variables").write_text("half")
    (tmp_path / "m" / "4").mkdir()  # no saved_model.pb: not whole
    (tmp_path / "gone" / ".tmp-deleting-1").mkdir(parents=True)  # a delete cut short
    (tmp_path / "not a model").mkdir()
    found = disk.scan(tmp_path)
    assert sorted((f.model, f.version, f.size_bytes) for f in found) == [("m", 1, 10), ("m", 2, 20)]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "not a model").exists()  # not ours to delete


def test_delete_version_removes_the_empty_model_folder(tmp_path: Path) -> None:
    whole(tmp_path / "m" / "1")
    whole(tmp_path / "m" / "2")
    disk.delete_version(tmp_path, "m", 1)
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["2"]
    disk.delete_version(tmp_path, "m", 2)
    assert not (tmp_path / "m").exists()


def test_policy_state_round_trip_and_garbage(tmp_path: Path) -> None:
    assert disk.load_state(tmp_path) == {}
    disk.save_state(tmp_path, {"policy": "lru", "memory": {"order": ["a/1"]}})
    assert disk.load_state(tmp_path)["memory"] == {"order": ["a/1"]}
    (tmp_path / disk.POLICY_STATE_FILE).write_text("{not json")
    assert disk.load_state(tmp_path) == {}


@pytest.mark.parametrize(("method", "path", "target"), [
    ("POST", "/v1/models/m:predict", ModelPath("m", None, kind="predict")),
    ("POST", "/v1/models/m/versions/3:classify", ModelPath("m", 3, kind="classify")),
    ("POST", "/v1/models/m.v2/versions/007:regress", ModelPath("m.v2", 7, kind="regress")),
    ("POST", "/V1/Models/m:Predict", ModelPath("m", None, kind="predict")),  # as TF Serving
    ("GET", "/v1/models/m", ModelPath("m")),
    ("GET", "/v1/models/m/versions/2", ModelPath("m", 2)),
    ("GET", "/v1/models/m/metadata", ModelPath("m", kind="metadata")),
    ("GET", "/v1/models/m/versions/2/metadata", ModelPath("m", 2, kind="metadata")),
    # A label is the pool's to resolve (pools.cold.labels), after parsing.
    ("POST", "/v1/models/m/labels/stable:predict", ModelPath("m", None, "stable", "predict")),
])
def test_tf_serving_paths(method: str, path: str, target: ModelPath) -> None:
    assert parse_path(path, method) == target


@pytest.mark.parametrize(("method", "path", "error"), [
    ("POST", "/v1/models/m", InvalidArgument),
    ("GET", "/v1/models/m:predict", InvalidArgument),
    ("POST", "/v1/models/m/versions/x:predict", InvalidArgument),
    ("POST", "/v1/models/m/versions/0:predict", InvalidArgument),
])
def test_bad_paths(method: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_path(path, method)
