"""The pure promote/demote decision: rules one by one, then properties over random inputs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.decide import Action, HotModel, Rates, decide, hot_after, pins_in_force
from policies.schema import HotPool

NOW = 10_000.0


def pool(max_models: int = 2, pinned: list[str] | None = None, cooldown: float = 60.0,
         min_rate: float = 5.0, max_rate: float = 1.0) -> HotPool:
    return HotPool.model_validate({
        "max_models": max_models, "pinned": pinned or [], "cooldown": cooldown,
        "promote": {"min_rate": min_rate, "window": 60}, "demote": {"max_rate": max_rate,
                                                                    "window": 300}})


def rates(promote: dict[str, float], demote: dict[str, float] | None = None) -> Rates:
    return Rates(promote, promote if demote is None else demote)


def kinds(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.kind, a.model) for a in actions]


def old(alive: bool = True, current_spec: bool = True) -> HotModel:
    return HotModel(since=NOW - 3600, alive=alive, current_spec=current_spec)


def fresh() -> HotModel:
    return HotModel(since=NOW - 10)


def test_nothing_to_do() -> None:
    assert decide(rates({}), {}, pool(), NOW) == []
    assert decide(rates({"a": 3.0}), {}, pool(), NOW) == []  # below promote, cold stays cold
    assert decide(rates({"a": 3.0}), {"a": old()}, pool(), NOW) == []  # above demote, stays


def test_promote_at_the_threshold_and_above() -> None:
    actions = decide(rates({"a": 5.0, "b": 7.0, "c": 4.99}), {}, pool(), NOW)
    assert kinds(actions) == [("promote", "b"), ("promote", "a")]  # highest rate first
    assert "5 req/s over 60s >= 5 req/s" in actions[1].reason


def test_max_models_takes_the_highest_rates() -> None:
    actions = decide(rates({"a": 6.0, "b": 9.0, "c": 8.0}), {}, pool(max_models=2), NOW)
    assert kinds(actions) == [("promote", "b"), ("promote", "c")]


def test_ties_break_by_name() -> None:
    actions = decide(rates({"z": 6.0, "m": 6.0, "a": 6.0}), {}, pool(max_models=2), NOW)
    assert kinds(actions) == [("promote", "a"), ("promote", "m")]


def test_demote_after_cooldown_when_idle() -> None:
    actions = decide(rates({}, {"a": 0.5}), {"a": old()}, pool(), NOW)
    assert kinds(actions) == [("demote", "a")]
    assert "<= 1 req/s" in actions[0].reason


def test_no_demotion_inside_cooldown() -> None:
    assert decide(rates({}), {"a": fresh()}, pool(), NOW) == []


def test_hysteresis_between_the_two_rates() -> None:
    # 3 req/s: not enough to promote a cold model, but enough to keep a hot one.
    assert decide(rates({"a": 3.0}), {}, pool(), NOW) == []
    assert decide(rates({"a": 3.0}), {"a": old()}, pool(), NOW) == []


def test_demote_uses_the_long_window() -> None:
    # A burst shows in the short window but the long-window rate decides demotion.
    actions = decide(rates({"a": 0.0}, {"a": 2.0}), {"a": old()}, pool(), NOW)
    assert actions == []
    actions = decide(rates({"a": 9.0}, {"a": 0.5}), {"a": old()}, pool(), NOW)
    assert kinds(actions) == [("demote", "a")]


def test_pinned_are_always_hot_and_never_demoted() -> None:
    actions = decide(rates({}), {}, pool(pinned=["p"]), NOW)
    assert kinds(actions) == [("promote", "p")]
    assert actions[0].reason == "pinned"
    assert decide(rates({}), {"p": old()}, pool(pinned=["p"]), NOW) == []


def test_pinned_take_slots_first() -> None:
    actions = decide(rates({"a": 50.0, "b": 40.0}), {}, pool(max_models=2, pinned=["p"]), NOW)
    assert kinds(actions) == [("promote", "p"), ("promote", "a")]


def test_busier_candidate_displaces_a_hot_model_past_cooldown() -> None:
    hot = {"a": old(), "b": old()}
    actions = decide(rates({"a": 3.0, "b": 20.0, "c": 10.0}), hot, pool(max_models=2), NOW)
    assert kinds(actions) == [("demote", "a"), ("promote", "c")]
    assert "displaced by c" in actions[0].reason


def test_equal_rate_does_not_displace() -> None:
    hot = {"a": old(), "b": old()}
    assert decide(rates({"a": 10.0, "b": 20.0, "c": 10.0}), hot, pool(max_models=2), NOW) == []


def test_no_displacement_inside_cooldown() -> None:
    hot = {"a": fresh(), "b": fresh()}
    assert decide(rates({"a": 3.0, "b": 3.0, "c": 50.0}), hot, pool(max_models=2), NOW) == []


def test_shrunk_max_models_demotes_even_inside_cooldown() -> None:
    hot = {"a": fresh(), "b": fresh(), "c": fresh()}
    actions = decide(rates({"a": 3.0, "b": 9.0, "c": 6.0}), hot, pool(max_models=1), NOW)
    assert kinds(actions) == [("demote", "a"), ("demote", "c")]
    assert "max_models=1" in actions[0].reason


def test_new_pinned_model_evicts_the_least_busy_when_full() -> None:
    hot = {"a": fresh(), "b": fresh()}
    actions = decide(rates({"a": 3.0, "b": 9.0}), hot, pool(max_models=2, pinned=["p"]), NOW)
    assert kinds(actions) == [("demote", "a"), ("promote", "p")]


def test_dead_instance_is_restarted_unless_demoted() -> None:
    actions = decide(rates({"a": 9.0}), {"a": old(alive=False)}, pool(), NOW)
    assert kinds(actions) == [("restart", "a")]
    actions = decide(rates({}), {"a": old(alive=False)}, pool(), NOW)
    assert kinds(actions) == [("demote", "a")]


def test_changed_container_settings_restart() -> None:
    actions = decide(rates({"a": 9.0}), {"a": old(current_spec=False)}, pool(), NOW)
    assert actions == [Action("restart", "a", "container settings changed")]


def test_zero_max_models_means_no_hot_pool() -> None:
    actions = decide(rates({"a": 99.0}), {"b": fresh()}, pool(max_models=0), NOW)
    assert kinds(actions) == [("demote", "b")]


def test_pins_in_force_policy_first_then_admin_oldest_first() -> None:
    assert pins_in_force(["p"], ["a", "p", "b", "c"], 3) == (["p", "a", "b"], ["c"])
    assert pins_in_force([], ["a", "a"], 0) == ([], ["a"])
    assert pins_in_force(["p", "q"], [], 2) == (["p", "q"], [])


def test_admin_pins_are_kept_hot_like_policy_pins() -> None:
    p = pool(max_models=2, pinned=["p"])
    actions = decide(rates({"busy": 9.0}), {"a": old()}, p, NOW, pins=["p", "a"])
    assert kinds(actions) == [("promote", "p")]  # idle "a" stays; "busy" finds no slot
    actions = decide(rates({"busy": 9.0}), {"a": old()}, p, NOW)  # unpinned: a makes room
    assert kinds(actions) == [("demote", "a"), ("promote", "p"), ("promote", "busy")]


# ---- properties ---------------------------------------------------------------------------

NAMES = st.sampled_from([f"m{i}" for i in range(8)])
RATE = st.floats(min_value=0, max_value=20, allow_nan=False) | st.sampled_from([1.0, 5.0, 0.0])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rates, dict[str, HotModel], HotPool]:
    max_models = draw(st.integers(0, 5))
    pinned = draw(st.lists(NAMES, unique=True, max_size=max_models))
    cooldown = draw(st.sampled_from([0.0, 30.0, 600.0]))
    hot = draw(st.dictionaries(NAMES, st.builds(
        HotModel, since=st.floats(NOW - 1000, NOW), alive=st.booleans(),
        current_spec=st.booleans()), max_size=6))
    promote = draw(st.dictionaries(NAMES, RATE, max_size=8))
    demote = draw(st.dictionaries(NAMES, RATE, max_size=8))
    return (Rates(promote, demote), hot,
            pool(max_models=max_models, pinned=pinned, cooldown=cooldown))


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_never_more_than_max_models_hot(case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    r, hot, p = case
    assert len(hot_after(hot, decide(r, hot, p, NOW))) <= p.max_models


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_pinned_always_present(case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    r, hot, p = case
    assert set(p.pinned) <= hot_after(hot, decide(r, hot, p, NOW))


@settings(max_examples=400, deadline=None)
@given(scenarios(), st.lists(NAMES, max_size=6))
def test_admin_pins_in_force_are_hot_within_max_models(
        case: tuple[Rates, dict[str, HotModel], HotPool], admin: list[str]) -> None:
    r, hot, p = case
    pins, left_out = pins_in_force(p.pinned, admin, p.max_models)
    after = hot_after(hot, decide(r, hot, p, NOW, pins))
    assert set(p.pinned) <= set(pins) <= after and len(after) <= p.max_models
    assert set(pins) | set(left_out) == set(p.pinned) | set(admin)


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_demotion_inside_cooldown_unless_over_capacity(
        case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    r, hot, p = case
    if len(set(hot) | set(p.pinned)) > p.max_models:
        return  # the policy shrank below the hot set: capacity wins (tested above)
    for action in decide(r, hot, p, NOW):
        if action.kind == "demote":
            assert NOW - hot[action.model].since >= p.cooldown, action


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_same_input_same_actions(case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    r, hot, p = case
    first = decide(r, hot, p, NOW)
    shuffled_hot = dict(reversed(list(hot.items())))
    shuffled = Rates(dict(reversed(list(r.promote.items()))),
                     dict(reversed(list(r.demote.items()))))
    assert decide(shuffled, shuffled_hot, p, NOW) == first


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_actions_are_consistent(case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    r, hot, p = case
    actions = decide(r, hot, p, NOW)
    models = [a.model for a in actions]
    assert len(models) == len(set(models))  # one action per model
    for action in actions:
        if action.kind == "promote":
            assert action.model not in hot
            assert action.model in p.pinned or r.promote.get(action.model, 0) >= p.promote.min_rate
        else:
            assert action.model in hot
            assert action.model not in p.pinned or action.kind == "restart"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_applying_the_actions_reaches_a_fixed_point(
        case: tuple[Rates, dict[str, HotModel], HotPool]) -> None:
    """Right after acting (everyone alive, in cooldown) the next pass has nothing to do."""
    r, hot, p = case
    after = hot_after(hot, decide(r, hot, p, NOW))
    settled = {m: HotModel(since=hot[m].since if m in hot else NOW) for m in after}
    if p.cooldown == 0:
        return  # without a cooldown, displacement may still reshuffle: not a fixed point
    again = [a for a in decide(r, settled, p, NOW) if a.kind != "restart"]
    assert all(NOW - settled[a.model].since >= p.cooldown
               for a in again if a.kind == "demote"), again
