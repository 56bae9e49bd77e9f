"""Parse TF Serving REST paths (pure). The grammar, from TF Serving's http_rest_api_handler:

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   model metadata
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:{verb}     verb: predict|classify|regress
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from base.errors import InvalidArgument
from base.names import is_valid_model_name, parse_version

VERBS = ("predict", "classify", "regress")
_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?/?$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
        path = f"/v1/models/{self.name}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label is not None:
            path += f"/labels/{self.label}"
        if self.kind == "metadata":
            path += "/metadata"
        elif self.is_inference:
            path += f":{self.kind}"
        return path


def parse(method: str, path: str) -> ModelPath:
    """A ModelPath, or InvalidArgument (TF Serving's 'Malformed request')."""
    malformed = InvalidArgument(f"Malformed request: {method} {path}")
    match = _PATH_RE.match(path)
    if match is None:
        raise malformed
    name, verb = match["name"], match["verb"]
    if verb is not None:
        if method != "POST" or verb not in VERBS:
            raise malformed
        kind = verb
    else:
        if method != "GET":
            raise malformed
        kind = "metadata" if match["metadata"] else "status"
    if not is_valid_model_name(name):
        raise InvalidArgument(f"Malformed request: invalid model name {name!r}")
    version = None
    if match["version"] is not None:
        version = parse_version(match["version"])
        if version is None:
            raise InvalidArgument(f"Malformed request: invalid version {match['version']!r}")
    label = match["label"]
    if label is not None and not _LABEL_RE.match(label):
        raise InvalidArgument(f"Malformed request: invalid label {label!r}")
    return ModelPath(name=name, version=version, label=label, kind=kind)
