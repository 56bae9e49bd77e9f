"""Version labels (`stable` -> 3): the one check of their shape, for the policy and the pool.

`labels: {model: {label: version}}`, as TF Serving's `version_labels` of a model config.
A label is a name as a model's is (it goes into URLs: `/v1/models/m/labels/stable`);
a version is a positive integer.
"""

from __future__ import annotations

from typing import Any

from base.names import MODEL_NAME_RE

LabelMap = dict[str, dict[str, int]]  # model -> label -> version


def unknown_label(label: str) -> str:
    """TF Serving's message for a label its config does not hold (400 INVALID_ARGUMENT)."""
    return f"Unrecognized servable version label: {label}"


def parse_labels(raw: Any) -> LabelMap:
    """The label map of a `labels:` value; ValueError naming the entry at fault."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("labels: must map model names to {label: version}")
    out: LabelMap = {}
    for model, labels in raw.items():
        if not isinstance(model, str) or not MODEL_NAME_RE.fullmatch(model):
            raise ValueError(f"labels: invalid model name {model!r}")
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f"labels.{model}: must map label names to versions")
        out[model] = {}
        for label, version in labels.items():
            if not isinstance(label, str) or not MODEL_NAME_RE.fullmatch(label):
                raise ValueError(f"labels.{model}: invalid label name {label!r} (must match "
                                 f"{MODEL_NAME_RE.pattern})")
            if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
                raise ValueError(f"labels.{model}.{label}: version must be a positive "
                                 f"integer, not {version!r}")
            out[model][label] = version
    return out
