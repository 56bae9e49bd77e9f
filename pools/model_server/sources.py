"""Where a model's versions live: a local base path (served in place) or s3:// (downloaded)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Protocol

from base.errors import NotFound, Unavailable
from pools.store.base import version_folders

log = logging.getLogger(__name__)


class VersionSource(Protocol):
    def list_versions(self) -> list[int]:
        """Versions present now; NotFound when the base path does not exist."""

    def fetch(self, version: int) -> Path:
        """A local folder holding the version's SavedModel (blocking)."""

    def release(self, version: int) -> None:
        """The version was unloaded, or failed to load: drop any local copy."""

    def fingerprint(self, version: int) -> int:
        """What the version's files add up to now (their bytes): a failed version whose
        fingerprint changed was written further (an upload still under way when it was
        first seen) and is worth loading again."""


class LocalSource:
    def __init__(self, name: str, base_path: str) -> None:
        self.name = name
        self.base = Path(base_path.removeprefix("file://"))

    def _folders(self) -> dict[int, str]:
        try:
            entries = [e.name for e in os.scandir(self.base) if e.is_dir()]
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"Could not find base path for servable {self.name}") from exc
        return version_folders(entries)

    def list_versions(self) -> list[int]:
        return sorted(self._folders())

    def fetch(self, version: int) -> Path:
        folder = self._folders().get(version)
        if folder is None:
            raise NotFound(f"Version {version} of servable {self.name} is gone from its "
                           "base path")
        return self.base / folder

    def release(self, version: int) -> None:
        return None

    def fingerprint(self, version: int) -> int:
        folder = self._folders().get(version)
        if folder is None:
            raise NotFound(f"Version {version} of servable {self.name} is gone")
        return sum(f.stat().st_size for f in (self.base / folder).rglob("*") if f.is_file())


class S3Source:
    """An s3:// base path through pools.store; versions are downloaded under `cache_root`."""

    def __init__(self, name: str, base_path: str, cache_root: Path) -> None:
        from pools.store import open_store, split_base_path

        self.name = name
        root, self.folder = split_base_path(base_path)
        self.store = open_store(root)
        digest = hashlib.sha1(base_path.encode()).hexdigest()[:12]
        self.cache = cache_root / f"{self.folder}-{digest}"

    def list_versions(self) -> list[int]:
        try:
            return self.store.list_versions(self.folder)
        except NotFound as exc:
            log.info("servable %s: %s", self.name, exc.message)
            raise NotFound(f"Could not find base path for servable {self.name}") from exc
        except Unavailable as exc:
            # The store's message names its endpoint: for the log only.
            log.warning("servable %s: %s", self.name, exc.message)
            raise Unavailable(f"The model store cannot be reached for servable "
                              f"{self.name}") from exc

    def fetch(self, version: int) -> Path:
        try:
            return self.store.download(self.folder, version, self.cache)
        except Unavailable as exc:
            log.warning("servable %s version %s: %s", self.name, version, exc.message)
            raise Unavailable(f"The model store cannot be reached for version {version} of "
                              f"servable {self.name}") from exc

    def release(self, version: int) -> None:
        shutil.rmtree(self.cache / str(version), ignore_errors=True)

    def fingerprint(self, version: int) -> int:
        return self.store.version_size(self.folder, version)


def open_source(name: str, base_path: str, cache_root: Path) -> VersionSource:
    if base_path.startswith("s3://"):
        return S3Source(name, base_path, cache_root)
    return LocalSource(name, base_path)
