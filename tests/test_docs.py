"""The documentation's examples run, its commands parse and its links resolve.

Conventions for the fenced blocks of ``docs/*.md`` and ``README.md`` (``docs/results.md`` is
written by ``specfit bench`` and left out):

- ````` ```python ````` blocks are run: each page's blocks in order, in one namespace, in a
  temporary folder (so ``runs/...`` lands there). Keep them small (tiny signals, few steps, narrow
  networks): all of them together must take well under a minute on two CPU cores.
- ````` ```py ````` blocks are for reading only: examples that need data specfit does not ship, or
  that take long.
- ````` ```bash ````` blocks: every ``specfit ...`` line must parse with
  ``specfit.cli.main.build_parser()`` (nothing is run) and every ``make TARGET`` must name a target of
  the Makefile. ````` ```shell ````` blocks are not checked.
- ````` ```toml `````, ````` ```yaml ````` and ````` ```json ````` blocks must parse; one that
  describes a fit (a mapping with ``settings``) may use only the fields of a run's ``config.json``.
- Every relative link in ``docs/*.md`` and ``README.md`` points to a file that exists (MkDocs checks
  the anchors when it builds the pages).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import types
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import yaml

from specfit.models.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = {"results.md"}  # rewritten by `specfit bench`
PAGES = sorted(p for p in DOCS.glob("*.md") if p.name not in GENERATED)
README = ROOT / "README.md"
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+).+?\1")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the line each starts on."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang, start = match.group(1), match.group(2), i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        found.append(Block(page, start, lang, "\n".join(body) + "\n"))
        i += 1
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks and inline code (where links are not links)."""
    kept, inside = [], None
    for line in page.read_text(encoding="utf-8").splitlines():
        match = FENCE.match(line)
        if inside is None and match:
            inside = match.group(1)
        elif inside is not None and line.startswith(inside):
            inside = None
        elif inside is None:
            kept.append(INLINE_CODE.sub("", line))
    return "\n".join(kept)


def all_blocks(lang: str) -> list[Block]:
    return [block for page in [*PAGES, README] for block in blocks(page) if block.lang == lang]


# --- python blocks: run -------------------------------------------------------------------------

