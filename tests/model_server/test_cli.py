"""tensorflow_model_server's command line, as `tierserve model-server` parses it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from pools.model_server import cli, tf_flags
from pools.model_server import config as configs


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_tf_serving_flag_syntax_and_ignored_flags() -> None:
    args = parse("--port=8500", "--rest_api_port=8501", "--model_name=m",
                 "--model_base_path=/models/m", "--enable_batching",
                 "--monitoring_config_file=/etc/monitoring.config",
                 "--file_system_poll_wait_seconds=0")
    assert (args.port, args.rest_api_port, args.host) == (8500, 8501, "127.0.0.1")
    assert args.file_system_poll_wait_seconds == 0.0
    (model,) = configs.validate(cli._initial_config(args))
    assert (model.name, model.base_path) == ("m", "/models/m")


def test_no_model_flags_mean_an_empty_server() -> None:
    assert configs.validate(cli._initial_config(parse())) == []


def test_relative_base_path_is_made_absolute(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (model,) = configs.validate(cli._initial_config(parse("--model_base_path", "models/m")))
    assert model.base_path == str(tmp_path / "models" / "m")
    assert model.name == "default"  # TF Serving's default name


def test_config_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "a" base_path: "s3://b/a" } }')
    args = parse("--model_config_file", str(path), "--model_base_path", "/ignored")
    assert [m.name for m in configs.validate(cli._initial_config(args))] == ["a"]


def test_unsupported_flags_are_named_unless_they_ask_for_nothing() -> None:
    args = parse("--enable_batching", "--enable_model_warmup=false",
                 "--grpc_channel_arguments=grpc.max_connection_age_ms=2000",
                 "--rest_api_timeout_in_ms", "5000", "--tensorflow_session_parallelism=0")
    # false and 0 (TF Serving's defaults for those two) ask for nothing: not named.
    assert tf_flags.ignored(args) == ["--rest_api_timeout_in_ms", "--enable_batching",
                                      "--grpc_channel_arguments"]
    assert tf_flags.refused(args) == []
    assert tf_flags.refused(parse("--ssl_config_file=/etc/ssl.config")) == ["--ssl_config_file"]
    assert tf_flags.ignored(parse()) == []


def test_orchs_thread_flags_are_not_in_the_unsupported_list() -> None:
    assert not {"tensorflow_intra_op_parallelism",
                "tensorflow_inter_op_parallelism"} & set(tf_flags.UNSUPPORTED)


def test_supported_boolean_flags_take_tf_servings_syntax() -> None:
    assert parse().allow_version_labels_for_unavailable_models is False
    assert parse("--allow_version_labels_for_unavailable_models"
                 ).allow_version_labels_for_unavailable_models is True
    assert parse("--enable_serialization_as_tensor_content=false"
                 ).enable_serialization_as_tensor_content is False
    with pytest.raises(SystemExit):
        parse("--allow_version_labels_for_unavailable_models=maybe")


def test_unknown_flags_still_fail_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("--model_nmae=m")
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_gil_switch_interval_flag_sets_pythons_and_zero_keeps_it() -> None:
    before = sys.getswitchinterval()
    try:
        assert parse("--gil_switch_interval_ms=1").gil_switch_interval_ms == 1.0
        cli.set_gil_switch_interval(0)
        assert sys.getswitchinterval() == before
        cli.set_gil_switch_interval(1.0)
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)
