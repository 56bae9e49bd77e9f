"""Keep TensorFlow's native start-up lines (CUDA, oneDNN, absl) off the user's console.

TensorFlow's C++ side writes to file descriptor 2 directly, before and regardless of
TF_CPP_MIN_LOG_LEVEL, so redirecting `sys.stderr` is not enough: the descriptor itself is
pointed at the component's log file while the work that loads TensorFlow runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Descriptors 1 and 2 append to `log_path` inside the block, and are restored after."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)
