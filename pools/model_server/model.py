"""One model: its versions, their TF Serving states, and the sync that loads and unloads them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    TierserveError,
    Unavailable,
)
from pools.model_server import redact
from pools.model_server.sources import VersionSource
from pools.model_server.versions import VersionPolicy, to_unload

log = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
# Unloaded versions stay in the status as END, like TF Serving; only the newest few.
KEEP_ENDED = 5
# A load that failed for a passing reason (store unreachable) is retried by later syncs,
# like TF Serving's max_num_load_retries; a broken model is not, until its files change
# (it was seen while still being uploaded, or it was written again).
MAX_LOAD_ATTEMPTS = 5
_RETRYABLE = (Unavailable, DeadlineExceeded)

Loader = Callable[[Path], Any]
LoadObserver = Callable[[float, bool, str], None]  # seconds, ok, model path
UnloadHook = Callable[[], None]


@dataclass(frozen=True)
class VersionState:
    version: int
    state: str
    error: TierserveError | None = None
    servable: Any = None


class ModelEntry:
    """The versions of one configured model. `sync` is blocking and serialized per model."""

    def __init__(self, config: Any, source: VersionSource, loader: Loader,
                 on_load: LoadObserver | None = None,
                 on_unload: UnloadHook | None = None) -> None:
        self.config = config
        self.name: str = config.name
        self.policy = VersionPolicy.from_proto(config.model_version_policy)
        self.source = source
        self._loader = loader
        self._on_load = on_load or (lambda _s, _ok, _path: None)
        self._on_unload = on_unload or (lambda: None)
        self._sync_lock = threading.Lock()
        self._lock = threading.Lock()
        self._states: dict[int, VersionState] = {}
        self.source_error: TierserveError | None = None
        self.retired = False
        self._wanted: frozenset[int] = frozenset()
        self._attempts: dict[int, int] = {}
        self._failed_prints: dict[int, int | None] = {}  # the files a failed load saw

    # -- reads (any thread, cheap) ----------------------------------------------------------

    def states(self) -> list[VersionState]:
        """Tracked versions, newest first; a model with none reports its error as version 0."""
        with self._lock:
            states = sorted(self._states.values(), key=lambda s: -s.version)
        if not states and self.source_error is not None:
            return [VersionState(0, END, self.source_error)]
        if not states:
            return [VersionState(0, START)]
        return states

    def available_versions(self) -> list[int]:
        with self._lock:
            return sorted(v for v, s in self._states.items() if s.state == AVAILABLE)

    def resolve(self, version: int | None = None, label: str | None = None) -> tuple[int, Any]:
        """(version, servable) for a request: a label, a version, or the latest AVAILABLE."""
        if label is not None:
            labelled = self.config.version_labels.get(label)
            if labelled is None:
                raise InvalidArgument(f"Unrecognized servable version label: {label}")
            version = labelled
        with self._lock:
            if version is None:
                ready = [s for s in self._states.values() if s.state == AVAILABLE]
                if not ready:
                    raise NotFound(f"Servable not found for request: Latest({self.name})")
                best = max(ready, key=lambda s: s.version)
                return best.version, best.servable
            state = self._states.get(version)
        if state is None or state.state != AVAILABLE:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return version, state.servable

    def failures(self) -> list[VersionState]:
        """After a sync: the wanted versions that failed, or the reason nothing serves."""
        with self._lock:
            states = dict(self._states)
            wanted = self._wanted
        failed = [states[v] for v in sorted(wanted) if v in states and states[v].error]
        if failed:
            return failed
        if any(s.state == AVAILABLE for s in states.values()):
            return []
        return [VersionState(0, END, self.source_error or NotFound(
            f"No versions of servable {self.name} found under its base path"))]

    # -- changes (blocking) -----------------------------------------------------------------

    def sync(self) -> None:
        """Bring loaded versions in line with the base path and the version policy."""
        with self._sync_lock:
            if self.retired:
                return
            try:
                on_disk = set(self.source.list_versions())
            except Exception as exc:
                # Keep what is loaded (a transient listing error must not unload a model).
                self._source_failed(exc)
                return
            self.source_error = None if on_disk else NotFound(
                f"No versions of servable {self.name} found under its base path")
            wanted = self.policy.select(on_disk)
            with self._lock:
                self._wanted = frozenset(wanted)
                # A failed version that left the disk may come back fixed: forget its failure.
                for version in [v for v, s in self._states.items()
                                if s.error is not None and v not in on_disk]:
                    self._forget_failure(version)
            for version in self._written_since_failing(wanted):
                with self._lock:
                    self._forget_failure(version)
            with self._lock:
                todo = [v for v in sorted(wanted, reverse=True) if self._needs_load(v)]
            for version in todo:
                self._load(version)
            with self._lock:
                loaded = [v for v, s in self._states.items() if s.state == AVAILABLE]
                ready = any(self._states[v].state == AVAILABLE
                            for v in wanted if v in self._states)
            gone = to_unload(loaded, wanted, on_disk, ready)
            for version in gone:
                self._unload(version)
            self._trim()
        if gone:
            self._on_unload()

    def _forget_failure(self, version: int) -> None:
        self._states.pop(version, None)
        self._attempts.pop(version, None)
        self._failed_prints.pop(version, None)

    def _written_since_failing(self, wanted: set[int] | frozenset[int]) -> list[int]:
        """The wanted versions that failed for good but whose files changed since."""
        with self._lock:
            failed = [v for v in wanted if v in self._failed_prints]
        changed = []
        for version in failed:
            now = self._fingerprint(version)
            # None: cannot tell now; the failure stays until a sync that can.
            if now is not None and now != self._failed_prints[version]:
                changed.append(version)
        return changed

    def _fingerprint(self, version: int) -> int | None:
        """The source's fingerprint of the version, or None when it cannot be read."""
        try:
            return self.source.fingerprint(version)
        except Exception:
            return None

    def _source_failed(self, exc: Exception) -> None:
        error = exc if isinstance(exc, TierserveError) else Internal(
            f"Listing versions of {self.name}: {exc}")
        public = redact.public(error)
        if self.source_error is None or self.source_error.message != public.message:
            log.warning("model %s: listing its base path %s failed: %s", self.name,
                        self.config.base_path, error.message)
        self.source_error = public

    def _needs_load(self, version: int) -> bool:
        state = self._states.get(version)
        if state is None or state.state not in (AVAILABLE, END):
            return True
        if state.state == AVAILABLE:
            return False
        if state.error is None:  # unloaded earlier, wanted again
            return True
        return (isinstance(state.error, _RETRYABLE)
                and self._attempts.get(version, 0) < MAX_LOAD_ATTEMPTS)

    def unload_all(self) -> None:
        with self._sync_lock:
            self.retired = True
            versions = self.available_versions()
            for version in versions:
                self._unload(version)
            self._trim()
        if versions:
            self._on_unload()

    def update_config(self, config: Any) -> None:
        """Same base path, other policy or labels: applied by the next sync."""
        with self._sync_lock:
            self.config = config
            self.policy = VersionPolicy.from_proto(config.model_version_policy)

    def _set(self, state: VersionState) -> None:
        with self._lock:
            self._states[state.version] = state

    def _load(self, version: int) -> None:
        self._set(VersionState(version, LOADING))
        # Taken before the files are read: an upload that goes on during the load then
        # shows as a change at the next sync.
        seen = self._fingerprint(version)
        started = time.monotonic()
        try:
            servable = self._loader(self.source.fetch(version))
        except Exception as exc:
            error = exc if isinstance(exc, TierserveError) else Internal(str(exc))
            # The whole text to the log; clients get it without paths or endpoints.
            log.warning("model %s version %s (base path %s) failed to load: %s", self.name,
                        version, self.config.base_path, error.message)
            error = redact.public(error)
            self._on_load(time.monotonic() - started, False, self._model_path(version))
            # A half-uploaded copy must not be what a later attempt loads again.
            self.source.release(version)
            with self._lock:
                self._attempts[version] = self._attempts.get(version, 0) + 1
                if not isinstance(error, _RETRYABLE):
                    self._failed_prints[version] = seen
            self._set(VersionState(version, END, error))
            return
        self._on_load(time.monotonic() - started, True, self._model_path(version))
        with self._lock:
            self._attempts.pop(version, None)
            self._failed_prints.pop(version, None)
        log.info("model %s version %s AVAILABLE", self.name, version)
        self._set(VersionState(version, AVAILABLE, servable=servable))

    def _model_path(self, version: int) -> str:
        """The version's path as configured (TF Serving's model_path metric label)."""
        return f"{self.config.base_path.rstrip('/')}/{version}"

    def _unload(self, version: int) -> None:
        self._set(VersionState(version, UNLOADING))
        # In-flight requests hold their own reference to the servable: dropping ours
        # frees it only once they are done.
        self.source.release(version)
        self._set(VersionState(version, END))
        log.info("model %s version %s unloaded", self.name, version)

    def _trim(self) -> None:
        with self._lock:
            ended = sorted(v for v, s in self._states.items() if s.state == END)
            for version in ended[:-KEEP_ENDED]:
                del self._states[version]
