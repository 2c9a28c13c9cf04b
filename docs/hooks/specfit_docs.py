"""MkDocs hooks that generate the reference pages from the code (``hooks:`` in ``mkdocs.yml``).

- ``cli.md``: the line ``<!-- specfit-cli -->`` becomes the ``--help`` text of ``specfit`` and of
  every subcommand, produced by :func:`specfit.cli.main.build_parser` at build time, so the page cannot
  drift from the command line.
- ``api.md``: the line ``<!-- specfit-api-rest -->`` becomes a ``::: specfit.NAME`` block for
  every name of ``specfit.__all__`` that the page does not document yet, so a new public name
  appears even before someone files it under a heading; the line ``<!-- specfit-settings -->``
  becomes the table of every setting (keyword, flag, config key, default, help), made from the
  settings' declarations (:mod:`specfit.config.tree`).
- Docstrings that use Sphinx roles (``:class:`~specfit.runs.run.Run```) are shown as code, linked when
  the object is documented.
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

CLI_MARKER = "<!-- specfit-cli -->"
API_MARKER = "<!-- specfit-api-rest -->"
SETTINGS_MARKER = "<!-- specfit-settings -->"
HELP_COLUMNS = 100  # --help is wrapped as in a terminal of this width

# After Markdown: :class:<code>~specfit.runs.run.Run</code>, :func:<code>fit</code> ...
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):<code>(~?)([\w.]+)(\(\))?</code>")


@contextmanager
def _plain_terminal(columns: int) -> Iterator[None]:
    """argparse wraps help to ``$COLUMNS`` and may colour it: fix the width, switch colour off."""
    saved = {name: os.environ.get(name) for name in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=str(columns), NO_COLOR="1", PYTHON_COLORS="0")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of every subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, summaries.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _help_block(parser: argparse.ArgumentParser) -> list[str]:
    text = parser.format_help().rstrip().replace("```", "'''")
    return ["```text", text, "```"]


def cli_reference() -> str:
    """Markdown for every command: a table of subcommands, then each one's ``--help``."""
    from specfit.cli.main import build_parser

    with _plain_terminal(HELP_COLUMNS):
        parser = build_parser()
        commands = _subcommands(parser)
        lines = ["| command | what it does |", "|---|---|"]
        lines += [f"| [`specfit {name}`](#specfit-{name}) | {summary} |" for name, summary, _ in commands]
        lines += ["", "## specfit", "", *_help_block(parser)]
        for name, summary, sub in commands:
            lines += ["", f"## specfit {name}", "", f"{summary[:1].upper()}{summary[1:]}.", ""]
            lines += _help_block(sub)
    return "\n".join(lines) + "\n"


def missing_api(markdown: str) -> str:
    """``:::`` blocks for the names of ``specfit.__all__`` that ``markdown`` does not document."""
    import specfit

    documented = set(re.findall(r"^::: specfit\.(\w+)\s*$", markdown, flags=re.MULTILINE))
    missing = [name for name in specfit.__all__ if not name.startswith("_") and name not in documented]
    if not missing:
        return ""
    blocks = ["## Other public names", ""]
    for name in missing:
        blocks += [f"::: specfit.{name}", ""]
    return "\n".join(blocks)


def settings_reference() -> str:
    """Markdown tables of the settings of a fit and of the loading options, from their declarations."""
    from specfit.config.settings import FitSettings
    from specfit.config.tree import leaves
    from specfit.kinds.kind import LoadOptions

    def cell(text: object) -> str:
        return str(text).replace("|", "\\|")

    lines = []
    for cls, prefix, what in ((FitSettings, "settings.", "`specfit.fit` keyword"),
                              (LoadOptions, "load.", "`specfit.load_signal` keyword")):
        lines += [f"| {what} | flag | config key | default | what it sets |", "|---|---|---|---|---|"]
        for leaf in leaves(cls).values():
            flag = f"`{leaf.flag}`" if leaf.flag else ""
            lines.append(f"| `{leaf.name}` | {flag} | `{prefix}{leaf.key}` | `{leaf.fit_default!r}` | "
                         f"{cell(leaf.help)} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, missing_api(markdown))
    return markdown


def _sphinx_role(match: re.Match) -> str:
    short, target, call = match.group(1), match.group(2), match.group(3) or ""
    shown = target.rsplit(".", 1)[-1] if short else target
    identifier = target if target.startswith("specfit.") else f"specfit.{target}"
    title = f"<code>{html.escape(shown + call)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{title}</autoref>'


def on_page_content(html_text: str, page, config, files) -> str:
    return SPHINX_ROLE.sub(_sphinx_role, html_text)
