"""Compaction of a trained :class:`~specfit.models.tuner.IntegerSineNet`.

One schedule, in this order:

1. **Densify** (``plan.densify > 0``): add inputs at ``2 k_j`` for the ``densify`` strongest inputs
   (largest :meth:`~IntegerSineNet.input_strength`). The seed adds them "where the fit is poor"; the
   strongest columns stand in for that (the inputs the network leans on most are where finer detail
   is wanted). New inputs start near zero (see :meth:`~IntegerSineNet.densify`) and are never pruning
   candidates in the same run.
2. **Ramp** (``plan.target_inputs``): rank the other inputs by column L1 norm, choose the
   ``K = m - target_inputs`` weakest and train ``ramp_steps`` steps with the column penalty
   ``alpha * s / ramp_steps`` on them at step ``s`` (linear from 0 to ``alpha``). The ramp evaluates
   only at its last step, so :func:`~specfit.training.loop.fit_model`'s best-by-training-PSNR selection keeps
   the end of the ramp (an early, unpenalised state would defeat it).

   The scale of ``alpha`` (the paper gives no value): the data term is a *mean* squared error, whose
   gradient on one hidden weight is tiny once the fit is good, while the penalty's is ``alpha`` on
   every weight of a penalised column. With ``alpha = 1e-5`` the ramp left the columns unchanged: a
   2-300-300-3 network pruned to 60 inputs on a 128 px image fell to 12 dB the moment they were
   removed, as with no ramp at all, and 300 fine-tuning steps recovered 28.8 of its 31.9 dB. With
   ``alpha`` from ``3e-3`` to ``1e-1`` the ramp moves the fit onto the kept columns (about 29 dB
   right after removal) and the same schedule ends at 31.6-31.8 dB. The default ``1e-2`` is in the
   middle of that range.
3. **Prune** the ``K`` inputs (:meth:`~IntegerSineNet.prune_inputs`), then **fine-tune**
   ``finetune_steps`` steps with a fresh optimiser (``fit_model`` builds one per call, keeping the
   best model by training PSNR as usual).

Each training phase applies ``options`` (schedule, batch size, ...) with its own step count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from specfit.errors import SpecfitError
from specfit.metrics import psnr
from specfit.models.evaluate import predict
from specfit.models.params import check_fields, param
from specfit.models.tuner import IntegerSineNet
from specfit.signals.sampling import Sampling
from specfit.training.loop import FitOptions, fit_model
from specfit.util.files import dumps


@dataclass
class CompactionPlan:
    """What :func:`compact` does (see the module docstring); each field's help says what it sets."""

    target_inputs: int | None = param(
        None, "after training, prune the input frequencies down to M", minimum=1, flag="--prune-to",
        metavar="M")
    densify: int = param(
        0, "after training, add K inputs at twice the strongest frequencies", minimum=0, metavar="K")
    ramp_steps: int = param(
        500, "steps of ramped L1 penalty on the weakest inputs before pruning (0: prune at once)", minimum=0,
        metavar="N")
    finetune_steps: int = param(500, "steps after pruning", minimum=0, metavar="N")
    alpha: float = param(
        1e-2, "final L1 weight of the ramp on the weakest inputs, next to the mean squared error",
        minimum=0.0, flag="--prune-alpha", metavar="A")

    def check(self, model: IntegerSineNet | None = None) -> None:
        """Raise :class:`SpecfitError` for values that make no sense (against ``model`` when given)."""
        check_fields(self)
        if self.target_inputs is None and self.densify == 0:
            raise SpecfitError("a compaction plan needs target_inputs or densify")
        if model is None:
            return
        if not isinstance(model, IntegerSineNet) or not model.hidden:
            raise SpecfitError("compaction needs an IntegerSineNet with at least one hidden layer")
        if self.densify > model.inputs:
            raise SpecfitError(f"densify ({self.densify}) exceeds the number of inputs ({model.inputs})")
        if self.target_inputs is not None:
            if self.target_inputs >= model.inputs + self.densify:
                raise SpecfitError(
                    f"target_inputs ({self.target_inputs}) must be below the current inputs "
                    f"({model.inputs}, plus {self.densify} added)"
                )
            if self.target_inputs < model.in_features:
                raise SpecfitError(
                    f"target_inputs ({self.target_inputs}) must be at least the input dimension "
                    f"({model.in_features})"
                )
            if self.target_inputs < self.densify:
                raise SpecfitError(f"target_inputs ({self.target_inputs}) must keep the {self.densify} added")


