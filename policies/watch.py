"""Live reload: re-read the policy file when it changes, keep the last good policy on a bad edit."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from policies.loader import LoadedPolicy, PolicyError, load_policy
from policies.schema import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What one `poll()` found: nothing new, a new good policy, or a bad edit."""

    changed: bool
    loaded: LoadedPolicy | None = None
    error: PolicyError | None = None


@dataclass
class PolicyWatcher:
    """Polls one file. The mtime/size is a cheap first check; the content hash decides."""

    path: Path
    current: LoadedPolicy | None = None
    last_error: PolicyError | None = None
    last_error_at: float | None = None
    loaded_at: float | None = None
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _bad_digest: str | None = field(default=None, repr=False)

    @property
    def policy(self) -> Policy:
        if self.current is None:
            raise RuntimeError("no valid policy loaded yet")
        return self.current.policy

    def poll(self) -> ReloadResult:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._stamp:
            return ReloadResult(False)
        self._stamp = stamp
        try:
            loaded = load_policy(self.path)
        except PolicyError as exc:
            try:
                digest = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
            if digest == self._bad_digest:
                return ReloadResult(False)  # same bad content touched again: reported already
            self._bad_digest = digest
            self.last_error, self.last_error_at = exc, time.time()
            log.error("policy %s rejected, keeping the last good one: %s", self.path, exc)
            return ReloadResult(True, error=exc)
        self._bad_digest = None
        if self.current is not None and loaded.digest == self.current.digest:
            self.last_error = None
            return ReloadResult(False)  # touched or reverted to the running content
        self.current, self.loaded_at, self.last_error = loaded, time.time(), None
        log.info("policy %s loaded (sha256 %s)", self.path, loaded.digest[:12])
        return ReloadResult(True, loaded=loaded)

    def status(self) -> dict[str, object]:
        """The admin-facing view: which policy runs, and the last rejected edit if any."""
        return {
            "path": str(self.path),
            "valid": self.last_error is None,
            "digest": self.current.digest if self.current else None,
            "loaded_at": self.loaded_at,
            "errors": [{"path": e.path, "line": e.line, "message": e.message}
                       for e in (self.last_error.errors if self.last_error else [])],
            "error_at": self.last_error_at if self.last_error else None,
        }
