"""Example signals for the documentation's commands, made on the spot with no network and no data
folder: images that scikit-image installs with itself, and a synthetic sound.

``specfit example NAME`` writes one to a file (see :func:`write_example`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.signals.audio import write_audio
from specfit.signals.image import write_image

CHORD_RATE = 16000  # Hz
CHORD_SECONDS = 3.0


@dataclass(frozen=True)
class Example:
    """An example signal: what it is, its file suffix, and how to make its values (``(C, *grid)``
    in [0, 1]) and write them."""

    description: str
    suffix: str
    values: Callable[[], torch.Tensor]
    write: Callable[[Path, torch.Tensor], None]


def _skimage(name: str) -> Callable[[], torch.Tensor]:
    def values() -> torch.Tensor:
        from skimage import data

        pixels = np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0
        pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))

    return values


def chord_values() -> torch.Tensor:
    """``(1, T)``: three seconds at 16 kHz of an A major chord (220, 277.2 and 329.6 Hz, with
    harmonics) under a rising chirp (500 Hz to 4 kHz), faded in and out, in [0, 1]."""
    t = np.arange(int(CHORD_RATE * CHORD_SECONDS)) / CHORD_RATE
    chord = sum(np.sin(2 * np.pi * f * k * t) / k for f in (220.0, 277.18, 329.63) for k in (1, 2, 3))
    chirp = np.sin(2 * np.pi * (500.0 * t + (4000.0 - 500.0) / (2 * CHORD_SECONDS) * t**2))
    fade = np.minimum(1.0, np.minimum(t, CHORD_SECONDS - t) / 0.05)
    wave = fade * (chord / 5.5 + 0.3 * chirp)
    return torch.from_numpy((0.5 + 0.5 * wave / np.abs(wave).max() * 0.9)[None].astype(np.float32))


EXAMPLES = {
    "camera": Example("512 x 512 grey photo of a cameraman (scikit-image; the bundled default)", ".png",
                      _skimage("camera"), write_image),
    "astronaut": Example("512 x 512 colour portrait of astronaut Eileen Collins (scikit-image)", ".png",
                         _skimage("astronaut"), write_image),
    "coffee": Example("600 x 400 colour photo of a cup of coffee (scikit-image)", ".png", _skimage("coffee"),
                      write_image),
    "chord": Example(f"{CHORD_SECONDS:g} s of sound at {CHORD_RATE // 1000} kHz: a chord under a rising "
                     "chirp (synthetic)", ".wav", chord_values,
                     lambda path, values: write_audio(path, values, CHORD_RATE)),
}


def write_example(name: str, path: Path) -> Path:
    """Write the example ``name`` (one of :data:`EXAMPLES`) to ``path``; returns it."""
    if name not in EXAMPLES:
        raise SpecfitError(f"unknown example {name!r}; the examples: {', '.join(EXAMPLES)}")
    example = EXAMPLES[name]
    example.write(Path(path), example.values())
    return Path(path)
