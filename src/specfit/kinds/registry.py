"""The registry of signal kinds: what specfit knows about images, audio, video, volumes and shapes.

A kind is a signal module (loading, writing: ``specfit.signals.*``) and a task module (fitting,
metrics, outputs, report views: ``specfit.tasks.*``), tied together by one :class:`SignalKind`
here: the file suffixes it reads, how to load a file or an array, which task fits it, how a saved
run of it is rendered, and what a saved run of it must look like. The loader, the task factory,
the renderer and the run-folder validator all look kinds up here; nothing else names them.

A new kind is registered with :func:`register_kind`, or, from an installed package, declared under
the ``specfit.kinds`` entry point (:data:`ENTRY_POINT_GROUP`: a :class:`SignalKind` or a function
returning one), loaded the first time the kinds are listed.
"""

from __future__ import annotations

from pathlib import Path

from specfit.errors import SpecfitError
from specfit.kinds import builtin
from specfit.kinds.kind import MAX_CHANNELS, MAX_COORDINATES, SignalKind
from specfit.tasks.base import SHAPE_TARGETS, VIDEO_SPECTRA, Task
from specfit.util.plugins import load_plugins

ENTRY_POINT_GROUP = "specfit.kinds"

_KINDS: dict[str, SignalKind] = {kind.name: kind for kind in builtin.KINDS}
_plugins_loaded = False
_FAILED_PLUGINS: dict[str, str] = {}  # entry-point name -> why it was not loaded


def register_kind(kind: SignalKind) -> SignalKind:
    """Add ``kind`` (replacing one of the same name)."""
    _KINDS[kind.name] = kind
    return kind


def _load_plugins() -> None:
    """Register the kinds that installed packages declare under the ``specfit.kinds`` entry point,
    once per process. A plugin that fails to load is skipped with a warning; it never replaces a
    built-in kind nor takes the file suffixes of another."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for kind in load_plugins(ENTRY_POINT_GROUP, "signal kind", SignalKind, _check_plugin, _FAILED_PLUGINS):
        register_kind(kind)


def _check_plugin(kind: object) -> None:
    """Raise unless a plugin's kind can be loaded, fitted, saved and rendered beside the others."""
    if not isinstance(kind, SignalKind):
        raise TypeError(f"it gave a {type(kind).__name__}, not a SignalKind")
    if kind.name in _KINDS:
        owner = "a built-in kind" if kind.name in {k.name for k in builtin.KINDS} else "another plugin"
        raise ValueError(f"the name {kind.name!r} is taken by {owner}")
    if not 1 <= kind.coordinates <= MAX_COORDINATES:
        raise ValueError(f"coordinates must be 1 to {MAX_COORDINATES}, got {kind.coordinates}")
    if not kind.channels or kind.channels.start < 1 or kind.channels.stop > MAX_CHANNELS + 1:
        raise ValueError(f"channels must lie within 1 to {MAX_CHANNELS}, got {kind.channels}")
    for suffix in kind.suffixes:
        if not suffix.startswith(".") or suffix != suffix.lower():
            raise ValueError(f"suffixes are lower case and start with a dot, got {suffix!r}")
        taken = [other.name for other in _KINDS.values() if suffix in other.suffixes]
        if taken:
            raise ValueError(f"{suffix} files are read as {taken[0]} signals already")


def kinds() -> dict[str, SignalKind]:
    """Every registered kind by name: the built-in ones, then those of installed plugins."""
    _load_plugins()
    return dict(_KINDS)


def get_kind(name: str) -> SignalKind:
    """The kind called ``name``; a :class:`SpecfitError` lists the choices otherwise."""
    if name not in _KINDS:
        _load_plugins()
    if name in _KINDS:
        return _KINDS[name]
    if name in _FAILED_PLUGINS:
        raise SpecfitError(f"signal kind {name!r} comes from a plugin that failed to load: "
                           f"{_FAILED_PLUGINS[name]}", setting="kind")
    raise SpecfitError(f"unknown signal kind {name!r}; choose from {', '.join(_KINDS)}", setting="kind")


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


