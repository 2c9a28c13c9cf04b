"""What a planned fit will cost, told before it starts: the memory training needs and the time it
should take, from a few training steps timed on the machine itself.

The steps are timed on a mini-batch of at most :data:`TIMED_SAMPLES` samples and scaled to the
fit's samples per step (a step's cost grows with its samples), eagerly (a compiled run may be
somewhat faster once compiled); one evaluation is timed as the fit runs it. FreSh's selection is
not included. Global random state is left as it was, so the fit that follows is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from specfit.fitting.pipeline import Choice, FitPlan, prepare, single_model
from specfit.training.loop import Trainer

TIMED_STEPS = 3  # after one step that warms up
TIMED_SAMPLES = 8192


@dataclass(frozen=True)
class FitEstimate:
    """A fit's expected cost.

    Attributes:
        samples_per_step: samples one training step sees (the training samples, or a mini-batch).
        memory_bytes: bytes training needs, by the model's estimate.
        step_seconds: seconds one training step should take; eval_seconds: one evaluation.
        steps: the training steps; evaluations: how many evaluations they include.
    """

    samples_per_step: int
    memory_bytes: int
    step_seconds: float
    eval_seconds: float
    steps: int
    evaluations: int

    @property
    def seconds(self) -> float:
        """The training's expected wall time, in seconds."""
        return self.steps * self.step_seconds + self.evaluations * self.eval_seconds


def estimate_fit(plan: FitPlan) -> FitEstimate:
    """Time :data:`TIMED_STEPS` training steps of ``plan``'s model (at its knob's value before
    FreSh, after one step that warms up) and one evaluation, and scale them to the fit (see the
    module docstring)."""
    devices = [plan.device] if plan.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        ready = prepare(plan, Choice(plan.params, plan.mode))
        sampling = ready.data.sampling
        training = int(sampling.coords[sampling.train].shape[0])
        per_step = min(ready.options.batch_size or training, training)
        timed = max(1, min(per_step, TIMED_SAMPLES))
        strategy = single_model(plan, ready)
        for steps in (1, TIMED_STEPS):  # one step to warm up, then the timed ones
            options = replace(ready.options, steps=steps, batch_size=timed, eval_every=steps, compile="off",
                              checkpoint_every=0, schedule="none")
            (result,) = Trainer(strategy, options, plan.entry.lr, plan.entry.adam_betas,
                                plan.entry.adam_eps).fit()
    fit = ready.options
    return FitEstimate(
        samples_per_step=per_step, memory_bytes=plan.memory_bytes,
        step_seconds=result.step_seconds / TIMED_STEPS * per_step / timed,
        eval_seconds=max(0.0, result.train_seconds - result.step_seconds),
        steps=fit.steps, evaluations=math.ceil(fit.steps / fit.eval_every),
    )
