"""The shared foundation: names, errors, toy models, moto S3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from base import errors, names
from testkit import stores as testing
from tierserve import toy_models


@pytest.mark.parametrize("name", ["a", "model-1", "M.v2_x", "x" * 128])
def test_valid_names(name: str) -> None:
    assert names.check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "../etc", "a/b", "-a", "_a", "x" * 129, "a b",
                                  "é", "a\x00"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        names.check_model_name(name)


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("00000123", 123), (7, 7), ("0", None), ("-1", None), ("1.5", None), ("", None),
    ("\u0661", None),  # a non-ASCII digit
])
def test_parse_version(text: str | int, value: int | None) -> None:
    assert names.parse_version(text) == value


def test_error_mapping() -> None:
    import grpc

    err = errors.from_grpc_code(grpc.StatusCode.NOT_FOUND, "gone")
    assert isinstance(err, errors.NotFound) and err.http_status == 404
    assert err.body() == {"error": "gone"}
    assert errors.from_code_name("UNAVAILABLE", "x").http_status == 503


def test_toy_models_predict(tmp_path: Path, toy_template: Path) -> None:
    import tensorflow as tf

    toy_models.write_model(tmp_path, "m", {1: 3.0, 2: -2.0}, b=0.5)
    for version, a in ((1, 3.0), (2, -2.0)):
        model = tf.saved_model.load(str(tmp_path / "m" / str(version)))
        y = model.signatures["serving_default"](x=tf.constant([1.0, 4.0]))["y"].numpy()
        assert list(y) == toy_models.expected(a, 0.5, [1.0, 4.0])


def test_toy_model_builder_leaves_no_template_behind(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = ("import sys; from tierserve import toy_models as t; "
              "t.write_model(sys.argv[1], 'm', {1: 2.0}); print(t.template_dir())")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "store")], check=True,
                         env={**os.environ, "TMPDIR": str(temp)}, timeout=120,
                         capture_output=True, text=True)
    template = Path(run.stdout.strip())
    assert template.parent.name.startswith("tierserve-template-")
    assert template.parent.parent == temp and not template.parent.exists()
    assert (tmp_path / "store" / "m" / "1" / "saved_model.pb").is_file()
    assert list(temp.glob("tierserve-template-*")) == []


def test_moto_round_trip(moto_s3: str, s3_bucket: str, tmp_path: Path,
                         toy_template: Path) -> None:
    testing.make_local_store(tmp_path / "store", {"m": {1: 2.0}})
    client = testing.s3_client(moto_s3)
    count = testing.upload_tree(client, s3_bucket, "models", tmp_path / "store")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert count == len(keys) and "models/m/1/saved_model.pb" in keys
