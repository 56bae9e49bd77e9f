"""The policy's `runtime` field and `hot.swarm` block: constraint syntax refused at load."""

from __future__ import annotations

import pytest

from policies.loader import PolicyError, parse_policy
from policies.swarm import check_constraint

BASE = """\
store: /models
runtime: {runtime}
hot:
  max_models: 2
  promote: {{min_rate: 1}}
  demote: {{max_rate: 0.1}}
  swarm:
{swarm}
"""


def load(swarm: str = "    reach: published", runtime: str = "swarm"):
    return parse_policy(BASE.format(runtime=runtime, swarm=swarm)).policy


def errors(swarm: str = "    reach: published", runtime: str = "swarm") -> list[str]:
    with pytest.raises(PolicyError) as info:
        load(swarm, runtime)
    return [f"{e.path} (line {e.line}): {e.message}" for e in info.value.errors]


@pytest.mark.parametrize("text", [
    "node.role==manager", "node.role != worker", "node.labels.zone==eu-1",
    "engine.labels.gpu!=true", "node.hostname==vm", "node.ip==10.0.0.0/8",
    "node.ip!=127.0.0.1", "node.platform.os==linux", "node.id==f6xm4rl7tjzl5pbc3fs890tg9"])
def test_swarm_constraints_swarm_accepts_load_normalised(text: str) -> None:
    assert check_constraint(text) == text.replace(" ", "")


@pytest.mark.parametrize(("text", "why"), [
    ("node.role=manager", "expected <key>==<value>"),
    ("node.role==boss", "node.role is manager or worker"),
    ("foo.bar==1", "unknown key 'foo.bar'"),
    ("node.labels==x", "unknown key 'node.labels'"),
    ("node.labels.x==", "expected <key>==<value>"),
    ("node.labels.x==a b", "characters Swarm refuses"),
    ("node.ip==abc", "node.ip takes an address or a CIDR"),
])
def test_swarm_constraints_that_never_match_are_refused_at_load(text: str, why: str) -> None:
    (error,) = errors(f"    constraints: ['node.role==worker', '{text}']")
    assert error.startswith("hot.swarm.constraints[1] (line 8): ") and why in error


def test_swarm_block_defaults_and_values() -> None:
    policy = load("    reserve_memory: 512m\n    reserve_cpus: 0.25\n"
                  "    preferences: [node.labels.zone]\n    restart: {delay: 2s}\n"
                  "    update: {order: stop-first}")
    swarm = policy.hot.swarm
    assert policy.runtime == "swarm"
    assert (swarm.reserve_memory, swarm.reserve_cpus) == (512 * 1024**2, 0.25)
    assert swarm.preferences == ["node.labels.zone"] and swarm.restart.delay == 2.0
    assert swarm.update.order == "stop-first" and swarm.restart.condition == "any"


def test_swarm_bad_fields_name_the_path() -> None:
    assert errors("    preferences: [zone]") == [
        "hot.swarm.preferences[0] (line 8): preference 'zone': Swarm spreads over a label, "
        "node.labels.<name> or engine.labels.<name>"]
    (error,) = errors("    reach: network")
    assert "reach: network needs `network`" in error
    (error,) = errors("    contraints: []")
    assert "hot.swarm.contraints" in error and "unknown field" in error


def test_unknown_runtime_is_refused_at_load_naming_the_choices() -> None:
    (error,) = errors(runtime="kubernetes")
    assert error.startswith("runtime (line 2): ") and "'swarm'" in error and "'docker'" in error


def test_swarm_settings_change_the_hash_only_when_set() -> None:
    plain = parse_policy(BASE.format(runtime="auto", swarm="    {}").replace(
        "  swarm:\n    {}\n", "")).policy
    assert load("    reach: published").container_hash() == plain.container_hash()
    assert load("    reserve_cpus: 1").container_hash() != plain.container_hash()
