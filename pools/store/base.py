"""The model store contract: TF Serving's layout `<store>/<model>/<version>/saved_model.pb`.

Backends (local folder, S3) provide four primitives over *folders*; this base
class turns them into the public API: name and version checks, version folder
lookup (`00000123` is version 123) and the atomic download every caller relies on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from base.errors import InvalidArgument, NotFound
from base.names import check_model_name, check_version, is_valid_model_name, parse_version

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
TMP_PREFIX = ".tmp-"


def version_folders(folder_names: list[str]) -> dict[int, str]:
    """Version -> folder name, from a model folder's entries; non-versions are ignored.

    When two folders spell one version ("1" and "01"), the plain spelling wins,
    then the first in sort order, so the choice never depends on listing order.
    """
    found: dict[int, str] = {}
    for name in sorted(folder_names):
        version = parse_version(name)
        if version is None:
            continue
        if version not in found or name == str(version):
            found[version] = name
    return found


class ModelStore(ABC):
    """Read-only access to a model store. Thread-safe; every call is blocking I/O."""

    uri: str

    # -- primitives a backend provides -------------------------------------------------

    @abstractmethod
    def _model_folders(self) -> list[str]:
        """Names of the entries at the store's top level (unchecked)."""

    @abstractmethod
    def _version_folder_names(self, model: str) -> list[str]:
        """Names of the entries in a model's folder (unchecked); NotFound if it is absent."""

    @abstractmethod
    def _folder_size(self, model: str, folder: str) -> int:
        """Bytes of every file under `<model>/<folder>/`."""

    @abstractmethod
    def _fetch_folder(self, model: str, folder: str, dest: Path) -> None:
        """Copy every file under `<model>/<folder>/` into the existing empty folder `dest`."""

    @abstractmethod
    def model_uri(self, model: str) -> str:
        """The model's base path as a model server takes it (`--model_base_path`)."""

    # -- the public API -------------------------------------------------------------------

    def list_models(self) -> list[str]:
        return sorted({name for name in self._model_folders() if is_valid_model_name(name)})

    def list_versions(self, model: str) -> list[int]:
        return sorted(self._versions(model))

    def latest_version(self, model: str) -> int:
        versions = self._versions(model)
        if not versions:
            raise NotFound(f"model {model!r} has no versions in {self.uri}")
        return max(versions)

    def version_size(self, model: str, version: int) -> int:
        return self._folder_size(model, self._folder_of(model, version))

    def download(self, model: str, version: int, dest_dir: Path) -> Path:
        """Download one version to `dest_dir/<version>` atomically; returns that path.

        Files land in a `.tmp-*` folder inside `dest_dir` first and are renamed into
        place only once complete and holding a saved_model.pb, so a reader never sees
        half a model and a failure leaves nothing at the final path.
        """
        folder = self._folder_of(model, version)
        version = check_version(version)
        dest_dir = Path(dest_dir)
        final = dest_dir / str(version)
        if final.is_dir():
            return final
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=dest_dir))
        try:
            self._fetch_folder(model, folder, tmp)
            if not any((tmp / name).is_file() for name in SAVED_MODEL_FILES):
                raise NotFound(f"{self.uri}/{model}/{folder} holds no saved_model.pb")
            try:
                os.rename(tmp, final)
            except OSError:
                # Another download of the same version won the race: theirs is complete too.
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    # -- helpers --------------------------------------------------------------------------

    def _versions(self, model: str) -> dict[int, str]:
        return version_folders(self._version_folder_names(check_model_name(model)))

    def _folder_of(self, model: str, version: int) -> str:
        if isinstance(version, bool):
            raise InvalidArgument(f"invalid model version {version!r}")
        version = check_version(version)
        folder = self._versions(model).get(version)
        if folder is None:
            raise NotFound(f"model {model!r} has no version {version} in {self.uri}")
        return folder

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
