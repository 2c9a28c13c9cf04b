"""One :class:`Task` per signal type; :func:`task_for` picks it for a loaded signal."""

from __future__ import annotations

from specfit.errors import SpecfitError
from specfit.tasks.base import Outcome, Task, TrainingData

SHAPE_TARGETS = ("occupancy", "sdf")


def task_for(signal: object, shape_target: str = "occupancy", video_spectrum: str = "frames") -> Task:
    """The task that fits ``signal`` (a grid :class:`~specfit.signals.base.Signal` or a shape).

    ``shape_target`` chooses what a shape's network predicts: ``"occupancy"`` (logits, trained
    with cross-entropy) or ``"sdf"`` (signed distance, trained with L1). ``video_spectrum``
    chooses FreSh's spectrum for a clip: ``"frames"`` (mean per-frame 2-D spectra, the published
    way) or ``"3d"``.
    """
    if shape_target not in SHAPE_TARGETS:
        raise SpecfitError(f"--shape-target must be one of {', '.join(SHAPE_TARGETS)}, got {shape_target!r}")
    from specfit.signals.base import Signal
    from specfit.tasks.audio import AudioTask
    from specfit.tasks.image import ImageTask
    from specfit.tasks.video import VIDEO_SPECTRA, VideoTask
    from specfit.tasks.volume import VolumeTask

    if video_spectrum not in VIDEO_SPECTRA:
        raise SpecfitError(
            f"--video-spectrum must be one of {', '.join(VIDEO_SPECTRA)}, got {video_spectrum!r}")
    if isinstance(signal, Signal):
        if signal.kind == "image":
            return ImageTask(signal)
        if signal.kind == "audio":
            return AudioTask(signal)
        if signal.kind == "volume":
            return VolumeTask(signal)
        if signal.kind == "video":
            return VideoTask(signal, video_spectrum)
    if getattr(signal, "kind", None) == "shape":
        from specfit.tasks.shape import ShapeTask

        return ShapeTask(signal, shape_target)  # type: ignore[arg-type]
    raise SpecfitError(f"no task fits signals of type {getattr(signal, 'kind', type(signal).__name__)}")


__all__ = ["Outcome", "Task", "TrainingData", "task_for"]
