"""`tierserve bench NAME`: run one of the benchmark scripts in bench/ and print its figures.

Benchmarks live as plain scripts in the repository's bench/ folder (they are
not installed); this command finds that folder from the checkout.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def _available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help=f"benchmark to run, one of: {_available()}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")


def run(args: argparse.Namespace) -> int:
    names = _available()
    if not args.name:
        print("benchmarks:", ", ".join(names) or "(none found in bench/)")
        return 0
    if args.name not in names:
        print(f"unknown benchmark {args.name!r}; choose one of {names}", file=sys.stderr)
        return 2
    sys.argv = [str(BENCH_DIR / f"{args.name}.py"), *args.args]
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0
