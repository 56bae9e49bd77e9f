"""TF Serving's REST protocol, written once (pure: no I/O, no web framework).

The grammar, from TF Serving's http_rest_api_handler.cc (its patterns are
case-insensitive; so is this one, for the fixed words and the verb):

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   model metadata
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:{verb}     verb: predict|classify|regress

and the status answer `{"model_version_status": [...]}`. The router, the cold
pool and the model server all parse and render with this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from base.errors import InvalidArgument
from base.names import is_valid_model_name, parse_version

VERBS = ("predict", "classify", "regress")
PREFIX = "/v1/models/"
_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?/?$", re.IGNORECASE)
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# TF Serving's status and metadata pattern makes the name optional, then refuses a call
# without one with its own message (`GET /v1/models`, `GET /v1/models/versions/2`...).
_NO_NAME_RE = re.compile(
    r"^/v1/models(?:/versions/\d+|/labels/[^/:]+)?(?:/metadata)?$", re.IGNORECASE)
MISSING_NAME = "Missing model name in request."


@dataclass(frozen=True)
class ModelPath:
    name: str
    version: int | None = None
    label: str | None = None
    kind: str = "status"  # status | metadata | predict | classify | regress

    @property
    def is_inference(self) -> bool:
        return self.kind in VERBS

    def with_target(self, name: str, version: int | None, label: str | None) -> ModelPath:
        """The same call on another model; a variant's own version or label wins."""
        if version is None and label is None:
            version, label = self.version, self.label
        return replace(self, name=name, version=version, label=label)

    def render(self) -> str:
        path = PREFIX + self.name
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label is not None:
            path += f"/labels/{self.label}"
        if self.kind == "metadata":
            path += "/metadata"
        elif self.is_inference:
            path += f":{self.kind}"
        return path


def parse(method: str, path: str, check_names: bool = True) -> ModelPath:
    """A ModelPath, or InvalidArgument with TF Serving's text ('Malformed request: ...',
    or MISSING_NAME for a status or metadata call without a name).

    `check_names`: model names and labels must be tierserve's safe names (they may
    become paths and URLs). The model server passes False: its names come from its
    own config, and an unknown one is simply not found.
    """
    match = _PATH_RE.match(path)
    if match is None:
        if method == "GET" and _NO_NAME_RE.match(path):
            raise InvalidArgument(MISSING_NAME)
        raise InvalidArgument(f"Malformed request: {method} {path}")
    name, verb = match["name"], match["verb"]
    if verb is not None:
        kind = verb.lower()
        if method != "POST" or kind not in VERBS:
            raise InvalidArgument(f"Malformed request: {method} {path}")
    else:
        if method != "GET":
            raise InvalidArgument(f"Malformed request: {method} {path}")
        kind = "metadata" if match["metadata"] else "status"
    if check_names and not is_valid_model_name(name):
        raise InvalidArgument(f"Malformed request: invalid model name {name!r}")
    version = None
    if match["version"] is not None:
        version = parse_version(match["version"])
        if version is None:
            raise InvalidArgument(f"Malformed request: invalid version {match['version']!r}")
    label = match["label"]
    if check_names and label is not None and not _LABEL_RE.match(label):
        raise InvalidArgument(f"Malformed request: invalid label {label!r}")
    return ModelPath(name=name, version=version, label=label, kind=kind)


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END
    error_code: str = "OK"
    error_message: str = ""


def status_json(states: Iterable[VersionStatus]) -> dict[str, Any]:
    """The status answer; the version is a string, as TF Serving writes it."""
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state,
         "status": {"error_code": s.error_code, "error_message": s.error_message}}
        for s in states]}

