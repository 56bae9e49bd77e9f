"""`tierserve experiments list|show|create|update|delete|stats`: the admin API from a shell.

    tierserve experiments create recommender --variant recommender-v1=90 \\
        --variant recommender-v2:canary=10 --shadow recommender-v3=5
    tierserve experiments update recommender --variant recommender-v1=50 \\
        --variant recommender-v2:canary=50

A variant is MODEL[:VERSION|:LABEL]=WEIGHT (a number after ':' is a version).
`--file spec.yaml|json` gives the whole spec instead (the admin API's shape).
Router URL: --url or TIERSERVE_ROUTER_URL; token: --token or TIERSERVE_ADMIN_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8500"


def parse_target(text: str, value_name: str) -> dict[str, Any]:
    """'model[:version|:label]=N' -> {"model", "version"|"label", value_name: N}."""
    target, sep, value = text.rpartition("=")
    if not sep or not target:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL[:VERSION|:LABEL]={value_name}")
    model, _, tag = target.partition(":")
    out: dict[str, Any] = {"model": model}
    if tag:
        out["version" if tag.isdigit() else "label"] = int(tag) if tag.isdigit() else tag
    try:
        out[value_name] = int(value) if value_name == "weight" else float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {value_name} must be a number") from exc
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("TIERSERVE_ROUTER_URL", DEFAULT_URL),
                        help="router base URL")
    parser.add_argument("--token", default=os.environ.get("TIERSERVE_ADMIN_TOKEN"),
                        help="admin bearer token (default: env TIERSERVE_ADMIN_TOKEN)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every experiment")
    for name in ("show", "delete"):
        sub.add_parser(name, help=f"{name} one experiment").add_argument("name")
    stats = sub.add_parser("stats", help="per-variant counts, error rate, percentiles")
    stats.add_argument("name")
    stats.add_argument("--window", type=float, default=3600, help="seconds (default 3600)")
    for name in ("create", "update"):
        p = sub.add_parser(name, help=f"{name} an experiment")
        p.add_argument("name")
        p.add_argument("--variant", action="append", default=[],
                       type=lambda t: parse_target(t, "weight"), help="MODEL[:VERSION|:LABEL]=W")
        p.add_argument("--shadow", type=lambda t: parse_target(t, "percent"),
                       help="MODEL[:VERSION|:LABEL]=PERCENT mirrored, answers dropped")
        p.add_argument("--sticky-header", help="header that pins a variant")
        p.add_argument("--file", type=Path, help="whole spec as YAML or JSON")


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.file is not None:
        import yaml

        spec: dict[str, Any] = dict(yaml.safe_load(args.file.read_text()) or {})
    else:
        spec = {"variants": args.variant}
        if args.shadow:
            spec["shadow"] = args.shadow
        if args.sticky_header:
            spec["sticky_header"] = args.sticky_header
    spec["name"] = args.name
    return spec


def run(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    base = f"{args.url.rstrip('/')}/admin/experiments"
    with httpx.Client(headers=headers, timeout=30.0, trust_env=False) as client:
        try:
            if args.action == "list":
                response = client.get(base)
            elif args.action == "show":
                response = client.get(f"{base}/{args.name}")
            elif args.action == "delete":
                response = client.delete(f"{base}/{args.name}")
            elif args.action == "stats":
                response = client.get(f"{base}/{args.name}/stats",
                                      params={"window_s": args.window})
            elif args.action == "create":
                response = client.post(base, json=_spec(args))
            else:
                spec = _spec(args)
                spec.pop("name")
                response = client.put(f"{base}/{args.name}", json=spec)
        except httpx.HTTPError as exc:
            print(f"error: cannot reach the router at {args.url}: {exc}", file=sys.stderr)
            return 1
    if response.status_code == 204:
        print(f"deleted {args.name}")
        return 0
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text}
    if response.is_error:
        print(f"error ({response.status_code}): {body.get('error', body)}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0
