"""What several commands share: the settings and loading options given on the command line, the
signals it names, and the command line as recorded in a run."""

from __future__ import annotations

import argparse
import shlex
import sys
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
    """The signal ``source`` (``None``: the bundled image) loaded with ``options``: an image file
    at the working size unless they give ``resize`` (see :func:`specfit.load_signal`; the API's
    warning is left to the command, which says it in its flags, see :func:`shrunk_from`)."""
    from specfit.api import load_signal

    with notes_as_flags():
        return load_signal(source, **options)


def shrunk_from(source: str | None, options: Mapping[str, object], signal: object) -> tuple[int, int] | None:
    """The image file's own ``(height, width)`` when :func:`load` shrank it to the working size
    (no ``resize`` given); ``None`` otherwise."""
    from specfit.kinds.load import WORKING_SIZE
    from specfit.signals.image import image_size

    if source is None or "resize" in options or getattr(signal, "kind", None) != "image":
        return None
    if signal.load_options.get("resize") != WORKING_SIZE:
        return None
    return image_size(Path(source))


def print_working_size(source: str | None, options: Mapping[str, object], signal: object) -> None:
    """A ``note:`` line on stderr when :func:`load` shrank an image file to the working size."""
    original = shrunk_from(source, options, signal)
    if original is not None:
        from specfit.kinds.load import FULL_SIZE

        height, width = signal.spatial_shape
        print(f"note: working size {height} x {width} of the {original[0]} x {original[1]} image "
              f"(--resize {FULL_SIZE} keeps it)", file=sys.stderr)


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
