"""What the commands' argument parsers share: one-line errors, help that shows defaults, examples.

Settings are not declared here: their flags come from the settings tree
(:func:`specfit.config.tree.add_flags`); each command adds only the options of its own (``--json``,
``--out``...).
"""

from __future__ import annotations

import argparse

from specfit.errors import SpecfitError


class Parser(argparse.ArgumentParser):
    """argparse with one-line ``error:`` messages and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpecfitError(message)


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


def add_load_flags(parser: argparse.ArgumentParser, notes: dict[str, str] | None = None) -> None:
    """The loading options (:class:`~specfit.kinds.kind.LoadOptions`) as flags."""
    from specfit.config.tree import add_flags
    from specfit.kinds.kind import LoadOptions

    add_flags(parser, LoadOptions, title="loading the signal", notes=notes)
