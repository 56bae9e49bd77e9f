"""ModelServerConfig parsing and checks, and the pure version policy."""

from __future__ import annotations

import pytest

from base.errors import InvalidArgument
from pools.model_server import config
from pools.model_server.versions import VersionPolicy, to_unload

TEXT = """
model_config_list {
  config {
    name: "a"
    base_path: "/models/a"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config { name: "b" base_path: "s3://bucket/models/b" model_version_policy { all {} } }
  config { name: "c" base_path: "/models/c" model_version_policy { latest { num_versions: 2 } } }
}
"""


def test_text_format_is_parsed_with_the_serving_protos() -> None:
    models = config.validate(config.parse_text(TEXT))
    assert [m.name for m in models] == ["a", "b", "c"]
    assert dict(models[0].version_labels) == {"stable": 1, "canary": 3}
    policies = [VersionPolicy.from_proto(m.model_version_policy) for m in models]
    assert policies[0] == VersionPolicy("specific", versions=frozenset({1, 3}))
    assert policies[1].kind == "all"
    assert policies[2] == VersionPolicy("latest", num_versions=2)


def test_empty_config_and_flags() -> None:
    assert config.validate(config.parse_text("")) == []
    assert config.validate(config.from_flags("m", "")) == []
    (model,) = config.validate(config.from_flags("m", "/srv/m"))
    assert (model.name, model.base_path) == ("m", "/srv/m")
    assert VersionPolicy.from_proto(model.model_version_policy) == VersionPolicy()


@pytest.mark.parametrize("text, words", [
    ('model_config_list { config { name: "a" base_path: "/x" } '
     'config { name: "a" base_path: "/y" } }', "multiple times"),
    ('model_config_list { config { name: "a" base_path: "relative/a" } }', "absolute"),
    ('model_config_list { config { name: "a" } }', "empty base_path"),
    ("model_config_list { nonsense: 1 }", "Invalid model config"),
])
def test_bad_lists_are_invalid_argument(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        config.validate(config.parse_text(text))


def test_same_model_compares_whole_configs() -> None:
    a1, _, c = config.validate(config.parse_text(TEXT))
    a2 = config.validate(config.parse_text(TEXT))[0]
    assert config.same_model(a1, a2) and not config.same_model(a1, c)
    a2.version_labels["x"] = 3
    assert not config.same_model(a1, a2) and config.same_source(a1, a2)


def test_version_policy_selects_versions_on_disk() -> None:
    disk = [1, 2, 5, 9]
    assert VersionPolicy().select(disk) == {9}
    assert VersionPolicy("latest", num_versions=2).select(disk) == {5, 9}
    assert VersionPolicy("all").select(disk) == {1, 2, 5, 9}
    assert VersionPolicy("specific", versions=frozenset({2, 3})).select(disk) == {2}
    assert VersionPolicy().select([]) == set()


def test_unload_preserves_availability() -> None:
    # v1 loaded, v2 wanted but not yet AVAILABLE: v1 stays.
    assert to_unload([1], {2}, {1, 2}, any_wanted_available=False) == set()
    assert to_unload([1, 2], {2}, {1, 2}, any_wanted_available=True) == {1}
    # Gone from disk: unloaded at once.
    assert to_unload([1], {2}, {2}, any_wanted_available=False) == {1}
