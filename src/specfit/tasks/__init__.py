"""One :class:`Task` per signal type; :func:`task_for` picks it for a loaded signal."""

from __future__ import annotations

from specfit.errors import SpecfitError
from specfit.tasks.base import Outcome, Task, TrainingData

SHAPE_TARGETS = ("occupancy", "sdf")
VIDEO_SPECTRA = ("frames", "3d")


def task_for(signal: object, shape_target: str = "occupancy", video_spectrum: str = "frames") -> Task:
    """The task that fits ``signal`` (a grid :class:`~specfit.signals.base.Signal` or a shape),
    made by its kind (:mod:`specfit.kinds`).

    ``shape_target`` chooses what a shape's network predicts: ``"occupancy"`` (logits, trained
    with cross-entropy) or ``"sdf"`` (signed distance, trained with L1). ``video_spectrum``
    chooses FreSh's spectrum for a clip: ``"frames"`` (mean per-frame 2-D spectra, the published
    way) or ``"3d"``.
    """
    from specfit.kinds import get_kind

    for name, value, choices in (("shape_target", shape_target, SHAPE_TARGETS),
                                 ("video_spectrum", video_spectrum, VIDEO_SPECTRA)):
        if value not in choices:
            raise SpecfitError(f"{name} must be one of {', '.join(choices)}, got {value!r}", setting=name)
    kind = getattr(signal, "kind", None)
    if not isinstance(kind, str):
        raise SpecfitError(f"no task fits a {type(signal).__name__}")
    return get_kind(kind).task(signal, shape_target=shape_target, video_spectrum=video_spectrum)


__all__ = ["Outcome", "Task", "TrainingData", "task_for"]
