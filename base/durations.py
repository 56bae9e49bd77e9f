"""Durations as people write them: `90`, `2.5`, `250ms`, `90s`, `5m`, `1h30m`, `1d12h` (pure).

The same rules for the policy file and every duration flag on the command line. A
compound duration lists its units from the largest down, each at most once, so a typo
such as `30m1h` is an error rather than a surprise.
"""

from __future__ import annotations

import argparse
import re

UNITS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"([0-9]*\.?[0-9]+)\s*(ms|d|h|m|s)")
_NUMBER = re.compile(r"[0-9]*\.?[0-9]+")
HINT = "use e.g. 90, 90s, 5m, 1h30m, 250ms"


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError naming the text when it is not a duration."""
    compact = text.strip()
    if _NUMBER.fullmatch(compact):
        return float(compact)
    order = list(UNITS)
    total, last, pos = 0.0, -1, 0
    for match in _PART.finditer(compact):
        rank = order.index(match.group(2))
        if match.start() != pos or rank <= last:
            break
        total += float(match.group(1)) * UNITS[match.group(2)]
        last, pos = rank, match.end()
        while pos < len(compact) and compact[pos] == " ":
            pos += 1
    if last < 0 or pos != len(compact):
        raise ValueError(f"not a duration: {text!r} ({HINT})")
    return total


def format_duration(seconds: float) -> str:
    """The shortest compound form of whole milliseconds, e.g. 5400 -> `1h30m`; 0 -> `0s`."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        count, millis = divmod(millis, round(size * 1000))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def duration_arg(text: str) -> float:
    """argparse `type=` for a duration flag."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def duration_help(text: str, default: float | str) -> str:
    """A duration flag's help: what it is, how to write it and its default (seconds, shown
    as a duration, or words), e.g. `between count flushes: seconds or e.g. 250ms, 90s, 1h30m
    (default 1s)`."""
    shown = default if isinstance(default, str) else format_duration(default)
    return f"{text}: seconds or e.g. 250ms, 90s, 1h30m (default {shown})"
