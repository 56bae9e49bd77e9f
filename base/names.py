"""Model names and versions: the checks that keep a name from ever becoming a path."""

from __future__ import annotations

import re

from base.errors import InvalidArgument

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_valid_model_name(name: str) -> bool:
    # The first character is alphanumeric, so "." and ".." can never match.
    return bool(MODEL_NAME_RE.fullmatch(name))


def check_model_name(name: str) -> str:
    if not is_valid_model_name(name):
        raise InvalidArgument(
            f"invalid model name {name!r}: must match {MODEL_NAME_RE.pattern}")
    return name


def parse_version(text: str | int) -> int | None:
    """A positive integer version from a folder name or URL part; None otherwise.

    Leading zeros are allowed (TF Serving's testdata uses `00000123`).
    """
    if isinstance(text, int):
        return text if text > 0 else None
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value > 0 else None


def check_version(text: str | int) -> int:
    version = parse_version(text)
    if version is None:
        raise InvalidArgument(f"invalid model version {text!r}: must be a positive integer")
    return version
