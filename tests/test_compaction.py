"""Compaction of integer sine networks (methods.md 3): densify, ramped column L1, prune, fine-tune."""

from __future__ import annotations

import json
import math

import pytest
import torch

from specfit.errors import SpecfitError
from specfit.models.sine import Siren, SirenParams
from specfit.models.tuner import IntegerSineNet, TunerParams
from specfit.signals import make_sampling
from specfit.training.compaction import CompactionPlan, compact
from specfit.training.loop import FitOptions, fit_model

OPTIONS = FitOptions(steps=15, eval_every=5, compile="off")


def to_unit(values: torch.Tensor) -> torch.Tensor:
    return (values + 1) / 2


def _task() -> tuple[torch.Tensor, object]:
    """A smooth 16 x 16 image in [-1, 1] with 10 % of the pixels held out."""
    sampling = make_sampling((16, 16), "holdout", holdout=0.1, seed=0)
    y, x = sampling.coords[:, 0], sampling.coords[:, 1]
    targets = 0.6 * torch.sin(3 * x) * torch.cos(2 * y) + 0.2 * torch.sin(7 * x + y)
    return targets.unsqueeze(1), sampling


def _trained(bound: str = "fixed") -> tuple[IntegerSineNet, torch.Tensor, object]:
    torch.manual_seed(0)
    targets, sampling = _task()
    model = IntegerSineNet(2, 1, TunerParams(inputs=32, width=16, band_limit=8, bound=bound))
    grid = torch.cartesian_prod(torch.arange(0, 9), torch.arange(-8, 9))
    odd = grid[((grid[:, 0] > 0) | (grid[:, 1] > 0)) & ((grid % 2 == 1).any(1))]  # 2 k is never among them
    with torch.no_grad():
        model.frequencies.copy_(odd[torch.randperm(len(odd))[:32]].float())
    fit_model(model, targets, sampling, FitOptions(steps=40, eval_every=40, compile="off"), lr=1e-2,
              to_unit=to_unit)
    return model, targets, sampling


def _rows(tensor: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(r) for r in tensor.round().long().tolist()}


def test_compact_end_to_end():
    """Densify 2, ramp the penalty on the 14 weakest old inputs from 0 to alpha, prune to 20, fine-tune:
    before/after records are consistent and the PSNRs sane."""
    model, targets, sampling = _trained()
    original = _rows(model.frequencies)
    strongest = torch.argsort(model.input_strength(), descending=True)[:2]
    doubles = _rows(2 * model.frequencies[strongest])
    penalties: list[torch.Tensor] = []
    plan = CompactionPlan(target_inputs=20, densify=2, ramp_steps=10, finetune_steps=15, alpha=1e-3)
    result = compact(model, targets, sampling, plan, OPTIONS, lr=1e-2, to_unit=to_unit,
                     on_step=lambda step: penalties.append(model.column_penalty.clone()))
    before, after = result.before, result.after
    assert (before["inputs"], after["inputs"], model.inputs) == (32, 20, 20)
    added = {tuple(r) for r in result.added_frequencies}
    assert added == doubles and len(added) == 2
    assert len(result.pruned_frequencies) == 14
    remaining = _rows(model.frequencies)
    assert added <= remaining and not remaining & {tuple(r) for r in result.pruned_frequencies}
    assert {tuple(r) for r in result.pruned_frequencies} <= original
    assert before["trainable"] - after["trainable"] == 12 * (1 + 16)
    assert before["with_frequencies"] - after["with_frequencies"] == 12 * (1 + 16 + 2)
    assert before["stored"] - after["stored"] == 12 * (1 + 16 + 2 + 1)  # + column bounds
    for record in (before, after):
        for key in ("psnr", "psnr_train", "psnr_test"):
            assert 5.0 < record[key] < 80.0
    assert before["psnr_train"] > 25.0 and after["psnr_train"] > 20.0
    finetune = [r["psnr_train"] for r in result.history if r["phase"] == "finetune"]
    assert after["psnr_train"] == pytest.approx(max(finetune))  # the best fine-tuned model is kept

    ramp = penalties[:10]  # seen after ramp step s: the weight for step s + 1, alpha min(s + 1, 10) / 10
    assert all(int((p > 0).sum()) == 14 for p in ramp)
    assert [float(p.max()) for p in ramp] == pytest.approx([1e-4 * min(s + 1, 10) for s in range(1, 11)])
    assert float(ramp[0][32:].abs().sum()) == 0.0  # added inputs are never penalised
    assert float(penalties[10].abs().sum()) == 0.0 and float(model.column_penalty.abs().sum()) == 0.0

    phases = [r["phase"] for r in result.history]
    assert phases == ["ramp"] + ["finetune"] * 3  # the ramp evaluates (and keeps) only its last step
    assert [r["step"] for r in result.history] == [10, 15, 20, 25]
    text = json.dumps(result.to_json(), allow_nan=False)
    assert json.loads(text)["after"]["inputs"] == 20 and result.seconds > 0


