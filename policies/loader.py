"""Read a policy file: YAML -> validated `Policy`, or every error with its YAML path and line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from policies.schema import Policy


@dataclass(frozen=True)
class FieldError:
    path: str  # e.g. "hot.promote.min_rate" or "experiments[0].variants[1].weight"
    message: str
    line: int | None = None  # 1-based line in the file, when the path exists in it

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.path or '<file>'}: {where}{self.message}"


class PolicyError(ValueError):
    """The file is not a valid policy; `errors` says where and why."""

    def __init__(self, source: str, errors: list[FieldError]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    digest: str  # sha256 of the file's bytes: what changed, not when
    source: str


def format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the bad field's key (or list item); for a missing field, its parent's."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    nxt, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
                line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line


def _message(err: dict) -> str:
    msg = str(err["msg"])
    # pydantic prefixes errors raised in validators; the prefix only adds noise for a user.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return msg


def parse_policy(text: str, source: str = "<policy>") -> LoadedPolicy:
    """Validate policy YAML text; raises PolicyError listing each bad field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(source, [FieldError("", f"not valid YAML: {exc}", line)]) from None
    if not isinstance(data, dict):
        raise PolicyError(source, [FieldError("", "the policy must be a mapping of fields", 1)])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = [FieldError(format_path(tuple(e["loc"])), _message(e),
                             _line_of(root, tuple(e["loc"])))
                  for e in exc.errors()]
        raise PolicyError(source, errors) from None
    return LoadedPolicy(policy, hashlib.sha256(text.encode()).hexdigest(), source)


def load_policy(path: str | Path) -> LoadedPolicy:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(str(path), [FieldError("", f"cannot read: {exc.strerror}")]) from None
    return parse_policy(text, str(path))
