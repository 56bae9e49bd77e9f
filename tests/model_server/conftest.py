"""One model server per session for the read-only tests, serving toy and TF Serving models."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import half_plus_two
from tests.model_server.helpers import ModelServer, config_text, start_model_server
from tierserve import toy_models

# m1: y = 2x (v1); m2: v1 y = 3x, v2 y = 4x + 1 (latest); m3: every version, labels.
# live: changed by test_live_versions while the server runs.
TOYS = {"m1": ({1: 2.0}, 0.0), "m2": ({1: 3.0, 2: 4.0}, 1.0), "m3": ({1: 5.0, 2: 6.0}, 0.0),
        "live": ({1: 1.0}, 0.0)}


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory, toy_template: Path) -> Path:
    root = tmp_path_factory.mktemp("ms-store")
    for name, (versions, b) in TOYS.items():
        toy_models.write_model(root, name, versions, b=b)
    corrupt = root / "corrupt" / "1"
    shutil.copytree(toy_template, corrupt)
    (corrupt / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    (root / "empty" / "1").mkdir(parents=True)
    return root


@pytest.fixture(scope="session")
def served_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The --model_config_file of `served` (re-read every 0.5 s)."""
    return tmp_path_factory.mktemp("ms-config") / "models.config"


@pytest.fixture(scope="session")
def served(store_root: Path, log_dir: Path, served_config: Path,
           half_plus_two_models: Path) -> Iterator[ModelServer]:
    models = {name: str(store_root / name) for name in [*TOYS, "corrupt", "empty"]}
    half = half_plus_two_models
    models["half_plus_two"] = str(half / half_plus_two.CPU_MODEL)
    models["half_plus_two_2_versions"] = str(half / half_plus_two.TWO_VERSIONS_MODEL)
    extra = {"m3": 'model_version_policy { all {} } '
                   'version_labels { key: "stable" value: 1 } '
                   'version_labels { key: "canary" value: 2 }'}
    served_config.write_text(config_text(models, extra))
    # Labels on versions not loaded yet, at start: TF Serving wants this flag too.
    server = start_model_server(log_dir, "--model_config_file", str(served_config),
                                "--allow_version_labels_for_unavailable_models",
                                "--model_config_file_poll_wait_seconds", "0.5",
                                "--file_system_poll_wait_seconds", "0.5", name="ms-main")
    yield server
    server.stop()
