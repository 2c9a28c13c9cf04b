"""What a signal kind is (:class:`SignalKind`) and how a signal is loaded (:class:`LoadOptions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specfit.signals.limits import DEFAULT_MAX_SAMPLES
from specfit.signals.measure_options import DEFAULT_KSPACE_FRACTION, DEFAULT_PROJECTIONS

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


@dataclass
class LoadOptions:
    """How to read and shrink a signal before fitting.

    Attributes:
        kind: force the signal type of a ``.npy`` array (``"image"`` or ``"volume"``); ``None``
            decides by shape: 2-D, or 3-D with at most 4 channels last, is an image; other 3-D and
            4-D arrays are volumes.
        resize: images and video frames: the short side in pixels; volumes: the longest axis.
        max_seconds: audio: keep the first seconds only.
        sample_rate: audio: resample to this rate (Hz).
        max_frames: video: keep the first frames only (after ``frame_step``).
        frame_step: video: keep every ``frame_step``-th frame.
        allow_open: meshes: accept a mesh that is not watertight (inside is then decided by
            generalised winding numbers, with a warning).
        max_samples: grid signals: refuse, from the file's header and before decoding, one with
            more samples than this (pixels, frames x pixels of the kept video frames, voxels or
            audio frames; channels not counted). Checked on what is decoded, before ``resize``.
        measure: see the signal only through measurements: ``"ct"`` (an image through
            ``projections`` parallel-beam projections) or ``"mri"`` (a volume through a seeded
            random ``kspace_fraction`` of its 3-D DFT, mask seed ``mask_seed``); ``None``: fit the
            signal itself.
    """

    kind: str | None = None
    resize: int | None = None
    max_seconds: float | None = None
    sample_rate: int | None = None
    max_frames: int | None = None
    frame_step: int = 1
    allow_open: bool = False
    max_samples: int = DEFAULT_MAX_SAMPLES
    measure: str | None = None
    projections: int = DEFAULT_PROJECTIONS
    kspace_fraction: float = DEFAULT_KSPACE_FRACTION
    mask_seed: int = 0


