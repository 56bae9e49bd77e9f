"""The argparse classes behind `tierserve`: help that shows defaults, errors with the right usage.

Every subcommand's parser (and theirs, since argparse makes nested subparsers of the
parent's class) is a `Parser`, so each module only adds its arguments.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from base.durations import duration_arg, format_duration

# A default read from the environment may be a URL with a password (`--db-url`): help
# output is shown and pasted around, so it never carries one.
_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")


class DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends `(default: X)` to a flag's help unless the help already names its default.

    Descriptions and epilogs keep their line breaks, so a command's examples read as written.

    A duration flag's default is shown as a duration (`2m30s`, not `150.0`).

    A default of None means "not set here" (the value then comes from the environment or
    the part's own settings), which the help text must explain in words; `False` of a
    switch needs no mention.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False
                or default is argparse.SUPPRESS or default == []
                or "(default" in text.lower()):
            return action.help
        if action.type is duration_arg and isinstance(default, int | float):
            return f"{text} (default: {format_duration(default)})"
        shown = _USERINFO.sub(r"\1***@", str(default)).replace("%", "%%")
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose unknown flags are reported by the (sub)command they were given to.

    argparse lets a subcommand's parser collect flags it does not know and hands them to
    the top-level parser, whose error then shows `tierserve`'s usage instead of the
    subcommand's. Here the innermost parser reports them itself.
    """

    def __init__(self, *args: Any, formatter_class: type[argparse.HelpFormatter] =
                 DefaultsFormatter, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.unknown(extras)
        return parsed, extras

    def unknown(self, extras: list[str]) -> NoReturn:
        self.error(f"unrecognized arguments: {' '.join(extras)}")
