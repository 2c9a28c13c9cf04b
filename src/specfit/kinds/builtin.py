"""The signal kinds specfit ships (see :mod:`specfit.kinds.registry`): image, audio, video, volume and shape,
fitted directly, and ct, mri and nerf, seen only through measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specfit.errors import SpecfitError
from specfit.kinds import render
from specfit.kinds.kind import MAX_CHANNELS, LoadOptions, SignalKind
from specfit.signals.audio import AUDIO_SUFFIXES, audio_from_array, load_audio, resample_audio
from specfit.signals.image import IMAGE_SUFFIXES, image_from_array, load_image, resize_image
from specfit.signals.measured import measured_from_array
from specfit.signals.scene import load_scene
from specfit.signals.shape import MESH_SUFFIXES, load_mesh
from specfit.signals.video import DEFAULT_FPS, VIDEO_SUFFIXES, load_video, video_from_array
from specfit.signals.volume import VOLUME_SUFFIXES, load_volume, resize_volume, volume_from_array
from specfit.tasks.audio import AudioTask
from specfit.tasks.ct import CTTask
from specfit.tasks.image import ImageTask
from specfit.tasks.mri import MRITask
from specfit.tasks.nerf import NerfTask
from specfit.tasks.shape import ShapeTask
from specfit.tasks.video import VideoTask
from specfit.tasks.volume import VolumeTask


def _image(path: Path, options: LoadOptions) -> object:
    signal = load_image(path, max_samples=options.max_samples)
    return resize_image(signal, options.resize) if options.resize else signal


def _image_array(array: np.ndarray, name: str, options: dict) -> object:
    signal = image_from_array(array, name)
    resize = options.pop("resize", None)
    return resize_image(signal, int(resize)) if resize else signal


def _audio(path: Path, options: LoadOptions) -> object:
    signal = load_audio(path, options.max_seconds, max_samples=options.max_samples)
    if options.sample_rate is None:
        return signal
    return resample_audio(signal, options.sample_rate, options.max_samples)


def _audio_array(array: np.ndarray, name: str, options: dict) -> object:
    if "sample_rate" not in options:
        raise SpecfitError("audio arrays need sample_rate=", setting="sample_rate")
    return audio_from_array(array, int(options.pop("sample_rate")), name,
                            max_seconds=options.pop("max_seconds", None))


def _video(path: Path, options: LoadOptions) -> object:
    return load_video(path, options.max_frames, options.frame_step, options.resize,
                      max_samples=options.max_samples)


def _video_array(array: np.ndarray, name: str, options: dict) -> object:
    return video_from_array(array, float(options.pop("fps", DEFAULT_FPS)), name)


def _volume(path: Path, options: LoadOptions) -> object:
    signal = load_volume(path, max_samples=options.max_samples)
    return resize_volume(signal, options.resize, options.max_samples) if options.resize else signal


def _volume_array(array: np.ndarray, name: str, options: dict) -> object:
    signal = volume_from_array(array, name)
    resize = options.pop("resize", None)
    return resize_volume(signal, int(resize)) if resize else signal


def _not_a_file(path: Path, options: LoadOptions) -> object:
    raise SpecfitError(f"{path}: CT and MRI signals are made from an image or a volume with --task")


def _measured_array(measure: str):
    def make(array: np.ndarray, name: str, options: dict) -> object:
        keys = ("projections",) if measure == "ct" else ("kspace_fraction", "mask_seed")
        picked = {key: options.pop(key) for key in keys if key in options}
        return measured_from_array(array, name, measure, **picked)

    return make


def _ct_task(signal: object, **_: object) -> object:
    return CTTask(signal)


def _mri_task(signal: object, **_: object) -> object:
    return MRITask(signal)


def _scene(path: Path, options: LoadOptions) -> object:
    return load_scene(path, resize=options.resize, max_samples=options.max_samples)


def _nerf_task(scene: object, **_: object) -> object:
    return NerfTask(scene)


def _shape(path: Path, options: LoadOptions) -> object:
    return load_mesh(path, allow_open=options.allow_open)


def _shape_task(shape: object, shape_target: str = "occupancy", **_: object) -> object:
    return ShapeTask(shape, shape_target)


KINDS = (
    SignalKind("image", (*IMAGE_SUFFIXES, ".npy"), _image, lambda signal, **_: ImageTask(signal),
               render.plan_image, 2, range(1, 5), _image_array),
    SignalKind("audio", AUDIO_SUFFIXES, _audio, lambda signal, **_: AudioTask(signal), render.plan_audio, 1,
               range(1, MAX_CHANNELS + 1), _audio_array),
    SignalKind("video", VIDEO_SUFFIXES, _video,
               lambda signal, video_spectrum="frames", **_: VideoTask(signal, video_spectrum),
               render.plan_video, 3, range(3, 4), _video_array),
    SignalKind("volume", (*VOLUME_SUFFIXES, ".npy"), _volume, lambda signal, **_: VolumeTask(signal),
               render.plan_volume, 3, range(1, MAX_CHANNELS + 1), _volume_array),
    SignalKind("shape", MESH_SUFFIXES, _shape, _shape_task, render.plan_shape, 3, range(1, 2)),
    SignalKind("ct", (), _not_a_file, _ct_task, render.plan_image, 2, range(1, 2), _measured_array("ct")),
    SignalKind("mri", (), _not_a_file, _mri_task, render.plan_volume, 3, range(1, 2), _measured_array("mri")),
    SignalKind("nerf", (".npz",), _scene, _nerf_task, render.plan_nerf, 3, range(4, 5)),
)
