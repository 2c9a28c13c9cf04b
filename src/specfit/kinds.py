"""The registry of signal kinds: what specfit knows about images, audio, video, volumes and shapes.

A kind is a signal module (loading, writing: ``specfit.signals.*``) and a task module (fitting,
metrics, outputs, report views: ``specfit.tasks.*``), tied together by one :class:`SignalKind`
here: the file suffixes it reads, how to load a file or an array, which task fits it, how a saved
run of it is rendered, and what a saved run of it must look like. The loader, the task factory,
the renderer and the run-folder validator all look kinds up here; nothing else names them.

A new kind is registered with :func:`register_kind` (built-in kinds are registered on first use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specfit.errors import SpecfitError

MAX_CHANNELS = 1024  # audio channels or volume components; images have at most 4


@dataclass(frozen=True)
class SignalKind:
    """One kind of signal.

    Attributes:
        name: ``"image"``, ``"audio"``... (a signal's ``kind``).
        suffixes: lower-case file suffixes read as this kind (``".nii.gz"`` counts as one).
        load: ``load(path, options: LoadOptions) -> signal``, resizing or resampling as the
            options say.
        task: ``task(signal, shape_target=..., video_spectrum=...) -> Task``.
        render: ``render(config, size, out, run_dir) -> RenderJob``: plans (and checks) the render
            of a saved run (see :mod:`specfit.render`).
        coordinates: coordinates per sample (the model's ``in_features``).
        channels: the possible numbers of output channels.
        from_array: ``from_array(array, name, options) -> signal`` for in-memory arrays (``None``:
            the kind has no array form); ``options`` holds what :func:`specfit.load_signal`
            received besides ``name`` and must be emptied of what it uses.
    """

    name: str
    suffixes: tuple[str, ...]
    load: Callable[[Path, Any], Any]
    task: Callable[..., Any]
    render: Callable[..., Any]
    coordinates: int
    channels: range
    from_array: Callable[[Any, str, dict], Any] | None = None


_KINDS: dict[str, SignalKind] = {}
_builtins_loaded = False


def register_kind(kind: SignalKind) -> SignalKind:
    """Add ``kind`` (replacing one of the same name)."""
    _KINDS[kind.name] = kind
    return kind


def kinds() -> dict[str, SignalKind]:
    """Every registered kind by name."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from specfit import builtin_kinds

        for kind in builtin_kinds.KINDS:
            _KINDS.setdefault(kind.name, kind)
    return _KINDS


def get_kind(name: str) -> SignalKind:
    """The kind called ``name``; a :class:`SpecfitError` lists the choices otherwise."""
    registry = kinds()
    if name not in registry:
        raise SpecfitError(f"unknown signal kind {name!r}; choose from {', '.join(registry)}", setting="kind")
    return registry[name]


def suffix_of(path: Path) -> str:
    """The lower-case suffix that decides a file's kind (``".nii.gz"`` for gzipped NIfTI)."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def kinds_for_suffix(suffix: str) -> list[SignalKind]:
    """The kinds that read files with ``suffix`` (``.npy`` is both an image and a volume)."""
    return [kind for kind in kinds().values() if suffix in kind.suffixes]


def supported_suffixes() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for kind in kinds().values() for s in kind.suffixes))
