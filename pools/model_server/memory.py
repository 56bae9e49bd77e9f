"""Give freed heap back to the OS after unloads (glibc keeps it otherwise, as TF Serving sees)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

_libc: ctypes.CDLL | None = None
_tried = False


def release_memory() -> None:
    """Collect cycles, then malloc_trim(0) on glibc; a no-op elsewhere."""
    global _libc, _tried
    gc.collect()
    if not _tried:
        _tried = True
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _libc = libc if libc is not None and hasattr(libc, "malloc_trim") else None
        except OSError:
            _libc = None
    if _libc is not None:
        _libc.malloc_trim(0)
