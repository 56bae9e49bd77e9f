"""One model's version bookkeeping and the manager's reload rules, with a fake loader."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from base.errors import FailedPrecondition, NotFound, Unavailable
from pools.model_server import config as configs
from pools.model_server.manager import ModelManager, Unknown
from pools.model_server.model import ModelEntry


class FakeSource:
    def __init__(self, versions: list[int]) -> None:
        self.versions = versions
        self.released: list[int] = []
        self.sizes: dict[int, int] = {}  # the version's bytes: what `fingerprint` tells

    def list_versions(self) -> list[int]:
        return list(self.versions)

    def fetch(self, version: int) -> Path:
        return Path(f"/fake/{version}")

    def release(self, version: int) -> None:
        self.released.append(version)

    def fingerprint(self, version: int) -> int:
        return self.sizes.get(version, 100)


class FakeLoader:
    """Loads `/…/<version>`; versions in `broken` fail, those in `flaky` fail `flaky[v]` times."""

    def __init__(self) -> None:
        self.broken: set[int] = set()
        self.flaky: dict[int, int] = {}
        self.loaded: list[Path] = []

    def __call__(self, path: Path) -> Any:
        version = int(path.name)
        if version in self.broken:
            raise FailedPrecondition(f"bad SavedModel {path}")
        if self.flaky.get(version, 0) > 0:
            self.flaky[version] -= 1
            raise Unavailable("store unreachable")
        self.loaded.append(path)
        return f"servable-{version}"


def model_config(text: str = "") -> Any:
    return configs.parse_text(
        f'model_config_list {{ config {{ name: "m" base_path: "/x/m" {text} }} }}'
    ).model_config_list.config[0]


def states(entry: ModelEntry) -> dict[int, str]:
    return {s.version: s.state for s in entry.states()}


def test_latest_version_swaps_in_before_the_old_one_unloads() -> None:
    source, loader = FakeSource([1]), FakeLoader()
    entry = ModelEntry(model_config(), source, loader)
    entry.sync()
    assert states(entry) == {1: "AVAILABLE"} and entry.resolve() == (1, "servable-1")
    source.versions = [1, 2]
    entry.sync()
    assert states(entry) == {2: "AVAILABLE", 1: "END"} and source.released == [1]
    assert entry.resolve() == (2, "servable-2")


def test_a_broken_new_version_keeps_the_old_one_serving_and_is_not_retried() -> None:
    source, loader = FakeSource([1]), FakeLoader()
    entry = ModelEntry(model_config(), source, loader)
    entry.sync()
    loader.broken.add(2)
    source.versions = [1, 2]
    entry.sync()
    entry.sync()
    assert states(entry) == {2: "END", 1: "AVAILABLE"}
    assert entry.resolve() == (1, "servable-1")
    assert [s.version for s in entry.failures()] == [2]
    assert len(loader.loaded) == 1  # v2 tried once per appearance, not per sync
    # Removed from disk and written again (fixed): it loads.
    source.versions = [1]
    entry.sync()
    loader.broken.clear()
    source.versions = [1, 2]
    entry.sync()
    assert states(entry)[2] == "AVAILABLE"


def test_a_version_seen_mid_upload_is_loaded_once_its_files_are_complete() -> None:
    source, loader = FakeSource([1]), FakeLoader()
    entry = ModelEntry(model_config(), source, loader)
    entry.sync()
    loader.broken.add(2)
    source.versions, source.sizes[2] = [1, 2], 40  # saved_model.pb there, variables not yet
    entry.sync()
    assert states(entry) == {2: "END", 1: "AVAILABLE"} and 2 in source.released
    entry.sync()  # nothing changed: not tried again
    assert len(loader.loaded) == 1
    loader.broken.clear()
    source.sizes[2] = 100  # the upload finished
    entry.sync()
    assert states(entry) == {2: "AVAILABLE", 1: "END"}
    assert entry.resolve() == (2, "servable-2")


def test_passing_errors_are_retried() -> None:
    source, loader = FakeSource([1]), FakeLoader()
    loader.flaky[1] = 2
    entry = ModelEntry(model_config(), source, loader)
    entry.sync()
    assert states(entry) == {1: "END"}
    entry.sync()
    entry.sync()
    assert states(entry) == {1: "AVAILABLE"}


def test_policy_all_specific_and_labels() -> None:
    source, loader = FakeSource([1, 2, 3]), FakeLoader()
    entry = ModelEntry(model_config("model_version_policy { all {} } "
                                    'version_labels { key: "old" value: 1 }'), source, loader)
    entry.sync()
    assert states(entry) == {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}
    assert entry.resolve(label="old") == (1, "servable-1")
    assert entry.resolve(version=2) == (2, "servable-2")
    entry.update_config(model_config("model_version_policy { specific { versions: 2 } }"))
    entry.sync()
    assert states(entry) == {3: "END", 2: "AVAILABLE", 1: "END"}
    with pytest.raises(NotFound, match=r"Specific\(m, 3\)"):
        entry.resolve(version=3)


def test_missing_base_path_is_the_models_failure() -> None:
    class Missing(FakeSource):
        def list_versions(self) -> list[int]:
            raise NotFound("Could not find base path /x/m for servable m")

    entry = ModelEntry(model_config(), Missing([]), FakeLoader())
    entry.sync()
    (state,) = entry.states()
    assert (state.version, state.state) == (0, "END") and "base path" in state.error.message
    assert entry.failures()[0].error is state.error


def test_manager_reload_semantics(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name / "1").mkdir(parents=True)
    loader = FakeLoader()
    barrier = threading.Barrier(3, timeout=10)

    def parallel_loader(path: Path) -> Any:
        if len(loader.loaded) < 3:
            barrier.wait()  # the first reload's three loads pass only if they run at once
        return loader(path)

    manager = ModelManager(parallel_loader, tmp_path / "cache", num_load_threads=3)

    def text(names: list[str]) -> Any:
        body = " ".join(f'config {{ name: "{n}" base_path: "{tmp_path / n}" }}' for n in names)
        return configs.parse_text(f"model_config_list {{ {body} }}")

    manager.reload(text(["a", "b", "c"]))
    assert manager.model_names() == ["a", "b", "c"] and len(loader.loaded) == 3
    manager.reload(text(["a", "b"]))  # c left out: unloaded; a, b unchanged: not reloaded
    assert len(loader.loaded) == 3
    assert [s.state for s in manager.status("c")] == ["END"]
    with pytest.raises(NotFound):
        manager.resolve("c")
    (tmp_path / "d").mkdir()
    with pytest.raises(Unknown, match=r"1 model\(s\) did not become available.*name: d"):
        manager.reload(text(["a", "b", "d"]))
    assert manager.resolve("a") == (1, "servable-1")
    manager.close()
