"""One :class:`Task` per signal type; :func:`task_for` picks it for a loaded signal."""

from __future__ import annotations

from specfit.tasks.base import Outcome, Task, TrainingData

__all__ = ["Outcome", "Task", "TrainingData", "task_for"]
