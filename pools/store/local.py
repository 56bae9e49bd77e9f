"""A model store in a local folder (`/path` or `file:///path`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from base.errors import InvalidArgument, NotFound
from pools.store.base import TMP_PREFIX, ModelStore


class LocalStore(ModelStore):
    """Every path it touches resolves inside the root: symlinks may not lead out of it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def model_uri(self, model: str) -> str:
        return str(self._model_dir(model))

    def _inside(self, path: Path) -> Path | None:
        """`path` resolved, or None when it leaves the store."""
        real = path.resolve()
        return real if real.is_relative_to(self.root) else None

    def _entries(self, folder: Path) -> list[str]:
        try:
            return [e.name for e in os.scandir(folder)
                    if not e.name.startswith(TMP_PREFIX) and self._is_dir_inside(Path(e.path))]
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{folder} does not exist") from None

    def _is_dir_inside(self, path: Path) -> bool:
        real = self._inside(path)
        return real is not None and real.is_dir()

    def _model_folders(self) -> list[str]:
        return self._entries(self.root)

    def _model_dir(self, model: str) -> Path:
        path = self.root / model
        if not self._is_dir_inside(path):
            raise NotFound(f"model {model!r} not found in {self.uri}")
        return path

    def _version_folder_names(self, model: str) -> list[str]:
        return self._entries(self._model_dir(model))

    def _files(self, model: str, folder: str) -> Iterator[tuple[Path, Path]]:
        """(path relative to the version folder, real source path) of every file."""
        top = self._model_dir(model) / folder
        seen: set[Path] = set()
        stack: list[tuple[Path, Path]] = [(Path(), top)]
        while stack:
            rel, path = stack.pop()
            real = self._inside(path)
            if real is None:
                raise InvalidArgument(f"{path} leads outside the store {self.uri}")
            if real.is_dir():
                if real in seen:  # a symlink loop
                    continue
                seen.add(real)
                stack.extend((rel / entry.name, Path(entry.path))
                             for entry in os.scandir(path))
            elif real.is_file():
                yield rel, real

    def _folder_size(self, model: str, folder: str) -> int:
        return sum(real.stat().st_size for _, real in self._files(model, folder))

    def _fetch_folder(self, model: str, folder: str, dest: Path) -> None:
        for rel, real in self._files(model, folder):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_file(real, target)

    def _copy_file(self, source: Path, target: Path) -> None:
        shutil.copyfile(source, target)
