"""TF Serving's half_plus_two test models, rebuilt at test time so a plain clone has them.

The graph follows TF Serving's own test model (a TF1 graph with variables):
`y = a*x + b`, `y2 = a*x + c`, `y3 = a*x2 + c` with a = 0.5, b = 2, c = 3, where
`x` and `x2` are parsed from serialized tf.Examples fed to `tf_example`.

Signatures, with the tensor names TF Serving's published metadata shows:
- `serving_default` (predict): `x` (x:0) -> `y` (y:0);
- `classify_x_to_y`: `inputs` (tf_example:0) -> `scores` (y:0);
- `regress_x_to_y` / `regress_x_to_y2`: `inputs` (tf_example:0) -> `outputs` (y:0 / y2:0);
- `regress_x2_to_y3`: `inputs` (x2:0) -> `outputs` (y3:0);
- the two-version model also has `classify_x2_to_y3`: `inputs` (x2:0) -> `scores` (y3:0).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CPU_MODEL = "saved_model_half_plus_two_cpu"
TWO_VERSIONS_MODEL = "saved_model_half_plus_two_2_versions"
CPU_VERSIONS = (123,)
TWO_VERSIONS = (123, 124)
ASSET = "foo.txt"
ASSET_TEXT = "asset-file-contents"


def _signature(method: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
    import tensorflow as tf

    info = tf.compat.v1.saved_model.utils.build_tensor_info
    return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        {k: info(t) for k, t in inputs.items()}, {k: info(t) for k, t in outputs.items()}, method)


def write_version(version_dir: Path, *, classify_x2: bool = False) -> Path:
    """Write one half_plus_two SavedModel version into `version_dir` (must not exist yet)."""
    import tensorflow as tf  # imported lazily: it costs seconds

    v1 = tf.compat.v1
    source = version_dir.parent / f".{version_dir.name}.asset-source"
    source.mkdir(parents=True)
    (source / ASSET).write_text(ASSET_TEXT)
    try:
        with tf.Graph().as_default(), v1.Session() as session:
            a = v1.Variable(0.5, name="a")
            b = v1.Variable(2.0, name="b")
            c = v1.Variable(3.0, name="c")
            serialized = v1.placeholder(tf.string, name="tf_example")
            features = v1.io.parse_example(serialized, {
                "x": v1.io.FixedLenFeature([1], tf.float32),
                "x2": v1.io.FixedLenFeature([1], tf.float32, default_value=[0.0])})
            for feature in features.values():
                # TF1's ParseExample took any input as a batch; TF2's keeps an unknown rank.
                feature.set_shape([None, 1])
            x = tf.identity(features["x"], name="x")
            x2 = tf.identity(features["x2"], name="x2")
            y = tf.add(tf.multiply(a, x), b, name="y")
            y2 = tf.add(tf.multiply(a, x), c, name="y2")
            y3 = tf.add(tf.multiply(a, x2), c, name="y3")
            asset = tf.constant(str(source / ASSET), name="asset_path")
            v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset)
            predict, classify, regress = (f"tensorflow/serving/{m}"
                                          for m in ("predict", "classify", "regress"))
            signatures = {
                "serving_default": _signature(predict, {"x": x}, {"y": y}),
                "classify_x_to_y": _signature(classify, {"inputs": serialized}, {"scores": y}),
                "regress_x_to_y": _signature(regress, {"inputs": serialized}, {"outputs": y}),
                "regress_x_to_y2": _signature(regress, {"inputs": serialized}, {"outputs": y2}),
                # Float inputs, not tf.Examples: TF's own helpers refuse to build these two.
                "regress_x2_to_y3": _signature(regress, {"inputs": x2}, {"outputs": y3}),
            }
            if classify_x2:
                signatures["classify_x2_to_y3"] = _signature(classify, {"inputs": x2},
                                                             {"scores": y3})
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(version_dir))
            builder.add_meta_graph_and_variables(
                session, [v1.saved_model.tag_constants.SERVING], signature_def_map=signatures,
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS))
            builder.save()
    finally:
        shutil.rmtree(source, ignore_errors=True)
    return version_dir


def write_models(root: Path) -> Path:
    """Write both models under `root`, laid out as TF Serving's testdata folder; returns root."""
    for version in CPU_VERSIONS:
        write_version(root / CPU_MODEL / f"{version:08d}")
    for version in TWO_VERSIONS:
        write_version(root / TWO_VERSIONS_MODEL / f"{version:08d}", classify_x2=True)
    return root
