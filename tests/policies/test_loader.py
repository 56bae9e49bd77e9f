"""Policy YAML -> validated Policy, and errors that name the bad field's YAML path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import PolicyError, load_policy, parse_policy
from policies.schema import parse_duration, parse_size

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"

MINIMAL = """
store: /srv/models
hot:
  max_models: 2
  promote: {min_rate: 5}
  demote: {max_rate: 1}
"""


def errors_of(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    return {e.path: (e.line, e.message) for e in info.value.errors}


def test_example_policy_is_valid() -> None:
    policy = load_policy(EXAMPLE).policy
    assert policy.hot.max_models == 4
    assert policy.hot.demote.window == 300.0
    assert policy.hot.cooldown == 600.0
    assert policy.hot.container.memory == 1024**3
    assert policy.cold.max_bytes == 20 * 1024**3
    assert policy.experiments[0].variants[1].model == "recommender-v2"


def test_defaults_fill_a_minimal_policy() -> None:
    policy = parse_policy(MINIMAL).policy
    assert policy.interval == 5.0
    assert policy.hot.promote.window == 60.0
    assert policy.hot.container.kind == "tierserve"
    assert policy.hot.pinned == []
    assert policy.experiments == []


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5m", 90.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("512m", 512 * 1024**2), ("2g", 2 * 1024**3), ("1.5GiB", int(1.5 * 1024**3)),
    ("64k", 65536), ("10MB", 10 * 1024**2)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_each_bad_field_is_reported_with_its_path_and_line() -> None:
    errors = errors_of("""store: s3://x
hot:
  max_models: 1
  promote: {min_rate: 1, window: 10x}
  demote: {max_rate: 0.5, window: 5m}
  pinned: [a, "../b"]
  contaner: {}
experiments:
  - name: e
    variants: [{model: m, weight: -1}]
""")
    assert set(errors) == {"hot.promote.window", "hot.pinned[1]", "hot.contaner",
                           "experiments[0].variants[0].weight"}
    assert errors["hot.promote.window"][0] == 4
    assert "duration" in errors["hot.promote.window"][1]
    assert errors["hot.pinned[1]"] == (6, "invalid model name '../b'")
    assert errors["hot.contaner"] == (7, "unknown field (check the spelling)")
    assert errors["experiments[0].variants[0].weight"][0] == 10


def test_missing_required_field_points_at_its_parent() -> None:
    errors = errors_of("store: /m\nhot:\n  max_models: 1\n  demote: {max_rate: 1}\n")
    assert errors["hot.promote"][0] == 2
    assert "required" in errors["hot.promote"][1].lower()


@pytest.mark.parametrize(("hot", "needle"), [
    ("promote: {min_rate: 1}\n  demote: {max_rate: 1}", "hysteresis"),
    ("promote: {min_rate: 2, window: 10m}\n  demote: {max_rate: 1, window: 1m}", "window"),
    ("promote: {min_rate: 2}\n  demote: {max_rate: 1}\n  pinned: [a, b]", "do not fit"),
    ("promote: {min_rate: 2}\n  demote: {max_rate: 1}\n  pinned: [a, a]", "twice"),
])
def test_cross_field_rules(hot: str, needle: str) -> None:
    errors = errors_of(f"store: /m\nhot:\n  max_models: 1\n  {hot}\n")
    assert list(errors) == ["hot"]
    assert needle in errors["hot"][1]
    assert errors["hot"][0] == 2


def test_experiments_use_the_router_admin_shape() -> None:
    base = MINIMAL + "experiments:\n"
    ok = parse_policy(base + "  - name: e\n    variants:\n      - {model: m, weight: 70}"
                      "\n      - {model: n, weight: 30}\n").policy
    assert ok.experiments[0].stored()["variants"][1] == {"model": "n", "weight": 30}
    errors = errors_of(base + "  - name: e\n    variants: [{model: m, weight: 60}]\n")
    assert "sum to 100" in errors["experiments[0].variants"][1]
    errors = errors_of(base + "  - name: e\n    variants: [{model: m, weight: 100}]\n"
                       "  - name: e\n    variants: [{model: m, weight: 100}]\n")
    assert "share a name" in errors[""][1]


def test_not_yaml_and_not_a_mapping() -> None:
    errors = errors_of("store: [unclosed\nhot: 1\n")
    assert "not valid YAML" in errors[""][1]
    assert errors[""][0] is not None
    assert "mapping" in errors_of("- a\n- b\n")[""][1]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "missing.yaml")
    assert "cannot read" in str(info.value)


def test_container_hash_tracks_container_settings_only() -> None:
    a = parse_policy(MINIMAL).policy
    b = parse_policy(MINIMAL.replace("max_models: 2", "max_models: 3")).policy
    c = parse_policy(MINIMAL + "  container: {memory: 256m}\n").policy
    assert a.container_hash() == b.container_hash()
    assert a.container_hash() != c.container_hash()


def test_cold_eviction_names_a_known_policy() -> None:
    ok = parse_policy(MINIMAL + "cold: {eviction: lru}\n").policy
    assert ok.cold.eviction == "lru"
    errors = errors_of(MINIMAL + "cold: {eviction: fifo}\n")
    assert "unknown eviction policy 'fifo'" in errors["cold.eviction"][1]


def test_cpu_priorities_default_hot_above_cold_and_refuse_an_inversion() -> None:
    policy = parse_policy(MINIMAL).policy
    container = policy.hot.container
    assert (container.nice, container.cpu_shares, container.cpus) == (0, 1024, None)
    assert policy.cold.model_server_nice is None  # the pool's own default
    ok = parse_policy(MINIMAL + "  container: {nice: 2, cpu_shares: 2048, cpus: 0.5}\n"
                      "cold: {model_server_nice: 10}\n").policy
    assert (ok.hot.container.nice, ok.cold.model_server_nice) == (2, 10)
    errors = errors_of(MINIMAL + "  container: {nice: 5}\n")
    assert "must be below the cold pool's model servers' niceness (5)" in errors[""][1]
    errors = errors_of(MINIMAL + "  container: {nice: 3}\ncold: {model_server_nice: 3}\n")
    assert "cold loads must not take the CPU from hot servers" in errors[""][1]
    errors = errors_of(MINIMAL + "  container: {cpu_shares: 1}\n")
    assert "hot.container.cpu_shares" in errors
