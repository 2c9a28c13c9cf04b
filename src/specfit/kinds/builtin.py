"""The signal kinds specfit ships (see :mod:`specfit.kinds.registry`): image, audio, video, volume and shape,
fitted directly, and ct, mri and nerf, seen only through measurements."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from specfit.errors import SpecfitError
from specfit.kinds import checks, render
from specfit.kinds.kind import MAX_CHANNELS, LoadOptions, SignalKind
from specfit.signals.audio import AUDIO_SUFFIXES, WAV_FIELD_MAX, audio_from_array, load_audio, resample_audio
from specfit.signals.image import IMAGE_SUFFIXES, image_from_array, load_image, resize_image
from specfit.signals.measured import measured_from_array
from specfit.signals.scene import load_scene
from specfit.signals.shape import MESH_SUFFIXES, load_mesh
from specfit.signals.video import DEFAULT_FPS, MAX_FPS, VIDEO_SUFFIXES, load_video, video_from_array
from specfit.signals.volume import VOLUME_SUFFIXES, load_volume, resize_volume, volume_from_array
from specfit.tasks.audio import AudioTask
from specfit.tasks.base import SHAPE_TARGETS
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
    signal = load_audio(path, options.max_seconds, max_samples=options.max_samples,
                        start_seconds=options.start_seconds)
    if options.sample_rate is None:
        return signal
    return resample_audio(signal, options.sample_rate, options.max_samples)


def _audio_array(array: np.ndarray, name: str, options: dict) -> object:
    if "sample_rate" not in options:
        raise SpecfitError("audio arrays need sample_rate=", setting="sample_rate")
    return audio_from_array(array, int(options.pop("sample_rate")), name,
                            max_seconds=options.pop("max_seconds", None),
                            start_seconds=float(options.pop("start_seconds", 0.0)))


def _video(path: Path, options: LoadOptions) -> object:
    return load_video(path, options.max_frames, options.frame_step, options.resize,
                      max_samples=options.max_samples, start_frame=options.start_frame)


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


def _grid(
    axes: int, meta: Callable[[Mapping, Path], None] | None = None
) -> Callable[[Mapping, int, Path], None]:
    """The check of a grid signal's saved description with ``axes`` sizes ``[C, *spatial]``, and
    of its ``meta`` by ``meta(meta, where)``."""

    def check(signal: Mapping, channels: int, where: Path) -> None:
        fields = checks.grid_description(signal, axes, channels, where)
        if meta is not None:
            meta(fields, where)

    return check


def _audio_meta(meta: Mapping, where: Path) -> None:
    checks.number(meta.get("sample_rate"), where, "signal.meta.sample_rate", True, WAV_FIELD_MAX)


def _video_meta(meta: Mapping, where: Path) -> None:
    if "fps" in meta:
        checks.number(meta["fps"], where, "signal.meta.fps", True, MAX_FPS)


def _volume_meta(meta: Mapping, where: Path) -> None:
    if "spacing" in meta:
        checks.numbers(meta["spacing"], where, "signal.meta.spacing", 3, positive=True)
    if "affine" in meta:
        rows = meta["affine"]
        if not isinstance(rows, list) or len(rows) != 4:
            raise checks.fail(where, "signal.meta.affine", "a 4 x 4 matrix", rows)
        for index, row in enumerate(rows):
            checks.numbers(row, where, f"signal.meta.affine[{index}]", 4)


def _shape_description(signal: Mapping, channels: int, where: Path) -> None:
    """The fields of a mesh's description that rendering its surface reads."""
    checks.numbers(signal.get("center"), where, "signal.center", 3)
    checks.number(signal.get("scale"), where, "signal.scale", positive=True)
    checks.choice(signal.get("target", SHAPE_TARGETS[0]), where, "signal.target", SHAPE_TARGETS)


def _scene_description(signal: Mapping, channels: int, where: Path) -> None:
    """The fields of a NeRF scene's description that rendering its turntable reads."""
    checks.sizes(signal.get("shape"), where, "signal.shape", 4, "[3, views, H, W]")
    for name in ("focal", "near", "far", "radius"):
        checks.number(signal.get(name), where, f"signal.{name}", positive=True)


KINDS = (
    SignalKind(
        name="image", suffixes=(*IMAGE_SUFFIXES, ".npy"), load=_image,
        task=lambda signal, **_: ImageTask(signal), render=render.plan_image, coordinates=2,
        channels=range(1, 5), check_description=_grid(3), scale_size=render.scale_picture,
        from_array=_image_array,
        options=frozenset(("kind", "resize", "max_samples"))),
    SignalKind(
        name="audio", suffixes=AUDIO_SUFFIXES, load=_audio, task=lambda signal, **_: AudioTask(signal),
        render=render.plan_audio, coordinates=1, channels=range(1, MAX_CHANNELS + 1),
        check_description=_grid(2, _audio_meta), scale_size=render.scale_samples, from_array=_audio_array,
        options=frozenset(("max_seconds", "sample_rate", "max_samples"))),
    SignalKind(
        name="video", suffixes=VIDEO_SUFFIXES, load=_video,
        task=lambda signal, video_spectrum="frames", **_: VideoTask(signal, video_spectrum),
        render=render.plan_video, coordinates=3, channels=range(3, 4),
        check_description=_grid(4, _video_meta), scale_size=render.scale_picture, from_array=_video_array,
        options=frozenset(("resize", "max_frames", "frame_step", "max_samples", "video_spectrum"))),
    SignalKind(
        name="volume", suffixes=(*VOLUME_SUFFIXES, ".npy"), load=_volume,
        task=lambda signal, **_: VolumeTask(signal), render=render.plan_volume, coordinates=3,
        channels=range(1, MAX_CHANNELS + 1), check_description=_grid(4, _volume_meta),
        scale_size=render.scale_grid, from_array=_volume_array,
        options=frozenset(("kind", "resize", "max_samples"))),
    SignalKind(
        name="shape", suffixes=MESH_SUFFIXES, load=_shape, task=_shape_task, render=render.plan_shape,
        coordinates=3, channels=range(1, 2), check_description=_shape_description,
        scale_size=render.scale_resolution, raw_outputs=True,
        options=frozenset(("allow_open", "shape_target"))),
    SignalKind(
        name="ct", suffixes=(), load=_not_a_file, task=_ct_task, render=render.plan_image, coordinates=2,
        channels=range(1, 2), check_description=_grid(3), scale_size=render.scale_picture,
        from_array=_measured_array("ct"),
        options=frozenset(("kind", "resize", "max_samples", "measure", "projections"))),
    SignalKind(
        name="mri", suffixes=(), load=_not_a_file, task=_mri_task, render=render.plan_volume, coordinates=3,
        channels=range(1, 2), check_description=_grid(4), scale_size=render.scale_grid,
        from_array=_measured_array("mri"),
        options=frozenset(("kind", "resize", "max_samples", "measure", "kspace_fraction", "mask_seed"))),
    SignalKind(
        name="nerf", suffixes=(".npz",), load=_scene, task=_nerf_task, render=render.plan_nerf, coordinates=3,
        channels=range(4, 5), check_description=_scene_description, scale_size=render.scale_picture,
        options=frozenset(("resize", "max_samples"))),
)
