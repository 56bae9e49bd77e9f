"""The cache folder: `<cache_dir>/<model>/<version>/`, TF Serving's layout. Blocking I/O.

Downloads arrive atomically (the store renames a finished `.tmp-*` folder into
place), so on start every version folder holding a saved_model.pb is whole and
everything else is a leftover of a crash.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.names import is_valid_model_name, parse_version

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
POLICY_STATE_FILE = ".eviction-state.json"


@dataclass(frozen=True)
class Found:
    model: str
    version: int
    size_bytes: int
    mtime: float


def folder_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def version_dir(cache_dir: Path, model: str, version: int) -> Path:
    return cache_dir / model / str(version)


def is_whole(cache_dir: Path, model: str, version: int) -> bool:
    """The version's folder is there with its saved_model (not deleted under the pool)."""
    path = version_dir(cache_dir, model, version)
    return any((path / name).is_file() for name in SAVED_MODEL_FILES)


def scan(cache_dir: Path) -> list[Found]:
    """Every whole model version in the cache folder; leftovers are deleted on the way."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found: list[Found] = []
    for model_dir in sorted(cache_dir.iterdir()):
        if not model_dir.is_dir() or not is_valid_model_name(model_dir.name):
            continue
        for child in sorted(model_dir.iterdir()):
            version = parse_version(child.name)
            whole = version is not None and str(version) == child.name and any(
                (child / name).is_file() for name in SAVED_MODEL_FILES)
            if child.name.startswith(TMP_PREFIX) or (child.is_dir() and not whole):
                log.info("deleting leftover %s", child)
                shutil.rmtree(child, ignore_errors=True)
            elif whole and version is not None:
                found.append(Found(model_dir.name, version, folder_size(child),
                                   child.stat().st_mtime))
        if not any(model_dir.iterdir()):
            model_dir.rmdir()
    return found


def delete_version(cache_dir: Path, model: str, version: int) -> None:
    """Remove a version folder; it disappears in one rename, so a reader never sees half."""
    path = version_dir(cache_dir, model, version)
    if not path.exists():
        return
    doomed = path.with_name(f"{TMP_PREFIX}deleting-{version}")
    shutil.rmtree(doomed, ignore_errors=True)
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    try:
        path.parent.rmdir()  # the model folder, once empty
    except OSError:
        pass


def save_state(cache_dir: Path, state: dict[str, Any]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)  # the folder may have been deleted
    target = cache_dir / POLICY_STATE_FILE
    tmp = target.with_name(f"{TMP_PREFIX}{POLICY_STATE_FILE}")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, target)


def load_state(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir / POLICY_STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
