"""Tiny real SavedModels, `y = a*x + b`, made fast enough to build a thousand.

TensorFlow builds one template SavedModel per process. Its `a` and `b` are not
variables but a lookup table initialised from the asset `params.tsv` when the
model loads, so a new model is a copy of the template with another asset file:
no TensorFlow call, well under a millisecond of work per model. The models are
still plain SavedModels that any TF Serving loads.

Signatures:
- `serving_default`: input `x` float32 [batch] -> output `y` float32 [batch];
- `bytes_length`: input `data_bytes` string [batch] -> output `length` int32 [batch]
  (exercises `{"b64": ...}` values).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

PARAMS_ASSET = "params.tsv"
PAD_ASSET = "pad.bin"

_template_lock = threading.Lock()
_template_dir: Path | None = None


def _build_template(target: Path) -> None:
    import tensorflow as tf  # imported lazily: it costs seconds

    params = target.parent / PARAMS_ASSET
    params.write_text("a\t1.0\nb\t0.0\n")

    class Affine(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            init = tf.lookup.TextFileInitializer(
                str(params), tf.string, 0, tf.string, 1, delimiter="\t")
            self.table = tf.lookup.StaticHashTable(init, default_value="0")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            a = tf.strings.to_number(self.table.lookup(tf.constant("a")), tf.float32)
            b = tf.strings.to_number(self.table.lookup(tf.constant("b")), tf.float32)
            return {"y": a * x + b}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data_bytes")])
        def bytes_length(self, data_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"length": tf.strings.length(data_bytes)}

    module = Affine()
    tf.saved_model.save(module, str(target), signatures={
        "serving_default": module.predict, "bytes_length": module.bytes_length})
    if not (target / "assets" / PARAMS_ASSET).is_file():
        raise RuntimeError(f"template lacks its {PARAMS_ASSET} asset")


def _remove_template(root: Path, owner: int) -> None:
    # A forked child inherits the hook; only the process that built the template removes it.
    if os.getpid() == owner:
        shutil.rmtree(root, ignore_errors=True)


def template_dir() -> Path:
    """A SavedModel version folder to copy from, built once per process, removed at its exit."""
    global _template_dir
    with _template_lock:
        if _template_dir is None or not _template_dir.exists():
            root = Path(tempfile.mkdtemp(prefix="tierserve-template-"))
            atexit.register(_remove_template, root, os.getpid())
            _build_template(root / "1")
            _template_dir = root / "1"
        return _template_dir


def write_version(version_dir: str | os.PathLike[str], a: float, b: float = 0.0,
                  pad_bytes: int = 0) -> Path:
    """Write one model version `y = a*x + b` into `version_dir` (must not exist yet).

    `pad_bytes` adds an asset of that size, for tests of byte bounds.
    """
    dest = Path(version_dir)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.copytree(template_dir(), tmp)
    (tmp / "assets" / PARAMS_ASSET).write_text(f"a\t{a!r}\nb\t{b!r}\n")
    if pad_bytes:
        (tmp / "assets" / PAD_ASSET).write_bytes(os.urandom(pad_bytes))
    tmp.rename(dest)
    return dest


def write_model(store_root: str | os.PathLike[str], name: str, versions: dict[int, float],
                b: float = 0.0, pad_bytes: int = 0) -> Path:
    """Write model `name` with `{version: a}` into a local store folder."""
    model_dir = Path(store_root) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    for version, a in versions.items():
        write_version(model_dir / str(version), a, b, pad_bytes)
    return model_dir


def expected(a: float, b: float, xs: list[float]) -> list[float]:
    """What the model answers, in float32 as TensorFlow computes it."""
    import numpy as np

    return [float(v) for v in np.float32(a) * np.asarray(xs, np.float32) + np.float32(b)]
