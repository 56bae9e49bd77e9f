"""`tierserve policy check FILE`: validate a policy and print each error with its YAML path."""

from __future__ import annotations

import argparse
import sys

from policies.loader import PolicyError, load_policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a policy file (exit 1 when invalid)")
    check.add_argument("file", help="policy YAML file")


def run(args: argparse.Namespace) -> int:
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