@pytest.mark.parametrize("bound", ["fixed", "learned"])
def test_prune_without_ramp_removes_the_weakest(bound):
    """ramp_steps=0, finetune_steps=0: exactly the K columns of smallest L1 norm go, nothing is trained."""
    model, targets, sampling = _trained(bound)
    weakest = torch.argsort(model.input_strength())[:5]
    expected = _rows(model.frequencies) - _rows(model.frequencies[weakest])
    count = sum(p.numel() for p in model.parameters())
    plan = CompactionPlan(target_inputs=27, ramp_steps=0, finetune_steps=0)
    result = compact(model, targets, sampling, plan, OPTIONS, lr=1e-2, to_unit=to_unit)
    assert _rows(model.frequencies) == expected and result.history == []
    assert count - sum(p.numel() for p in model.parameters()) == 5 * (1 + 16 + (bound == "learned"))


def test_densify_only_adds_doubles_of_the_strongest():
    """A plan with densify alone adds 2 k_j for the strongest inputs and prunes nothing."""
    model, targets, sampling = _trained()
    strongest = torch.argsort(model.input_strength(), descending=True)[:4]
    doubles = _rows(2 * model.frequencies[strongest]) - _rows(model.frequencies)
    result = compact(model, targets, sampling, CompactionPlan(densify=4, finetune_steps=5), OPTIONS,
                     lr=1e-2, to_unit=to_unit)
    assert {tuple(r) for r in result.added_frequencies} == doubles and len(doubles) == 4
    assert model.inputs == 32 + len(doubles) and result.pruned_frequencies == []


@pytest.mark.parametrize("plan, message", [
    (CompactionPlan(), "target_inputs or densify"),
    (CompactionPlan(target_inputs=32), "below the current inputs"),
    (CompactionPlan(target_inputs=1), "input dimension"),
    (CompactionPlan(target_inputs=10, ramp_steps=-1), "negative"),
    (CompactionPlan(target_inputs=10, alpha=-1e-5), "alpha"),
    (CompactionPlan(target_inputs=10, alpha=math.nan), "alpha"),
    (CompactionPlan(densify=40), "exceeds"),
])
def test_bad_plans_are_clear_errors(plan, message):
    """Each bad plan raises a SpecfitError naming the problem, before anything changes."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, TunerParams(inputs=32, width=16, band_limit=8))
    with pytest.raises(SpecfitError, match=message):
        plan.check(model)
    assert model.inputs == 32


def test_compact_refuses_other_models():
    targets, sampling = _task()
    with pytest.raises(SpecfitError, match="IntegerSineNet"):
        compact(Siren(2, 1, SirenParams(width=16, hidden_layers=1)), targets, sampling,
                CompactionPlan(target_inputs=4), OPTIONS, 1e-3, to_unit)
