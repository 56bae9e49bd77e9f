"""`tierserve experiments list|show|create|update|delete|stats`: the admin API from a shell.

    tierserve experiments create recommender --variant recommender-v1=90 \\
        --variant recommender-v2:canary=10 --shadow recommender-v3=5
    tierserve experiments update recommender --variant recommender-v1=50 \\
        --variant recommender-v2:canary=50
    tierserve experiments stats recommender --window 1h30m

A variant is MODEL[:VERSION|:LABEL]=WEIGHT (a number after ':' is a version).
`--file spec.yaml|json` gives the whole spec instead (the admin API's shape).
Router URL: --url or TIERSERVE_ROUTER_URL; token: --token or TIERSERVE_ADMIN_TOKEN.
Answers print as tables; `--json` prints the admin API's JSON instead, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from base.durations import duration_arg
from router.experiments_view import experiments_table, stats_table

DEFAULT_URL = "http://127.0.0.1:8501"


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
    parser.epilog = "examples:\n" + __doc__.split("\n\n", 1)[1]
    parser.add_argument("--url", default=os.environ.get("TIERSERVE_ROUTER_URL", DEFAULT_URL),
                        help="router base URL (env TIERSERVE_ROUTER_URL)")
    parser.add_argument("--token", default=os.environ.get("TIERSERVE_ADMIN_TOKEN"),
                        help="admin bearer token (default: env TIERSERVE_ADMIN_TOKEN)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    parsers = [sub.add_parser("list", help="every experiment")]
    parsers.append(sub.add_parser("show", help="show one experiment"))
    parsers[-1].add_argument("name")
    sub.add_parser("delete", help="delete one experiment").add_argument("name")
    stats = sub.add_parser("stats", help="per-variant counts, error rate, percentiles")
    stats.add_argument("name")
    stats.add_argument("--window", type=duration_arg, default=3600.0,
                       help="how far back: seconds or e.g. 90s, 5m, 1h30m")
    parsers.append(stats)
    for name in ("create", "update"):
        p = sub.add_parser(name, help=f"{name} an experiment")
        parsers.append(p)
        p.add_argument("name")
        p.add_argument("--variant", action="append", default=[],
                       type=lambda t: parse_target(t, "weight"),
                       help="MODEL[:VERSION|:LABEL]=W, once per variant (default: none; or --file)")
        p.add_argument("--shadow", type=lambda t: parse_target(t, "percent"),
                       help="MODEL[:VERSION|:LABEL]=PERCENT mirrored, answers dropped "
                            "(default: no shadow)")
        p.add_argument("--sticky-header",
                       help="header that pins a variant (default: the router's, X-User-Id)")
        p.add_argument("--file", type=Path,
                       help="whole spec as YAML or JSON (default: from the flags)")
    for p in parsers:
        p.add_argument("--json", action="store_true",
                       help="print the admin API's JSON instead of a table")


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
    if getattr(args, "json", False):
        print(json.dumps(body, indent=2))
    elif args.action == "stats":
        Console(soft_wrap=False).print(stats_table(body))
    else:
        Console().print(experiments_table(body.get("experiments", [body])))
    return 0
