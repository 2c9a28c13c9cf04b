"""What a signal kind is (:class:`SignalKind`) and how a signal is loaded (:class:`LoadOptions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from specfit.models.params import param
from specfit.signals.limits import DEFAULT_MAX_SAMPLES
from specfit.signals.measure_options import DEFAULT_KSPACE_FRACTION, DEFAULT_PROJECTIONS, MEASURES

MAX_CHANNELS = 1024  # audio channels or volume components; images have at most 4
MAX_COORDINATES = 3  # coordinates per sample of any kind


@dataclass(frozen=True)
class SignalKind:
    """One kind of signal, and every decision that depends on it.

    Attributes:
        name: ``"image"``, ``"audio"``... (a signal's ``kind``, and ``signal.kind`` in a saved run).
        suffixes: lower-case file suffixes read as this kind (``".nii.gz"`` counts as one).
        load: ``load(path, options: LoadOptions) -> signal``, resizing or resampling as the
            options say; the signal has a ``kind`` attribute, this kind's name.
        task: ``task(signal, shape_target=..., video_spectrum=...) -> Task``: what a fit of the
            signal minimises and scores, its FreSh target, report views and units
            (:class:`specfit.tasks.Task`).
        render: ``render(config, size, out, run_dir) -> RenderJob``: plans (and checks) the render
            of a saved run (see :mod:`specfit.kinds.render`).
        coordinates: coordinates per sample (the model's ``in_features``).
        channels: the possible numbers of output channels.
        check_description: ``check_description(signal, channels, where)`` raises a one-line
            :class:`~specfit.errors.SpecfitError` unless ``signal`` (a saved run's
            ``config["signal"]``, from the file ``where``, with ``channels`` outputs) holds what
            ``render`` reads (see :mod:`specfit.kinds.checks`).
        scale_size: ``scale_size(signal, times) -> size``: the explicit ``--size`` of a render at a
            factor of the signal's own size (``times(n)`` scales one side), e.g. ``"1024x768"``.
        from_array: ``from_array(array, name, options) -> signal`` for in-memory arrays (``None``:
            the kind has no array form); ``options`` holds what :func:`specfit.load_signal`
            received besides ``name`` and must be emptied of what it uses.
        raw_outputs: the model's outputs are not values in its value range (shapes: occupancy
            logits or signed distances), so predictions give them as they are.
        options: the loading options (:class:`LoadOptions` fields) and per-kind fit settings
            (:data:`KIND_SETTINGS`) this kind reads, by field name; a report's provenance lists
            only these (``None``: all of them).
    """

    name: str
    suffixes: tuple[str, ...]
    load: Callable[[Path, Any], Any]
    task: Callable[..., Any]
    render: Callable[..., Any]
    coordinates: int
    channels: range
    check_description: Callable[[Mapping, int, Path], None]
    scale_size: Callable[[Mapping, Callable[[int], int]], str]
    from_array: Callable[[Any, str, dict], Any] | None = None
    raw_outputs: bool = False
    options: frozenset[str] | None = None


# Fit settings that only some kinds read (a shape's target, a clip's spectrum).
KIND_SETTINGS = ("shape_target", "video_spectrum")


@dataclass
class LoadOptions:
    """How to read and shrink a signal before fitting; each field's help says what it sets.

    ``max_samples`` is checked from the file's header, before decoding, on what is decoded (pixels,
    frames x pixels of the kept video frames, voxels or audio frames; channels not counted), before
    ``resize``. ``measure="mri"`` samples a seeded random ``kspace_fraction`` of the volume's 3-D DFT
    (mask seed ``mask_seed``). A mesh that is not watertight (``allow_open``) is filled by
    generalised winding numbers, with a warning.
    """

    kind: str | None = param(
        None, "type of a .npy array (default: by its shape: 2-D, or 3-D with at most 4 channels last, is an "
        "image; other 3-D and 4-D arrays are volumes)", choices=("image", "volume"))
    resize: int | None = param(
        None, "images and video frames: short side in pixels; volumes: longest axis; full: the file's own "
        "size", minimum=1, metavar="PIXELS")
    max_seconds: float | None = param(None, "audio: keep S seconds (from --start-seconds)", metavar="S")
    start_seconds: float = param(0.0, "audio: skip the first S seconds", minimum=0, metavar="S",
                                 written_when_set=True)
    sample_rate: int | None = param(None, "audio: resample to HZ", metavar="HZ")
    max_frames: int | None = param(None, "video: keep the first N frames (after --frame-step)", metavar="N")
    frame_step: int = param(1, "video: keep every N-th frame", minimum=1, metavar="N")
    start_frame: int = param(0, "video: skip the first N frames of the file (before --frame-step)", minimum=0,
                             metavar="N", written_when_set=True)
    allow_open: bool = param(
        False, "meshes: accept a mesh that is not watertight (winding-number inside test)")
    max_samples: int = param(
        DEFAULT_MAX_SAMPLES, "refuse a file that claims more grid samples than N (pixels x frames, voxels, "
        "audio frames)", minimum=1, metavar="N")
    measure: str | None = param(
        None, "fit the signal only through measurements: ct (an image through parallel-beam projections) or "
        "mri (a volume through part of its 3-D k-space); the signal may also be a built-in phantom: "
        "shepp-logan, phantom-SEED, phantom3d-SEED", choices=MEASURES, flag="--task")
    projections: int = param(
        DEFAULT_PROJECTIONS, "--task ct: projection angles over 180 degrees", metavar="N")
    kspace_fraction: float = param(
        DEFAULT_KSPACE_FRACTION, "--task mri: share of the k-space coefficients sampled, variable density",
        metavar="F")
    mask_seed: int = param(0, "--task mri: seed of the k-space mask", flag="")


def recorded(options: Mapping[str, Any]) -> dict:
    """Loading options (:class:`LoadOptions` fields by name) as runs and grid records keep them:
    without the options declared ``written_when_set`` while they hold their defaults, so that adding
    such an option changes neither a saved run's ``config.json`` nor a grid record's key."""
    unset = {f.name: f.default for f in fields(LoadOptions) if f.metadata.get("written_when_set")}
    return {k: v for k, v in options.items() if not (k in unset and v == unset[k])}