@dataclass
class CompactionResult:
    """Before/after records (``inputs``, ``trainable``, ``with_frequencies`` = trainable + frozen
    frequencies, ``stored`` = every value in the state dict, ``psnr``/``psnr_train``/``psnr_test`` in
    dB), the frequencies removed and added (integer vectors), the training history (records of
    ``fit_model`` with ``phase`` "ramp" or "finetune" and ``step`` counted across phases)."""

    plan: CompactionPlan
    before: dict
    after: dict
    pruned_frequencies: list[list[int]]
    added_frequencies: list[list[int]]
    history: list[dict]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (non-finite floats made representable as in ``specfit.runs.folder``)."""
        data = dataclasses.asdict(self)
        return json.loads(dumps(data))


def snapshot(
    model: IntegerSineNet, targets: torch.Tensor, sampling: Sampling,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
) -> dict:
    """Size and quality of ``model`` now: inputs, parameter counts and PSNR on all/train/test samples."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    pred, unit = to_unit(predict(model, sampling.coords)), to_unit(targets)
    return {
        "inputs": model.inputs,
        "trainable": trainable,
        "with_frequencies": trainable + model.frequencies.numel(),
        "stored": sum(v.numel() for v in model.state_dict().values()),
        "psnr": psnr(pred, unit),
        "psnr_train": psnr(pred[sampling.train], unit[sampling.train]),
        "psnr_test": None if sampling.test is None else psnr(pred[sampling.test], unit[sampling.test]),
    }


def compact(
    model: IntegerSineNet,
    targets: torch.Tensor,
    sampling: Sampling,
    plan: CompactionPlan,
    options: FitOptions,
    lr: float,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
    on_step: Callable[[int], None] | None = None,
    on_eval: Callable[[dict], None] | None = None,
    compile_ok: bool = True,
) -> CompactionResult:
    """Densify, ramp, prune and fine-tune ``model`` in place (see the module docstring).

    Args:
        model: a trained network on the same device as ``targets`` and ``sampling.coords``.
        targets: ``(N, C)`` values of all samples in the model's value range.
        sampling: coordinates and split; PSNRs use ``sampling.train`` / ``sampling.test``.
        plan: what to do; checked against ``model`` first.
        options: training settings for each phase (``steps`` and, for the ramp, ``eval_every`` are
            replaced by the plan's).
        lr, to_unit, compile_ok: as for :func:`~specfit.training.loop.fit_model`.
        on_step: called with the step number counted across both training phases.
        on_eval: called with each history record (see :class:`CompactionResult`).
    """
    plan.check(model)
    options.check()
    started = time.perf_counter()
    before = snapshot(model, targets, sampling, to_unit)
    history: list[dict] = []
    notes: list[str] = []
    offset = 0

    def train(phase: str, steps: int, fit_options: FitOptions, before_step: Callable[[int], None]) -> None:
        nonlocal offset
        start = offset

        def step_hook(step: int) -> None:
            before_step(step)
            if on_step is not None:
                on_step(start + step)

        def eval_hook(record: dict) -> None:
            record = {**record, "phase": phase, "step": start + record["step"]}
            history.append(record)
            if on_eval is not None:
                on_eval(record)

        fit_model(model, targets, sampling, fit_options, lr, to_unit, compile_ok=compile_ok,
                  on_eval=eval_hook, on_step=step_hook)
        offset += steps

    added: list[list[int]] = []
    new = torch.empty(0, dtype=torch.long)
    if plan.densify:
        strongest = torch.argsort(model.input_strength(), descending=True, stable=True)[: plan.densify]
        new = model.densify(strongest)
        added = model.frequencies[new].round().long().tolist()
        if len(new) < plan.densify:
            notes.append(f"densify added {len(new)} of {plan.densify} inputs (the others were present)")

    pruned: list[list[int]] = []
    if plan.target_inputs is not None:
        count = model.inputs - plan.target_inputs
        if count <= 0:
            notes.append(f"nothing to prune: {model.inputs} inputs after densifying")
        else:
            strength = model.input_strength()
            strength[new.to(strength.device)] = math.inf  # inputs added in this run are kept
            weakest = torch.argsort(strength, stable=True)[:count]
            mask = torch.zeros_like(model.column_penalty)
            mask[weakest] = 1.0
            if plan.ramp_steps:
                ramp = plan.ramp_steps

                def set_ramp(step: int) -> None:  # after step s, set the weight used at step s + 1
                    model.column_penalty.copy_(mask * (plan.alpha * min(step + 1, ramp) / ramp))

                model.column_penalty.copy_(mask * (plan.alpha / ramp))
                ramp_options = dataclasses.replace(options, steps=ramp, eval_every=ramp)
                try:
                    train("ramp", ramp, ramp_options, set_ramp)
                finally:
                    model.column_penalty.zero_()
            pruned = model.frequencies[weakest].round().long().tolist()
            keep = torch.ones(model.inputs, dtype=torch.bool, device=mask.device)
            keep[weakest] = False
            model.prune_inputs(keep.nonzero().squeeze(1))

    if plan.finetune_steps:
        train("finetune", plan.finetune_steps, dataclasses.replace(options, steps=plan.finetune_steps),
              lambda step: None)
    return CompactionResult(
        plan=plan,
        before=before,
        after=snapshot(model, targets, sampling, to_unit),
        pruned_frequencies=pruned,
        added_frequencies=added,
        history=history,
        seconds=time.perf_counter() - started,
        notes=notes,
    )
