"""What the commands' argument parsers share: one-line errors, help that shows defaults, examples.

Settings are not declared here: their flags come from the settings tree
(:func:`specfit.config.tree.add_flags`); each command adds only the options of its own (``--json``,
``--out``...).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from difflib import get_close_matches

from specfit.errors import SpecfitError

# argparse's message for a value outside an argument's choices (quotes vary with Python's version)
_INVALID_CHOICE = re.compile(r"invalid choice: '?([^']*?)'? \(choose from (.*)\)$")


def did_you_mean(word: str, choices: Iterable[str], ignore_case: bool = False) -> str:
    """``"; did you mean X?"`` for the choice closest to ``word`` (``ignore_case``: compared in
    lower case, an exact match first), or ``""`` when none is close."""
    choices = list(choices)
    if ignore_case:
        lowered = {choice.lower(): choice for choice in choices}
        close = get_close_matches(word.lower(), list(lowered), n=1)
        match = lowered[close[0]] if close else None
    else:
        close = get_close_matches(word, choices, n=1)
        match = close[0] if close else None
    return "" if match is None else f"; did you mean {match}?"


def check_model(name: str) -> None:
    """Raise a :class:`SpecfitError` that suggests the closest model name when ``name`` is none."""
    from specfit.models.registry import models

    names = list(models())
    if name not in names:
        raise SpecfitError(f"unknown model {name!r}{did_you_mean(name, names, ignore_case=True)} "
                           f"(choose from {', '.join(names)})")


class Parser(argparse.ArgumentParser):
    """argparse with one-line ``error:`` messages (a close choice suggested) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        invalid = _INVALID_CHOICE.search(message)
        if invalid:
            choices = [choice.strip("'") for choice in invalid.group(2).split(", ")]
            message = message[:invalid.start()] + f"invalid choice: {invalid.group(1)!r}" + \
                f"{did_you_mean(invalid.group(1), choices)} (choose from {', '.join(choices)})"
        raise SpecfitError(message)

    def refuse_unknown(self, extras: list[str]) -> None:
        """Raise for arguments that no option or positional took, suggesting the closest option."""
        options = [name for action in self._actions for name in action.option_strings]
        unknown = next((arg.split("=")[0] for arg in extras if arg.startswith("-")), None)
        hint = "" if unknown is None else did_you_mean(unknown, options)
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (unless it is empty or the text gives it) and keeps
    the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == [] or default == argparse.SUPPRESS
        if "default" in text or empty or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(
    sub: argparse._SubParsersAction, name: str, text: str, epilog: str,
) -> argparse.ArgumentParser:
    """A subcommand whose one-line ``text`` is its summary and, capitalised, its description."""
    return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", epilog=epilog,
                          formatter_class=HelpFormatter)


def setting_notes() -> dict[str, str]:
    """Notes the command line adds to the settings' help: the model names."""
    from specfit.models.registry import models

    return {"model": f"one of {', '.join(models())}"}


def resize_value(text: str) -> int | None:
    """``--resize``'s value: pixels, or ``full`` (``None``: the file's own size)."""
    from specfit.kinds.load import FULL_SIZE

    if text == FULL_SIZE:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected pixels or {FULL_SIZE}, got {text!r}") from None


def working_size_note() -> str:
    """``--resize``'s default where image files are loaded at the working size."""
    from specfit.kinds.load import WORKING_SIZE

    return (f"default: {WORKING_SIZE} for image files larger than that (a default fit then takes minutes "
            "on two CPU cores)")


def add_load_flags(parser: argparse.ArgumentParser, notes: dict[str, str] | None = None) -> None:
    """The loading options (:class:`~specfit.kinds.kind.LoadOptions`) as flags; ``--resize`` also
    takes ``full``, the file's own size (the default unless ``notes`` says otherwise)."""
    from specfit.config.tree import add_flags
    from specfit.kinds.kind import LoadOptions

    add_flags(parser, LoadOptions, title="loading the signal", notes=notes, types={"resize": resize_value})
