"""What several commands share: the settings and loading options given on the command line, the
signals it names, and the command line as recorded in a run."""

from __future__ import annotations

import argparse
import shlex
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def layered(*layers: Mapping[str, object]) -> dict[str, object]:
    """Options by name, later layers over earlier ones; ``params`` (the hyperparameters) merge
    name by name, so ``--set`` changes one of a config file's without dropping the others."""
    out: dict[str, object] = {}
    for layer in layers:
        for name, value in layer.items():
            if name == "params" and isinstance(value, dict):
                value = {**dict(out.get("params") or {}), **value}  # type: ignore[arg-type]
            out[name] = value
    return out


def settings_given(args: argparse.Namespace) -> dict[str, object]:
    """The settings (:class:`~specfit.config.settings.FitSettings`) given on the command line."""
    from specfit.config.settings import FitSettings
    from specfit.config.tree import given_flags

    return given_flags(args, FitSettings)


def fit_settings(*layers: Mapping[str, object]) -> Any:
    """Checked :class:`~specfit.config.settings.FitSettings` from layers of options by name (see
    :func:`layered`), at the defaults of ``specfit fit`` where none gives one."""
    from specfit.config.settings import FitSettings

    return FitSettings.for_fit(**layered(*layers))


def load_given(args: argparse.Namespace) -> dict[str, object]:
    """The loading options (:class:`~specfit.kinds.kind.LoadOptions`) given on the command line."""
    from specfit.config.tree import given_flags
    from specfit.kinds.kind import LoadOptions

    return given_flags(args, LoadOptions)


def load(source: str | None, options: Mapping[str, object]) -> Any:
    """The signal ``source`` (``None``: the bundled image) loaded with ``options``."""
    from specfit.api import load_signal

    return load_signal(source, **options)


def command_line(args: argparse.Namespace) -> str:
    """The command line as typed (recorded in the run's config and report)."""
    return shlex.join(["specfit", *args.argv])


def expand_sources(items: list[str]) -> list[str | None]:
    """The signals named on the command line: files as given, folders as the signal files they
    hold (sorted, hidden files skipped); none at all is the bundled image (``[None]``)."""
    from specfit.errors import SpecfitError
    from specfit.kinds.registry import suffix_of, supported_suffixes

    if not items:
        return [None]
    suffixes = supported_suffixes()
    sources: list[str | None] = []
    for item in items:
        path = Path(item)
        if not path.is_dir():
            sources.append(item)
            continue
        found = sorted(str(entry) for entry in path.iterdir()
                       if entry.is_file() and not entry.name.startswith(".") and suffix_of(entry) in suffixes)
        if not found:
            raise SpecfitError(f"{item} holds no signal files ({', '.join(suffixes)})")
        sources.extend(found)
    return sources


@contextmanager
def notes_as_flags() -> Iterator[None]:
    """Silence the API's :class:`~specfit.api.SpecfitWarning`: a command prints those notes itself,
    as ``note:`` lines naming its flags (``--grid``), not the API's keywords (``grid=[...]``)."""
    from specfit.api import SpecfitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecfitWarning)
        yield
