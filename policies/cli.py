"""`tierserve policy check FILE` (validate, print each error with its YAML path; exit 1) and
`tierserve policy fields` (every field with its default and meaning)."""

from __future__ import annotations

import argparse
import sys
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from policies.loader import PolicyError, load_policy
from policies.schema import Policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a policy file (exit 1 when invalid)")
    check.add_argument("file", help="policy YAML file")
    sub.add_parser("fields", help="list every policy field with its default and meaning")


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside a field's type (`HotPool`, `list[ExperimentSpec]`...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def field_lines(model: type[BaseModel], prefix: str = "") -> list[str]:
    lines = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _model_in(info.annotation)
        if info.is_required():
            default = "required"
        elif info.default is PydanticUndefined:
            default = "default: see below" if nested else "default: empty"
        else:
            default = f"default: {info.default!r}"
        doc = info.description or ""
        if not doc and nested is not None and nested.__doc__:
            doc = nested.__doc__.strip().splitlines()[0]
        lines.append(f"{path:34s} {default:28s} {doc}")
        if nested is not None:
            sep = "[]." if typing.get_origin(info.annotation) is list else "."
            lines.extend(field_lines(nested, path + sep))
    return lines


def run(args: argparse.Namespace) -> int:
    if args.policy_command == "fields":
        print("\n".join(field_lines(Policy)))
        return 0
    try:
        loaded = load_policy(args.file)
    except PolicyError as exc:
        print(f"{exc.source}: invalid policy ({len(exc.errors)} error(s))", file=sys.stderr)
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
        return 1
    policy = loaded.policy
    print(f"{args.file}: ok (sha256 {loaded.digest[:12]}): store {policy.store}, "
          f"hot max_models={policy.hot.max_models}, pinned={len(policy.hot.pinned)}, "
          f"experiments={len(policy.experiments)}")
    return 0