RUN_PAGES = [page for page in [*PAGES, README] if any(b.lang == "python" for b in blocks(page))]


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: p.name)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType(f"docs_example_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
    registered = set(REGISTRY)
    try:
        for block in blocks(page):
            if block.lang == "python":
                exec(compile(block.code, block.where, "exec", dont_inherit=True), module.__dict__)
    finally:  # models an example registers must not leak into other tests
        for name in set(REGISTRY) - registered:
            del REGISTRY[name]


def test_fence_languages_are_known() -> None:
    """A typo in a fence (``pyhton``) would silently skip an example."""
    known = {"python", "py", "bash", "shell", "toml", "yaml", "json", "text", ""}
    unknown = [f"{b.where} ({b.lang})" for page in [*PAGES, README] for b in blocks(page)
               if b.lang not in known]
    assert not unknown, f"unknown fence languages: {', '.join(unknown)}"


# --- bash blocks: commands parse ----------------------------------------------------------------


def _commands(block: Block) -> list[list[str]]:
    """The words of each command in a bash block (continuations joined, comments dropped)."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = next((i for i, w in enumerate(words) if w in ("|", "&&", ";", "||")), len(words))
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return [c for c in commands if c]


def _specfit_lines() -> list:
    lines = [(b.where, words[1:]) for b in all_blocks("bash") for words in _commands(b)
             if Path(words[0]).name == "specfit"]
    return [pytest.param(where, argv, id=f"{where}:{' '.join(argv[:2])}") for where, argv in lines]


@pytest.mark.parametrize(("where", "argv"), _specfit_lines())
def test_specfit_commands_parse(where: str, argv: list[str]) -> None:
    from specfit.cli.main import build_parser
    from specfit.errors import SpecfitError

    try:
        build_parser().parse_args(argv)
    except SpecfitError as exc:
        pytest.fail(f"{where}: `specfit {shlex.join(argv)}` does not parse: {exc}")
    except SystemExit as exc:  # --help, --version
        assert exc.code in (0, None), f"{where}: `specfit {shlex.join(argv)}` exits with {exc.code}"


def test_make_targets_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    wrong = [f"{b.where}: make {words[1]}" for b in all_blocks("bash") for words in _commands(b)
             if words[0] == "make" and len(words) > 1 and words[1] not in targets]
    assert not wrong, f"unknown make targets: {', '.join(wrong)}"


# --- configuration blocks: parse, with the fields of a run's config -----------------------------


def _parse(block: Block) -> object:
    if block.lang == "json":
        return json.loads(block.code)
    if block.lang == "yaml":
        return yaml.safe_load(block.code)
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads(block.code)


CONFIG_BLOCKS = [b for lang in ("toml", "yaml", "json") for b in all_blocks(lang)]


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=lambda b: b.where)
def test_configuration_blocks_parse(block: Block) -> None:
    from specfit.config.settings import FitSettings
    from specfit.kinds.kind import LoadOptions
    from specfit.runs.run import RunConfig

    data = _parse(block)
    if not (isinstance(data, dict) and "settings" in data):
        return
    unknown = set(data) - {f.name for f in fields(RunConfig)}
    assert not unknown, f"{block.where}: fields a run's config.json does not have: {sorted(unknown)}"
    unknown = set(data.get("load", {})) - {f.name for f in fields(LoadOptions)}
    assert not unknown, f"{block.where}: unknown loading options {sorted(unknown)}"
    FitSettings.from_json(data["settings"])  # unknown or ill-typed settings raise


# --- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [*PAGES, DOCS / "results.md", README], ids=lambda p: p.name)
def test_relative_links_point_to_files(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {', '.join(broken)}"


# --- the reference pages generated from the code -------------------------------------------------


def _hook():
    spec = importlib.util.spec_from_file_location("specfit_docs", DOCS / "hooks" / "specfit_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_reference_covers_every_subcommand() -> None:
    from specfit.cli.main import build_parser

    hook = _hook()
    page = hook.cli_reference()
    for name, _, parser in hook._subcommands(build_parser()):
        assert f"## specfit {name}\n" in page
        assert f"usage: specfit {name}" in page
        for action in parser._actions:
            for option in action.option_strings:
                assert option in page, f"specfit {name} {option} is missing from the reference"


def test_api_reference_documents_every_public_name() -> None:
    """Every name of ``specfit.__all__`` gets a heading, its signature and its docstring, with reST
    roles turned into Markdown (the page is read on the repository's web view too)."""
    import specfit

    page = _hook().render("api.md")
    for name in specfit.__all__:
        if not name.startswith("_"):
            assert f"\n### `specfit.{name}`\n" in page, name
    assert ":::" not in page and ":class:" not in page and ":func:" not in page
    assert not re.search(r"[^`]``[^`]", page)  # reST's double backquotes became Markdown's
    assert "\n```py\nfit(\n    signal: object,\n" in page
    assert "[`load_signal`](#specfitload_signal)" in page  # a role to a name on the page is a link


def test_committed_reference_pages_are_up_to_date() -> None:
    """``docs/cli.md`` and ``docs/api.md`` are generated into the repository so that they read on its
    web view; a change to a command, a public name or a docstring must regenerate them. Rendered in
    a process of its own, as ``make docs-ref`` does: models or kinds that other tests register must
    not reach the pages."""
    check = subprocess.run([sys.executable, str(DOCS / "hooks" / "specfit_docs.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, f"{check.stdout}{check.stderr}: run `make docs-ref`"


def test_reference_check_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    hook = _hook()
    for name in hook.PAGES:
        (tmp_path / name).write_text(hook.render(name), encoding="utf-8")
    monkeypatch.setattr(hook, "DOCS", tmp_path)
    assert hook.main(["--check"]) == 0
    (tmp_path / "cli.md").write_text("old\n", encoding="utf-8")
    assert hook.main(["--check"]) == 1 and "stale" in capsys.readouterr().out
    assert (tmp_path / "cli.md").read_text() == "old\n"  # --check writes nothing
    assert hook.main([]) == 0 and (tmp_path / "cli.md").read_text() == hook.render("cli.md")


# --- one name per knob ------------------------------------------------------------------------------

# The papers' symbols for a knob, each allowed only in parentheses after the knob's own name.
SYMBOLS = {"sigma_p": "scale", "N_max": "n_max", "band limit B": "band_limit",
           "bias range": "first_bias_scale"}


def test_each_knob_has_one_name_in_models_set_the_readme_and_the_models_page(capsys) -> None:
    """The name `specfit models` gives a family's knob is its ``--set`` key (a hyperparameter the
    family accepts by that name), and the README's and the models page's tables use it."""
    from specfit.cli.main import main

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    models_page = (DOCS / "models.md").read_text(encoding="utf-8")
    readme_rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    for name, entry in REGISTRY.items():
        if entry.knob is None:
            continue
        knob = entry.knob.name
        assert f"knob {knob} (default" in listing, name
        value = entry.knob.grid[0]
        assert getattr(entry.hyperparameters({knob: value}), knob) == value  # what `--set KNOB=VALUE` takes
        assert re.search(rf"^\| `{re.escape(name)}` \| `{re.escape(knob)}`", models_page, re.MULTILINE), name
        row = next((r for r in readme_rows if f"`{name}`" in r.split("|")[1]), None)
        assert row is not None and f"`{knob}`" in row.split("|")[2], (name, row)


@pytest.mark.parametrize("page", [*PAGES, README], ids=lambda p: p.name)
def test_a_knobs_paper_symbol_appears_only_beside_its_name(page: Path) -> None:
    """``N_max``, ``sigma_p``, ``band limit B`` and ``bias range`` are said once, in parentheses after
    ``n_max``, ``scale``... (the names users type), never instead of them."""
    wrong = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        for symbol, knob in SYMBOLS.items():
            for match in re.finditer(re.escape(symbol), line):
                if not re.search(rf"`{knob}` \([^)]*$", line[: match.start()]):
                    wrong.append(f"{page.name}:{number}: {symbol}")
    assert not wrong, f"a knob's symbol without its name: {', '.join(wrong)}"
