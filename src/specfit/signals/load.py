"""Recognise a signal file and load it."""

from __future__ import annotations

from pathlib import Path

from specfit.errors import SpecfitError
from specfit.signals.base import Signal
from specfit.signals.image import IMAGE_SUFFIXES, image_from_array, load_image

SUPPORTED = (*IMAGE_SUFFIXES, ".npy")


def default_signal() -> Signal:
    """The bundled default: scikit-image's 512 x 512 grey ``cameraman``."""
    from skimage import data

    signal = image_from_array(data.camera(), "cameraman")
    signal.source = "skimage.data.camera"
    return signal


def load_signal(path: str | Path | None) -> Signal:
    """Load a signal from ``path`` (``None`` gives the bundled default image)."""
    if path is None:
        return default_signal()
    path = Path(path)
    if not path.exists():
        raise SpecfitError(f"no such file: {path}")
    if path.is_dir():
        raise SpecfitError(f"{path} is a directory, not a signal file")
    if path.suffix.lower() not in SUPPORTED:
        raise SpecfitError(
            f"{path}: unsupported file type {path.suffix or '(none)'}; supported: {', '.join(SUPPORTED)}"
        )
    return load_image(path)
