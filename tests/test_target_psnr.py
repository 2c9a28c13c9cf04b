"""A target PSNR stops training when the training samples reach it (``target_psnr``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import specfit
from specfit import build_model
from specfit.errors import SpecfitError
from specfit.runs.run import Metrics
from specfit.signals.sampling import make_sampling
from specfit.training.loop import TARGET_CHECK_EVERY, FitOptions, SingleModel, Trainer, fit_model, mse_psnr
from specfit.training.stacked import StackedModels


def _unit(values: torch.Tensor) -> torch.Tensor:
    return (values + 1) / 2


def _problem(n: int = 16) -> tuple:
    sampling = make_sampling((n, n), "holdout", 0.2, seed=0)
    y, x = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    targets = (0.6 * torch.sin(2 * x) * torch.cos(y)).reshape(-1, 1)
    return sampling, targets


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("siren", 2, 1, width=32, hidden_layers=1, omega_0=10.0)


def test_training_stops_at_the_first_step_whose_training_psnr_reaches_the_target() -> None:
    sampling, targets = _problem()
    whole = fit_model(_model(), targets, sampling, FitOptions(steps=300, eval_every=1, compile="off"), 1e-3,
                      _unit)
    scores = [r["psnr_train"] for r in whole.history]
    target = scores[0] + 0.6 * (max(scores) - scores[0])  # reached part way
    first = next(r["step"] for r in whole.history if r["psnr_train"] >= target)
    result = fit_model(_model(), targets, sampling,
                       FitOptions(steps=300, eval_every=50, compile="off", target_psnr=target), 1e-3, _unit)
    assert result.target is not None and result.steps == result.target.step < 300
    # The loss of a step says when to look; looks are at most TARGET_CHECK_EVERY steps late.
    assert first <= result.target.step <= first + TARGET_CHECK_EVERY
    assert result.history[-1]["step"] == result.target.step
    assert result.history[-1]["psnr_train"] >= target
    assert 0 < result.target.seconds <= result.train_seconds


def test_an_unreached_target_runs_every_step_and_records_nothing() -> None:
    sampling, targets = _problem()
    result = fit_model(_model(), targets, sampling,
                       FitOptions(steps=20, eval_every=10, compile="off", target_psnr=200.0), 1e-3, _unit)
    assert result.steps == 20 and result.target is None
    assert [r["step"] for r in result.history] == [10, 20]  # no extra looks: the loss never got close


def test_the_loss_estimate_is_the_training_psnr_of_a_full_batch() -> None:
    sampling, targets = _problem()
    model = _model()
    strategy = SingleModel(model, targets, sampling, _unit)
    x, y = sampling.coords[sampling.train], targets[sampling.train]
    with torch.no_grad():
        loss = strategy.losses(x, y)
        prediction = model(x)
    estimate = float(strategy.loss_psnr(loss.reshape(1))[0])
    assert estimate == pytest.approx(specfit.metrics.psnr(_unit(prediction), _unit(y)), abs=1e-4)
    assert float(mse_psnr(torch.tensor([0.04]), 0.5)[0]) == pytest.approx(10 * math.log10(1 / 0.01))


def test_a_regularized_or_measured_loss_gives_no_estimate() -> None:
    sampling, targets = _problem()
    assert SingleModel(_model(), targets, sampling, _unit, loss="l1").loss_psnr(torch.ones(1)) is None


def test_networks_trained_together_stop_when_every_one_reached_the_target() -> None:
    sampling, targets = _problem()
    models = [build_model("siren", 2, 1, width=32, hidden_layers=1, omega_0=w) for w in (5.0, 10.0)]
    strategy = StackedModels(models, targets, sampling, _unit)
    results = Trainer(strategy, FitOptions(steps=400, eval_every=100, compile="off", target_psnr=25.0),
                      1e-3).fit()
    assert all(r.target is not None and r.target.step < 400 for r in results)
    assert all(r.history[-1]["psnr_train"] >= 25.0 for r in results)


def test_a_score_other_than_psnr_refuses_a_target() -> None:
    sampling, targets = _problem()
    strategy = SingleModel(_model(), targets, sampling, _unit, score=lambda p, t: 0.0, score_name="iou")
    with pytest.raises(SpecfitError, match="target_psnr"):
        Trainer(strategy, FitOptions(steps=5, compile="off", target_psnr=30.0), 1e-3)


def test_fit_records_the_target_in_its_metrics(tmp_path) -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((24, 24)) * 0.2 + np.linspace(0, 0.8, 24)[None, :]).astype(np.float32)
    run = specfit.fit(image, "siren", omega_0=10.0, width=32, hidden_layers=1, steps=400, lr=1e-3,
                      target_psnr=24.0, compile="off")
    assert run.metrics.target is not None and run.metrics.target["psnr"] == 24.0
    assert run.metrics.steps == run.metrics.target["step"] < 400
    assert run.metrics.psnr_train >= 24.0
    assert run.config.settings.fit.target_psnr == 24.0
    data = run.metrics.to_json()
    assert Metrics.from_json(json.loads(json.dumps(data))).target == run.metrics.target
    del data["target"]  # a run saved before targets existed
    assert Metrics.from_json(data).target is None
    assert "target_psnr" not in specfit.fit(image, "siren", omega_0=10.0, width=8, hidden_layers=1,
                                            steps=2).config.settings.to_json()["fit"]
