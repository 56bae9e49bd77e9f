"""`tierserve` itself: --version, help with defaults, errors with the right usage, pipes."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess

import pytest

from base.durations import duration_arg, parse_duration
from base.procs import tierserve_command
from base.version import __version__
from pools.cold import cli as pool_cli
from pools.cold.config import PoolConfig
from tierserve.cli import COMMANDS, build_parser


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierserve_command(*args), capture_output=True, text=True,
                          timeout=120, env=env)


def test_version() -> None:
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"tierserve {__version__}")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """This parser and every (sub)subcommand's below it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.extend(_parsers(sub))
    return found


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_help_with_its_default(command: str) -> None:
    missing = []
    for parser in _parsers(build_parser([command])):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if (not action.option_strings or action.help == argparse.SUPPRESS
                    or action.default is False  # a switch: off unless given
                    or isinstance(action, argparse._HelpAction | argparse._VersionAction)):
                continue
            text = formatter._expand_help(action) if action.help else ""
            if "(default" not in text and "(required" not in text:
                missing.append(f"{parser.prog} {action.option_strings[0]}: {text!r}")
    assert not missing, missing


def test_pool_help_states_the_pool_defaults() -> None:
    """The cold pool's flags default to None (env, then PoolConfig): the help says PoolConfig's."""
    for _, dest, kind, help_text in pool_cli._FLAGS:
        stated = re.search(r"\(default ([0-9.]+[a-z]*)\)", help_text)
        if stated:
            default = PoolConfig.model_fields[dest].default
            if kind is duration_arg:
                assert parse_duration(stated.group(1)) == default, dest
            else:
                assert str(default) in (stated.group(1), stated.group(1) + ".0"), dest


@pytest.mark.parametrize(("argv", "usage"), [
    (["router", "--bogus"], "usage: tierserve router "),
    (["experiments", "list", "--bogus"], "usage: tierserve experiments list "),
    (["policy", "fields", "--bogus"], "usage: tierserve policy fields "),
    (["experiments", "--bogus", "list"], "usage: tierserve experiments "),
])
def test_a_bad_flag_shows_the_subcommands_usage(argv: list[str], usage: str) -> None:
    result = run(*argv)
    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr


@pytest.mark.parametrize(("argv", "codes"), [
    (["policy", "fields"], {128 + signal.SIGPIPE}),
    (["model-server", "--help"], {0, 128 + signal.SIGPIPE}),  # argparse ignores write errors
])
def test_a_closed_pipe_ends_quietly(argv: list[str], codes: set[int]) -> None:
    """`tierserve policy fields | head`: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(tierserve_command(*argv), stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode in codes


def test_pool_without_cache_dir_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERSERVE_POOL_")}
    result = run("pool", "--store", "/nonexistent", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tierserve pool: --cache-dir is required (or env TIERSERVE_POOL_CACHE_DIR)"]
    result = run("pool", "--store", "/s", "--cache-dir", "/c", "--memory-models", "50",
                 "--disk-models", "10", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tierserve pool: disk_models must be at least memory_models"]


def test_durations_on_the_command_line() -> None:
    args = build_parser(["experiments"]).parse_args(
        ["experiments", "stats", "recommender", "--window", "1h30m"])
    assert args.window == 5400.0
    result = run("experiments", "stats", "recommender", "--window", "soon")
    assert result.returncode == 2
    assert "usage: tierserve experiments stats" in result.stderr and "'soon'" in result.stderr


# Every duration flag of the router, the pool and the demo: what `1h30m`, `250ms` and `90s`
# give, and the default its help must state.
DURATION_FLAGS = [
    ("router", "--flush-interval", "flush_interval", "1s"),
    ("router", "--poll-interval", "poll_interval", "1s"),
    ("router", "--connect-timeout", "connect_timeout", "1s"),
    ("router", "--request-timeout", "request_timeout", "1m"),
    ("pool", "--load-wait", "load_wait_s", "30s"),
    ("pool", "--failure-ttl", "failure_ttl_s", "1m"),
    ("pool", "--store-poll", "store_poll_s", "30s"),
    ("pool", "--model-server-gc-interval", "model_server_gc_interval_s", "the model server's"),
    ("demo", "--duration", "duration", "2m30s"),
]


@pytest.mark.parametrize(("command", "flag", "dest", "default"), DURATION_FLAGS)
def test_duration_flags_take_units_and_state_their_default(command: str, flag: str, dest: str,
                                                           default: str) -> None:
    parser = build_parser([command])
    for text, seconds in (("1h30m", 5400.0), ("250ms", 0.25), ("90s", 90.0), ("2.5", 2.5)):
        assert getattr(parser.parse_args([command, flag, text]), dest) == seconds
    [sub] = [p for p in _parsers(parser) if p.prog == f"tierserve {command}"]
    [action] = [a for a in sub._actions if flag in a.option_strings]
    help_text = " ".join(sub._get_formatter()._expand_help(action).split())
    assert f"(default {default}" in help_text or f"(default: {default}" in help_text, help_text
    assert "1h30m" in help_text  # how to write one


def test_a_bad_duration_flag_names_the_value() -> None:
    result = run("router", "--request-timeout", "1h30")
    assert result.returncode == 2
    assert "usage: tierserve router" in result.stderr
    assert "not a duration: '1h30'" in result.stderr


def test_router_environment_takes_durations_too() -> None:
    from router.config import RouterConfig

    config = RouterConfig.load(environ={"TIERSERVE_REQUEST_TIMEOUT": "1m30s",
                                        "TIERSERVE_FLUSH_INTERVAL": "250ms"})
    assert (config.request_timeout, config.flush_interval) == (90.0, 0.25)


def test_help_never_shows_a_password_from_the_environment() -> None:
    env = {**os.environ, "TIERSERVE_DB_URL": "postgresql+psycopg://ops:s3cret@db:5432/ts"}
    result = run("orchestrator", "--help", env=env)
    assert result.returncode == 0
    assert "s3cret" not in result.stdout
    assert "postgresql+psycopg://ops:***@db:5432/ts" in " ".join(result.stdout.split())
