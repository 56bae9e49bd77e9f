"""Give an unloaded model's memory back, off the request and reload paths.

A SavedModel's Python objects hold reference cycles, so they go only with a full
garbage collection, which walks every tracked object while it holds the GIL: ~0.5 s
for TensorFlow's own objects alone, unless they are frozen first (`freeze_long_lived`,
then a collection walks the models only: milliseconds). So the collection runs in a
background thread, at most once per interval however many unloads asked for it,
followed by glibc's malloc_trim (glibc keeps freed heap otherwise, as TF Serving's
users see).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time

log = logging.getLogger(__name__)


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def freeze_long_lived() -> int:
    """Put every object alive now (TensorFlow's import leaves ~270,000) out of the
    collector's sight: they live as long as the process, and a full collection that walks
    them takes ~0.5 s of GIL, during which no prediction runs. Call it once, before any
    model loads (a model frozen in would never be freed). Returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class MemoryReleaser:
    def __init__(self, min_interval_s: float = 10.0) -> None:
        self.min_interval_s = min_interval_s
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._libc = _load_libc()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Some model was unloaded: release memory soon (never blocks)."""
        if self.min_interval_s < 0:
            return  # disabled: Python's own collections will get there
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mem-release",
                                            daemon=True)
            self._thread.start()
        self._wanted.set()

    def release_now(self) -> None:
        started = time.monotonic()
        collected = gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)
        log.info("released memory: %d objects collected in %.3f s", collected,
                 time.monotonic() - started)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            self.release_now()
            self._stop.wait(self.min_interval_s)

    def close(self) -> None:
        self._stop.set()
        self._wanted.set()
