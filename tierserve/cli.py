"""`tierserve`: one console script, a subcommand per part.

Each subcommand lives in its part's own module, which provides
`add_arguments(parser)` and `run(args) -> int`; it is imported only when used,
so `tierserve router` never pays for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from base.version import __version__
from tierserve.cli_parser import Parser

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("tierserve.up", "run router, cold pool and orchestrator together (local processes)"),
    "router": ("router.cli", "run the router (TF Serving REST + gRPC, A/B splits, counts)"),
    "pool": ("tierserve.pool_shard",
             "run the cold pool (shared multi-model caching server), or one shard of it"),
    "model-server": ("pools.model_server.cli", "run the TF-Serving-compatible model server"),
    "orchestrator": ("orchestrator.cli", "run the promote/demote reconcile loop"),
    "policy": ("policies.cli", "check a policy YAML file"),
    "experiments": ("router.experiments_cli", "list, create, update and delete A/B experiments"),
    "demo": ("tierserve.demo", "create tiny models, start everything and drive changing traffic"),
    "bench": ("tierserve.bench", "run a benchmark from bench/ and print its figures"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="tierserve", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tierserve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv else None
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up chatter hides our own messages; its errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`tierserve policy fields | head`): stop quietly, as a Unix tool
        # killed by SIGPIPE does, and keep Python's final flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _run(argv: list[str]) -> int:
    args = build_parser(argv).parse_args(argv)  # argparse itself ignores a closed pipe
    code = int(args._run(args) or 0)
    sys.stdout.flush()  # here, not at exit, where a closed pipe is reported as a traceback
    return code


if __name__ == "__main__":
    sys.exit(main())
