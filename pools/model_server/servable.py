"""One loaded SavedModel version: its signatures and how to run them (blocking, TF)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from base.errors import FailedPrecondition, InvalidArgument, NotFound
from pools.model_server import signatures

DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: np.dtype[Any]


class Servable:
    """A SavedModel loaded with tf.saved_model.load; `predict` is thread-safe."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self.path = path
        self.signature_defs = signatures.read_signature_defs(path)
        try:
            self._model = tf.saved_model.load(str(path), tags=["serve"])
        except Exception as exc:  # TF raises many types for a bad model
            raise FailedPrecondition(f"Failed to load SavedModel: {exc}") from exc
        self._functions = dict(self._model.signatures)
        if not self._functions:
            raise FailedPrecondition("The SavedModel has no serving signatures")
        self.inputs: dict[str, dict[str, InputSpec]] = {}
        for key, func in self._functions.items():
            specs = func.structured_input_signature[1]
            self.inputs[key] = {name: InputSpec(name, np.dtype(spec.dtype.as_numpy_dtype))
                                for name, spec in specs.items()}

    def signature(self, name: str) -> dict[str, InputSpec]:
        key = name or DEFAULT_SIGNATURE
        if key not in self._functions:
            raise InvalidArgument(f"Serving signature key \"{key}\" not found.")
        return self.inputs[key]

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter: list[str] | None = None) -> dict[str, np.ndarray]:
        import tensorflow as tf

        specs = self.signature(signature_name)
        key = signature_name or DEFAULT_SIGNATURE
        missing = sorted(set(specs) - set(inputs))
        extra = sorted(set(inputs) - set(specs))
        expected = f"Inputs expected to be in the set {{{','.join(sorted(specs))}}}."
        if extra:
            raise InvalidArgument(
                f"input tensor alias not found in signature: {extra[0]}. {expected}")
        if missing:
            raise InvalidArgument(f"Missing input tensor alias: {missing[0]}. {expected}")
        tensors = {}
        for name, value in inputs.items():
            try:
                tensors[name] = tf.constant(value, dtype=tf.as_dtype(specs[name].dtype))
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(
                    f"Input {name}: cannot convert to {specs[name].dtype}: {exc}") from exc
        try:
            result = self._functions[key](**tensors)
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
            raise InvalidArgument(_short(exc)) from exc
        outputs = {name: t.numpy() for name, t in result.items()}
        if output_filter:
            unknown = [n for n in output_filter if n not in outputs]
            if unknown:
                raise InvalidArgument(f"output tensor alias not found in signature: {unknown[0]}")
            outputs = {n: outputs[n] for n in output_filter}
        return outputs


    def method_name(self, signature_name: str) -> str:
        key = signature_name or DEFAULT_SIGNATURE
        self.signature(key)
        return str(self.signature_defs.signature_def[key].method_name)

    def run_examples(self, signature_name: str, method: str,
                     serialized: list[bytes]) -> dict[str, np.ndarray]:
        """Run a classify or regress signature on serialized tf.Examples."""
        from pools.model_server.examples import METHOD_NAMES

        key = signature_name or DEFAULT_SIGNATURE
        specs = self.signature(key)
        wanted = METHOD_NAMES[method]
        if self.method_name(key) != wanted:
            raise InvalidArgument(f"Expected {method} signature method_name to be {wanted}. "
                                  f"Was: {self.method_name(key)}")
        if len(specs) != 1:
            raise InvalidArgument(f"Expected one input Tensor in signature {key}")
        name = next(iter(specs))
        return self.predict(key, {name: np.array(serialized, dtype=object)})


def _short(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_version_dir(path: Path) -> None:
    if not path.is_dir():
        raise NotFound("The version's folder is missing")
