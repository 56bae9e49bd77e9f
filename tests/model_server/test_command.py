"""The model server's command line, built once for every caller."""

from __future__ import annotations

import argparse

from pools.model_server.cli import add_arguments
from pools.model_server.command import model_server_args


def parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(args)


def test_flags_parse_back_as_the_model_server_reads_them() -> None:
    args = model_server_args(port=8500, rest_api_port=8501, model_name="m",
                             model_base_path="s3://b/p/m", host="0.0.0.0",
                             intra_op_threads=2, inter_op_threads=1,
                             extra=["--num_load_threads=2"])
    ns = parse(args)
    assert (ns.port, ns.rest_api_port, ns.model_name, ns.model_base_path, ns.host) == \
        (8500, 8501, "m", "s3://b/p/m", "0.0.0.0")
    assert (ns.tensorflow_intra_op_parallelism, ns.tensorflow_inter_op_parallelism) == (2, 1)
    assert ns.num_load_threads == 2


def test_one_argv_item_per_flag_and_extra_flags_last() -> None:
    args = model_server_args(port=1, rest_api_port=2, model_name="m", extra=["--port=9"])
    # The process runtime recognizes its servers by this exact item in /proc/<pid>/cmdline.
    assert "--model_name=m" in args
    assert args[-1] == "--port=9" and parse(args).port == 9  # the caller's flag wins


def test_no_model_and_default_threads_leave_those_flags_out() -> None:
    args = model_server_args(port=1, rest_api_port=2)
    assert args == ["--port=1", "--rest_api_port=2"]
    assert parse(args).model_base_path == ""
