"""Signature metadata as TF Serving reports it, read from saved_model.pb itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from base.errors import FailedPrecondition

SERVE_TAG = "serve"


def read_signature_defs(path: Path) -> Any:
    """The `serve` MetaGraph's signature_def map (a SignatureDefMap proto)."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if pb.is_file():
            saved.ParseFromString(pb.read_bytes())
        elif pbtxt.is_file():
            text_format.Parse(pbtxt.read_text(), saved)
        else:
            raise FailedPrecondition(
                "SavedModel not found in the version's folder (no saved_model.pb)")
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        raise FailedPrecondition(f"Could not parse the SavedModel: {exc}") from exc
    graphs = [g for g in saved.meta_graphs if SERVE_TAG in g.meta_info_def.tags]
    if not graphs:
        raise FailedPrecondition(f"The SavedModel has no MetaGraph tagged {SERVE_TAG!r}")
    result = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in graphs[0].signature_def.items():
        if key.startswith("__"):  # TF2 internal signatures (e.g. __saved_model_init_op)
            continue
        result.signature_def[key].CopyFrom(sig)
    return result


def metadata_json(name: str, version: int, signature_defs: Any) -> dict[str, Any]:
    """The body of REST GET .../metadata, shaped like TF Serving's."""
    from google.protobuf.json_format import MessageToDict

    as_dict = MessageToDict(signature_defs, preserving_proto_field_name=True,
                            always_print_fields_with_no_presence=True)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": as_dict},
    }
