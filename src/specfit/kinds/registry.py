"""The registry of signal kinds: what specfit knows about images, audio, video, volumes and shapes.

A kind is a signal module (loading, writing: ``specfit.signals.*``) and a task module (fitting,
metrics, outputs, report views: ``specfit.tasks.*``), tied together by one :class:`SignalKind`
here: the file suffixes it reads, how to load a file or an array, which task fits it, how a saved
run of it is rendered, and what a saved run of it must look like. The loader, the task factory,
the renderer and the run-folder validator all look kinds up here; nothing else names them.

A new kind is registered with :func:`register_kind` (built-in kinds are registered on first use).
"""

from __future__ import annotations

from pathlib import Path

from specfit.errors import SpecfitError
from specfit.kinds import builtin
from specfit.kinds.kind import SignalKind
from specfit.tasks.base import SHAPE_TARGETS, VIDEO_SPECTRA, Task

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
        for kind in builtin.KINDS:
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


def task_for(signal: object, shape_target: str = "occupancy", video_spectrum: str = "frames") -> Task:
    """The task that fits ``signal`` (a grid :class:`~specfit.signals.base.Signal` or a shape),
    made by its kind (:mod:`specfit.kinds.registry`).

    ``shape_target`` chooses what a shape's network predicts: ``"occupancy"`` (logits, trained
    with cross-entropy) or ``"sdf"`` (signed distance, trained with L1). ``video_spectrum``
    chooses FreSh's spectrum for a clip: ``"frames"`` (mean per-frame 2-D spectra, the published
    way) or ``"3d"``.
    """
    for name, value, choices in (("shape_target", shape_target, SHAPE_TARGETS),
                                 ("video_spectrum", video_spectrum, VIDEO_SPECTRA)):
        if value not in choices:
            raise SpecfitError(f"{name} must be one of {', '.join(choices)}, got {value!r}", setting=name)
    kind = getattr(signal, "kind", None)
    if not isinstance(kind, str):
        raise SpecfitError(f"no task fits a {type(signal).__name__}")
    return get_kind(kind).task(signal, shape_target=shape_target, video_spectrum=video_spectrum)


