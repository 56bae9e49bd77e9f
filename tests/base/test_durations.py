"""Durations as written in the policy and on the command line."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.durations import duration_arg, format_duration, parse_duration
from policies.loader import PolicyError, parse_policy


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("5m", 300.0), ("250ms", 0.25),
    ("1h30m", 5400.0), ("1h 30m", 5400.0), (" 1d12h ", 129600.0), ("1m30s500ms", 90.5),
    ("1.5h", 5400.0), ("0s", 0.0), ("10 s", 10.0)])
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "", "h", "10x", "-5s", "30m1h", "5m5m", "1h30", "1h30mx", "1,5h", "ms", "1h-30m", "5 m s"])
def test_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


parts = st.tuples(*(st.integers(0, 99) for _ in range(5)))  # d, h, m, s, ms


@given(parts)
def test_any_compound_of_units_in_order(values: tuple[int, ...]) -> None:
    units = ("d", "h", "m", "s", "ms")
    text = "".join(f"{n}{u}" for n, u in zip(values, units, strict=True) if n) or "0s"
    d, h, m, s, ms = values
    assert parse_duration(text) == pytest.approx(d * 86400 + h * 3600 + m * 60 + s + ms / 1000)


@given(st.integers(0, 10**10))
def test_format_round_trips(millis: int) -> None:
    text = format_duration(millis / 1000)
    assert parse_duration(text) == pytest.approx(millis / 1000)
    assert text == format_duration(parse_duration(text))


@given(st.text(alphabet="0123456789.dhms -x", max_size=12))
def test_never_fails_other_than_with_a_value_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:
        assert repr(text) in str(exc)


def test_policy_durations_accept_compound_units() -> None:
    policy = parse_policy("store: /m\ninterval: 1m30s\nhot:\n  max_models: 2\n"
                          "  promote: {min_rate: 1, window: 90s}\n"
                          "  demote: {max_rate: 0.1, window: 1h30m}\n  cooldown: 2h\n").policy
    assert (policy.interval, policy.hot.promote.window) == (90.0, 90.0)
    assert (policy.hot.demote.window, policy.hot.cooldown) == (5400.0, 7200.0)
    with pytest.raises(PolicyError, match=r"not a duration: '1h30' \(use e.g."):
        parse_policy("store: /m\nhot:\n  max_models: 2\n  promote: {min_rate: 1}\n"
                     "  demote: {max_rate: 0.1}\n  cooldown: 1h30\n")


def test_flag_type_reports_the_bad_value() -> None:
    assert duration_arg("1h") == 3600.0
    with pytest.raises(argparse.ArgumentTypeError, match="'soon'"):
        duration_arg("soon")
