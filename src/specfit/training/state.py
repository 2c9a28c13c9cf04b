"""The training state a checkpoint holds, so an interrupted fit continues exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrainingState:
    """Everything a :class:`~specfit.training.loop.Trainer` needs to continue one network from
    step ``step``; networks trained together have one each, as each would hold it trained alone
    (its own parameters and Adam moments; the schedule, mini-batch generator and step are shared).

    Attributes:
        step: optimiser steps completed.
        model: the parameters after ``step`` steps (name -> tensor, as ``state_dict``).
        optimiser, scheduler: the ``state_dict`` of Adam and of the learning-rate schedule.
        generator: the mini-batch generator's state (``None`` for full-batch training).
        best_score, best_step, best: the best training score so far, its step and parameters.
        history: the evaluation records so far.
        seconds, step_seconds: training wall time and time inside steps so far.
    """

    step: int
    model: dict[str, torch.Tensor]
    optimiser: dict
    scheduler: dict
    generator: torch.Tensor | None
    best_score: float
    best_step: int
    best: dict[str, torch.Tensor] | None
    history: list[dict]
    seconds: float = 0.0
    step_seconds: float = 0.0


