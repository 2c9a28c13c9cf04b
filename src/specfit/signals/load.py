"""Recognise a signal file by its suffix (and an array's shape) and load it."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from specfit.errors import SpecfitError
from specfit.signals.audio import AUDIO_SUFFIXES, load_audio, resample_audio
from specfit.signals.base import Signal
from specfit.signals.image import IMAGE_SUFFIXES, image_from_array, load_image, resize_image
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, npy_header
from specfit.signals.video import VIDEO_SUFFIXES, load_video
from specfit.signals.volume import VOLUME_SUFFIXES, load_volume, resize_volume

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb")
KINDS = ("image", "audio", "video", "volume", "shape")
SUPPORTED = (*IMAGE_SUFFIXES, ".npy", *AUDIO_SUFFIXES, *VIDEO_SUFFIXES, *VOLUME_SUFFIXES, *MESH_SUFFIXES)


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
    """

    kind: str | None = None
    resize: int | None = None
    max_seconds: float | None = None
    sample_rate: int | None = None
    max_frames: int | None = None
    frame_step: int = 1
    allow_open: bool = False
    max_samples: int = DEFAULT_MAX_SAMPLES


def default_signal() -> Signal:
    """The bundled default: scikit-image's 512 x 512 grey ``cameraman``."""
    from skimage import data

    signal = image_from_array(data.camera(), "cameraman")
    signal.source = "skimage.data.camera"
    return signal


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _load_npy(path: Path, kind: str | None, max_samples: int) -> Signal:
    """Decide the kind from the header's shape (see :class:`LoadOptions`), then load."""
    if kind is None:
        shape = npy_header(path)[0]
        image_like = len(shape) == 2 or (len(shape) == 3 and shape[-1] <= 4)
        kind = "image" if image_like else "volume"
    if kind == "image":
        return load_image(path, max_samples=max_samples)
    if kind == "volume":
        return load_volume(path, max_samples=max_samples)
    raise SpecfitError(f"--kind {kind} does not apply to .npy arrays (use image or volume)")


def load_signal(path: str | Path | None, options: LoadOptions | None = None) -> object:
    """Load a signal from ``path`` (``None`` gives the bundled default image).

    Returns a grid :class:`~specfit.signals.base.Signal` (image, audio, video, volume) or, for a
    mesh file, a :class:`specfit.signals.shape.Shape`, with ``load_options`` recording
    ``options`` so that a run can load it again.
    """
    options = options or LoadOptions()
    signal = _load(path, options)
    signal.load_options = asdict(options)
    return signal


def _load(path: str | Path | None, options: LoadOptions) -> object:
    if options.kind is not None and options.kind not in KINDS:
        raise SpecfitError(f"--kind must be one of {', '.join(KINDS)}, got {options.kind!r}")
    if options.resize is not None and options.resize < 1:
        raise SpecfitError(f"--resize must be at least 1, got {options.resize}")
    if options.max_samples < 1:
        raise SpecfitError(f"--max-samples must be at least 1, got {options.max_samples}")
    if path is None:
        signal = default_signal()
        return resize_image(signal, options.resize) if options.resize else signal
    path = Path(path)
    if not path.exists():
        raise SpecfitError(f"no such file: {path}")
    if path.is_dir():
        raise SpecfitError(f"{path} is a directory, not a signal file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise SpecfitError(f"{path} is not a regular file (a FIFO, socket or device); give a signal file")
    suffix = _suffix(path)
    if suffix not in SUPPORTED:
        raise SpecfitError(
            f"{path}: unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED)}"
        )
    if suffix in MESH_SUFFIXES:
        from specfit.signals.shape import load_mesh

        return load_mesh(path, allow_open=options.allow_open)
    if suffix in AUDIO_SUFFIXES:
        signal = load_audio(path, options.max_seconds, max_samples=options.max_samples)
        if options.sample_rate is None:
            return signal
        return resample_audio(signal, options.sample_rate, options.max_samples)
    if suffix in VIDEO_SUFFIXES:
        return load_video(path, options.max_frames, options.frame_step, options.resize,
                          max_samples=options.max_samples)
    if suffix in VOLUME_SUFFIXES:
        signal = load_volume(path, max_samples=options.max_samples)
    elif suffix == ".npy":
        signal = _load_npy(path, options.kind, options.max_samples)
    else:
        signal = load_image(path, max_samples=options.max_samples)
    if options.resize and signal.kind == "volume":
        return resize_volume(signal, options.resize, options.max_samples)
    return resize_image(signal, options.resize) if options.resize else signal
