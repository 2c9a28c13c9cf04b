"""One :class:`Task` per signal type; :func:`task_for` picks it for a loaded signal."""

from __future__ import annotations

from specfit.errors import SpecfitError
from specfit.tasks.base import Outcome, Task, TrainingData


def task_for(signal: object) -> Task:
    """The task that fits ``signal`` (a grid :class:`~specfit.signals.base.Signal` or a shape)."""
    from specfit.signals.base import Signal
    from specfit.tasks.image import ImageTask

    if isinstance(signal, Signal) and signal.kind == "image":
        return ImageTask(signal)
    raise SpecfitError(f"no task fits signals of type {getattr(signal, 'kind', type(signal).__name__)}")


__all__ = ["Outcome", "Task", "TrainingData", "task_for"]
