"""Recognise a signal file by its suffix (and an array's shape) and load it with its kind's loader
(:mod:`specfit.kinds.registry`)."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict
from pathlib import Path

from specfit.errors import SpecfitError
from specfit.kinds.kind import LoadOptions, recorded
from specfit.kinds.registry import kinds, kinds_for_suffix, suffix_of, supported_suffixes
from specfit.signals.base import Signal
from specfit.signals.image import image_from_array, resize_image
from specfit.signals.limits import npy_header
from specfit.signals.measure_options import MEASURES
from specfit.signals.measured import builtin_signal, ct_signal, is_builtin, mri_signal

# An image file's default working size: the shorter side, in pixels, that a larger image is shrunk
# to unless a resize is given (a default fit of 1000 steps then takes minutes on two CPU cores;
# see benchmarks/first_fit_photo.py). FULL_SIZE, given as the resize, keeps the file's size.
WORKING_SIZE = 128
FULL_SIZE = "full"


def default_signal() -> Signal:
    """The bundled default: scikit-image's 512 x 512 grey ``cameraman``."""
    from skimage import data

    signal = image_from_array(data.camera(), "cameraman")
    signal.source = "skimage.data.camera"
    return signal


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _npy_kind(path: Path) -> str:
    """``"image"`` for a 2-D array or a 3-D one with at most 4 channels last, else ``"volume"``
    (from the header alone)."""
    shape = npy_header(path)[0]
    return "image" if len(shape) == 2 or (len(shape) == 3 and shape[-1] <= 4) else "volume"


def load_signal(path: str | Path | None, options: LoadOptions | None = None) -> object:
    """Load a signal from ``path`` (``None`` gives the bundled default image; ``shepp-logan``,
    ``phantom-SEED`` and ``phantom3d-SEED`` name built-in test objects, see
    :mod:`specfit.signals.measured`), seen through measurements if ``options.measure`` says so.

    Returns a grid :class:`~specfit.signals.base.Signal` (image, audio, video, volume) or, for a
    mesh file, a :class:`specfit.signals.shape.Shape`, with ``load_options`` recording
    ``options`` so that a run can load it again.
    """
    options = options or LoadOptions()
    signal = _measured(_load(path, options), options)
    signal.load_options = recorded(asdict(options))
    return signal


def _measured(signal: object, options: LoadOptions) -> object:
    if options.measure is None:
        return signal
    if options.measure not in MEASURES:
        raise SpecfitError(f"--task must be one of {', '.join(MEASURES)}, got {options.measure!r}")
    kind = getattr(signal, "kind", None)
    if options.measure == "ct":
        if kind != "image":
            raise SpecfitError(f"--task ct measures an image; this signal is a {kind}")
        return ct_signal(signal, options.projections)
    if kind != "volume":
        raise SpecfitError(f"--task mri measures a volume; this signal is a {kind}")
    return mri_signal(signal, options.kspace_fraction, options.mask_seed)


def _load(path: str | Path | None, options: LoadOptions) -> object:
    if options.kind is not None and options.kind not in kinds():
        raise SpecfitError(f"--kind must be one of {', '.join(kinds())}, got {options.kind!r}")
    if options.resize is not None and options.resize < 1:
        raise SpecfitError(f"--resize must be at least 1, got {options.resize}")
    if options.max_samples < 1:
        raise SpecfitError(f"--max-samples must be at least 1, got {options.max_samples}")
    if path is None:
        signal = default_signal()
        return resize_image(signal, options.resize) if options.resize else signal
    if not Path(path).exists() and is_builtin(str(path)):
        return builtin_signal(str(path), options.resize)
    path = Path(path)
    if not path.exists():
        raise SpecfitError(f"no such file: {path}")
    if path.is_dir():
        raise SpecfitError(f"{path} is a directory, not a signal file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise SpecfitError(f"{path} is not a regular file (a FIFO, socket or device); give a signal file")
    suffix = suffix_of(path)
    candidates = kinds_for_suffix(suffix)
    if not candidates:
        supported = ", ".join(supported_suffixes())
        raise SpecfitError(f"{path}: unsupported file type {suffix or '(none)'}; supported: {supported}")
    if len(candidates) > 1:  # an .npy array: an image or a volume
        wanted = options.kind or _npy_kind(path)
        chosen = [kind for kind in candidates if kind.name == wanted]
        if not chosen:
            names = " or ".join(kind.name for kind in candidates)
            raise SpecfitError(f"--kind {wanted} does not apply to {suffix} files (use {names})")
        candidates = chosen
    return candidates[0].load(path, options)


def at_working_size(signal: object) -> object:
    """``signal`` shrunk to :data:`WORKING_SIZE` (its shorter side) if it is an image larger than
    that, recorded in its ``load_options`` as the ``resize`` it was loaded with (so a run loads it
    again the same); any other signal as it is."""
    if getattr(signal, "kind", None) != "image" or min(signal.spatial_shape) <= WORKING_SIZE:
        return signal
    shrunk = resize_image(signal, WORKING_SIZE)
    shrunk.load_options = {**signal.load_options, "resize": WORKING_SIZE}
    return shrunk
