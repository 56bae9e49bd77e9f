"""The cold pool's version labels, read from a YAML or JSON file and re-read when it changes.

The file holds `labels: {model: {label: version}}` at its top level: the policy file itself
(what `tierserve up` passes) or a file with only that key. It is stat'ed at most once per
`CHECK_EVERY_S` when a label is asked for; a file that cannot be read or holds bad labels
keeps the last good map (and is logged), so a bad edit never drops a label in use.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import yaml

from base.errors import InvalidArgument
from base.labels import LabelMap, parse_labels, unknown_label

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


def read_labels(path: Path) -> LabelMap:
    """The file's `labels:`; ValueError / OSError if it cannot be used."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return parse_labels(data.get("labels"))


class Labels:
    def __init__(self, path: Path | None = None, labels: LabelMap | None = None) -> None:
        self.path = path
        self.map: LabelMap = dict(labels or {})
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self.error: str | None = None  # why the file's current text is not in use
        if path is not None:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed (checked at most every CHECK_EVERY_S)."""
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            self.map = read_labels(self.path)
            self._stamp = stamp
            self.error = None
            log.info("version labels from %s: %s", self.path, self.map)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            if self.error != str(exc):
                log.warning("version labels: keeping the last good ones: %s", exc)
            self.error = str(exc)

    def resolve(self, model: str, label: str) -> int:
        """The version `label` names; TF Serving's 400 for a label it does not know."""
        self.refresh()
        version = self.map.get(model, {}).get(label)
        if version is None:
            raise InvalidArgument(unknown_label(label))
        return version

    def of(self, model: str) -> dict[str, int]:
        self.refresh()
        return dict(self.map.get(model, {}))
