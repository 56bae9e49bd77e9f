"""TF Serving's REST protocol (base.tfs_rest): the path grammar and the status answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base import tfs_rest
from base.errors import InvalidArgument
from base.names import MODEL_NAME_RE
from base.tfs_rest import ModelPath, VersionStatus


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/v1/models/m", ModelPath("m")),
    ("GET", "/v1/models/m/", ModelPath("m")),
    ("GET", "/v1/models/m/versions/3", ModelPath("m", version=3)),
    ("GET", "/v1/models/m/labels/stable/metadata",
     ModelPath("m", label="stable", kind="metadata")),
    ("POST", "/v1/models/m:predict", ModelPath("m", kind="predict")),
    ("POST", "/v1/models/m/versions/00012:classify", ModelPath("m", version=12, kind="classify")),
    ("POST", "/v1/models/a.b-c_d/labels/canary:regress",
     ModelPath("a.b-c_d", label="canary", kind="regress")),
    # TF Serving's patterns are case-insensitive.
    ("POST", "/V1/MODELS/m/VERSIONS/2:PREDICT", ModelPath("m", version=2, kind="predict")),
])
def test_parse_valid(method: str, path: str, expected: ModelPath) -> None:
    assert tfs_rest.parse(method, path) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/models/m:explode"),
    ("POST", "/v1/models/m"),
    ("POST", "/v1/models/m/metadata"),
    ("GET", "/v1/models/m:predict"),
    ("GET", "/v1/models/"),
    ("POST", "/v1/models"),
    ("GET", "/v1/models/versions/x"),
    ("GET", "/v1/models/m/versions/0"),
    ("GET", "/v1/models/m/versions/-1"),
    ("GET", "/v1/models/m/versions/x"),
    ("GET", "/v1/models/m/versions/1/labels/a"),
    ("GET", "/v1/models/-bad"),
    ("GET", "/v1/models/.."),
    ("GET", "/v1/models/m/labels/-bad"),
    ("GET", "/v1/models/m/other"),
    ("GET", "/v2/models/m"),
    ("PUT", "/v1/models/m"),
])
def test_parse_malformed(method: str, path: str) -> None:
    with pytest.raises(InvalidArgument, match="Malformed request"):
        tfs_rest.parse(method, path)


@pytest.mark.parametrize("path", [
    "/v1/models", "/V1/Models", "/v1/models/versions/2", "/v1/models/labels/stable",
    "/v1/models/labels/canary/metadata", "/v1/models/versions/2/metadata",
])
def test_a_status_or_metadata_call_without_a_name_is_tf_servings_missing_name(path: str) -> None:
    for check_names in (True, False):  # every front gives the same text
        with pytest.raises(InvalidArgument) as raised:
            tfs_rest.parse("GET", path, check_names=check_names)
        assert str(raised.value) == "Missing model name in request."


def test_a_model_named_metadata_is_a_name() -> None:
    # TF Serving's pattern reads `/v1/models/metadata` as the status of a model so named.
    assert tfs_rest.parse("GET", "/v1/models/metadata") == ModelPath("metadata")


def test_unchecked_names_are_left_to_the_caller() -> None:
    """The model server's names come from its config; it answers an unknown one 404."""
    assert tfs_rest.parse("GET", "/v1/models/-odd name", check_names=False).name == "-odd name"
    with pytest.raises(InvalidArgument):
        tfs_rest.parse("GET", "/v1/models/m/versions/0", check_names=False)


def test_render_and_retarget() -> None:
    call = tfs_rest.parse("POST", "/v1/models/pub/versions/2:predict")
    assert call.render() == "/v1/models/pub/versions/2:predict"
    assert call.with_target("real", None, None).render() == "/v1/models/real/versions/2:predict"
    assert (call.with_target("real", None, "canary").render()
            == "/v1/models/real/labels/canary:predict")
    meta = tfs_rest.parse("GET", "/v1/models/pub/metadata")
    assert meta.with_target("x", 4, None).render() == "/v1/models/x/versions/4/metadata"


names = st.from_regex(MODEL_NAME_RE, fullmatch=True)
calls = st.builds(
    ModelPath, name=names,
    version=st.one_of(st.none(), st.integers(min_value=1, max_value=2**63)),
    label=st.none(), kind=st.sampled_from(("status", "metadata", *tfs_rest.VERBS)),
) | st.builds(ModelPath, name=names, label=names,
              kind=st.sampled_from(("status", "metadata", *tfs_rest.VERBS)))


@given(calls)
def test_render_then_parse_is_the_identity(call: ModelPath) -> None:
    method = "POST" if call.is_inference else "GET"
    assert tfs_rest.parse(method, call.render()) == call


@given(st.text(max_size=60), st.sampled_from(("GET", "POST", "DELETE")))
def test_parse_accepts_only_what_it_can_render(path: str, method: str) -> None:
    """Anything parsed renders back to the same call: no odd input slips through."""
    try:
        call = tfs_rest.parse(method, "/v1/models/" + path)
    except InvalidArgument:
        return
    assert tfs_rest.parse(method, call.render()) == call
    assert MODEL_NAME_RE.fullmatch(call.name)


def test_status_json_is_tf_servings_shape() -> None:
    body = tfs_rest.status_json([VersionStatus(3, "AVAILABLE"),
                                 VersionStatus(2, "END", "NOT_FOUND", "gone")])
    assert json.loads(json.dumps(body)) == {"model_version_status": [
        {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}},
        {"version": "2", "state": "END", "status": {"error_code": "NOT_FOUND",
                                                    "error_message": "gone"}}]}
    assert tfs_rest.status_json([]) == {"model_version_status": []}
