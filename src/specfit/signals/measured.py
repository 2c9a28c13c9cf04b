"""Signals seen only through measurements: CT (an image through parallel-beam projections) and MRI
(a volume through a random subset of its 3-D Fourier coefficients).

Each is a grid :class:`~specfit.signals.base.Signal` holding the ground truth (used only to score
the reconstruction) whose ``kind`` is ``"ct"`` or ``"mri"`` and whose ``meta`` holds how it is
measured; the task (:mod:`specfit.tasks.ct`, :mod:`specfit.tasks.mri`) simulates the measurements
from it, deterministically. Built-in test objects (no file needed): ``shepp-logan`` (scikit-image's
phantom), ``phantom-SEED`` (a random Shepp-Logan-style 2-D phantom) and ``phantom3d-SEED`` (its 3-D
counterpart).
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from specfit.errors import SpecfitError
from specfit.signals import phantoms
from specfit.signals.base import Signal
from specfit.signals.image import image_from_array
from specfit.signals.measure_options import DEFAULT_KSPACE_FRACTION, DEFAULT_PROJECTIONS, MEASURES
from specfit.signals.volume import volume_from_array

MAX_PROJECTIONS = 4096
PHANTOM_SIDE = 256
PHANTOM_SIDE_3D = 64
MAX_PHANTOM_SIDE = 2048
MAX_PHANTOM_SIDE_3D = 256
_BUILTIN = re.compile(r"^(shepp-logan|phantom-(\d{1,9})|phantom3d-(\d{1,9}))$")


def is_builtin(name: str) -> bool:
    """Whether ``name`` names a built-in test object (``shepp-logan``, ``phantom-7``, ``phantom3d-7``)."""
    return bool(_BUILTIN.match(name))


def builtin_signal(name: str, size: int | None = None) -> Signal:
    """The built-in object ``name`` at ``size`` pixels a side (default 256; 64 for 3-D phantoms)."""

    match = _BUILTIN.match(name)
    if match is None:
        raise SpecfitError(f"unknown built-in signal {name!r}; use shepp-logan, phantom-SEED or "
                           "phantom3d-SEED")
    three_d = match.group(3) is not None
    limit = MAX_PHANTOM_SIDE_3D if three_d else MAX_PHANTOM_SIDE
    side = size or (PHANTOM_SIDE_3D if three_d else PHANTOM_SIDE)
    if not 8 <= side <= limit:
        raise SpecfitError(f"--resize for {name} must be 8 to {limit}, got {side}")
    if three_d:
        signal = volume_from_array(phantoms.random_phantom_3d(side, int(match.group(3))), name)
    elif match.group(2) is not None:
        signal = image_from_array(phantoms.random_phantom(side, int(match.group(2))), name)
    else:
        signal = image_from_array(phantoms.shepp_logan(side), name)
    signal.source = name
    return signal


def _grey(signal: Signal, notes: list[str]) -> torch.Tensor:
    """One channel: colour channels averaged, alpha dropped."""
    values = signal.values
    if signal.mode in ("LA", "RGBA"):
        values = values[:-1]
        notes.append("alpha channel dropped")
    if values.shape[0] > 1:
        notes.append(f"{values.shape[0]} channels averaged to one (measurements see one value per point)")
        values = values.mean(dim=0, keepdim=True)
    return values


def ct_signal(image: Signal, projections: int = DEFAULT_PROJECTIONS) -> Signal:
    """``image`` observed through ``projections`` parallel-beam projections over [0, 180) degrees.

    The image is made grey and square (centre crop); the projections see what lies inside its
    inscribed circle, so the reconstruction is scored there and zero outside.
    """
    if image.kind != "image":
        raise SpecfitError(f"CT measures an image; this signal is a {image.kind}")
    if not 1 <= projections <= MAX_PROJECTIONS:
        raise SpecfitError(f"--projections must be 1 to {MAX_PROJECTIONS}, got {projections}")
    notes = list(image.notes)
    values = _grey(image, notes)
    height, width = values.shape[1:]
    side = min(height, width)
    if height != width:
        top, left = (height - side) // 2, (width - side) // 2
        values = values[:, top : top + side, left : left + side]
        notes.append(f"centre-cropped to {side} x {side} (CT reconstructs a square)")
    return Signal(values.contiguous(), image.name, kind="ct", mode="L", bit_depth=image.bit_depth,
                  source=image.source, notes=notes, meta={"projections": projections})


def mri_signal(volume: Signal, fraction: float = DEFAULT_KSPACE_FRACTION, mask_seed: int = 0) -> Signal:
    """``volume`` observed through a seeded random ``fraction`` of its 3-D DFT coefficients.

    The volume is made one-channel and zero-padded to a cube (the k-space spectra FreSh compares
    are defined on cubes).
    """
    if volume.kind != "volume":
        raise SpecfitError(f"MRI measures a volume; this signal is a {volume.kind}")
    if not 0.0 < fraction <= 1.0:
        raise SpecfitError(f"--kspace-fraction must be in (0, 1], got {fraction}")
    notes = list(volume.notes)
    values = _grey(volume, notes)
    spatial = values.shape[1:]
    side = max(spatial)
    if any(n != side for n in spatial):
        pad = []
        for n in reversed(spatial):
            pad += [(side - n) // 2, side - n - (side - n) // 2]
        values = F.pad(values, pad)
        notes.append(f"zero-padded from {' x '.join(map(str, spatial))} to a {side}^3 cube")
    meta = {"kspace_fraction": fraction, "mask_seed": mask_seed}
    return Signal(values.contiguous(), volume.name, kind="mri", mode="L", bit_depth=volume.bit_depth,
                  source=volume.source, notes=notes, meta=meta)


def measured_from_array(array: np.ndarray, name: str, measure: str, **options: object) -> Signal:
    """A CT or MRI signal from an in-memory image ``(H, W)`` or volume ``(D, H, W)`` in [0, 1]."""
    if measure == "ct":
        return ct_signal(image_from_array(array, name), int(options.get("projections", DEFAULT_PROJECTIONS)))
    if measure == "mri":
        return mri_signal(volume_from_array(array, name),
                          float(options.get("kspace_fraction", DEFAULT_KSPACE_FRACTION)),
                          int(options.get("mask_seed", 0)))
    raise SpecfitError(f"unknown measurement {measure!r}; choose from {', '.join(MEASURES)}")
