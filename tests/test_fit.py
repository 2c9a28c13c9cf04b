"""Fitting end to end: metrics.json, modes (fresh / default / set), splits, run files, interrupts."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN, read_png, tree
from skimage.metrics import structural_similarity

import specfit
from specfit.models import build_model
from specfit.models.evaluate import predict
from specfit.signals import grid_coordinates, make_sampling
from specfit.training.loop import FitOptions

RUN_FILES = {"config.json", "metrics.json", "history.csv", "checkpoint.safetensors", "model.safetensors",
             "reconstruction.png",
             "report.html", "log.txt"}  # log.txt: what `specfit fit` showed
METRIC_KEYS = {"psnr", "psnr_train", "psnr_test", "ssim", "steps", "train_seconds", "params", "knob",
               "value", "selection"}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


def test_fresh_fit_metrics_have_the_contract_keys(fitted_run):
    """metrics.json holds psnr, psnr_train, psnr_test, ssim, steps, train_seconds, params, knob, value,
    and selection (table, chosen, seconds) when FreSh ran; the trained value is the chosen one."""
    metrics = fitted_run.metrics
    assert set(metrics) >= METRIC_KEYS
    assert metrics["mode"] == "fresh"
    assert metrics["knob"] == "omega_0"
    selection = metrics["selection"]
    assert {"table", "chosen", "seconds"} <= set(selection)
    assert [row["value"] for row in selection["table"]] == [10.0, 30.0, 60.0]
    assert metrics["value"] == selection["chosen"]
    assert metrics["steps"] == 30
    assert metrics["train_seconds"] > 0
    for key in ("psnr", "psnr_train", "psnr_test", "ssim"):
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
    assert metrics["interrupted"] is False


def test_params_count_is_the_saved_model_size(fitted_run):
    """'params' counts the trained network's parameters (SIREN 2-32-32-3 here)."""
    assert fitted_run.metrics["params"] == (2 * 32 + 32) + (32 * 32 + 32) + (32 * 3 + 3)


def test_short_fit_improves_psnr(fitted_run):
    """PSNR rises during a short fit: above the untrained model's (step 0), and from the first
    evaluation in the history to the last."""
    history = fitted_run.metrics["history"]
    assert [h["step"] for h in history] == [5, 10, 15, 20, 25, 30]
    assert history[-1]["psnr"] > history[0]["psnr"] + 3.0
    assert all(h["psnr_test"] is not None for h in history)
    torch.manual_seed(0)
    untrained = build_model("siren", 2, 3, fitted_run.config["params"])
    values = (predict(untrained, grid_coordinates((40, 32))) + 1) / 2
    step0 = values.T.reshape(3, 40, 32).clamp(0, 1).permute(1, 2, 0).double().numpy()
    target = read_png(fitted_run.image) / 255.0
    assert fitted_run.metrics["psnr"] > _psnr(step0, target) + 3.0


def test_reported_metrics_match_the_written_reconstruction(fitted_run):
    """psnr / psnr_train / psnr_test / ssim agree with values recomputed from reconstruction.png on the
    seeded held-out split (within 8-bit rounding)."""
    target = read_png(fitted_run.image) / 255.0
    recon = read_png(fitted_run.path / "reconstruction.png") / 255.0
    assert recon.shape == target.shape == (40, 32, 3)
    metrics = fitted_run.metrics
    assert _psnr(recon, target) == pytest.approx(metrics["psnr"], abs=0.1)
    sampling = make_sampling((40, 32), "holdout", 0.1, seed=0)
    flat_r, flat_t = recon.reshape(-1, 3), target.reshape(-1, 3)
    test = sampling.test.numpy()
    assert metrics["split"]["test_samples"] == len(test) == 128
    assert _psnr(flat_r[test], flat_t[test]) == pytest.approx(metrics["psnr_test"], abs=0.1)
    train = sampling.train.numpy()
    assert _psnr(flat_r[train], flat_t[train]) == pytest.approx(metrics["psnr_train"], abs=0.1)
    ssim = structural_similarity(recon, target, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False)
    assert ssim == pytest.approx(metrics["ssim"], abs=0.01)


def test_run_directory_holds_exactly_the_run_files(fitted_run):
    """The run folder holds config.json, metrics.json, model.safetensors, reconstruction.png, report.html,
    and no leftover staging folders next to it."""
    assert tree(fitted_run.path) == RUN_FILES
    assert [p.name for p in fitted_run.path.parent.iterdir()] == ["run"]


def test_report_is_self_contained(fitted_run):
    """report.html inlines its figures as base64 PNG and links nothing external."""
    text = (fitted_run.path / "report.html").read_text()
    assert text.count("data:image/png;base64,") >= 3  # images, spectra, FreSh curve, training
    assert not re.search(r"https?://", text)
    assert not re.search(r"<(script|link|iframe)\b", text, re.IGNORECASE)
    for src in re.findall(r"src=['\"]([^'\"]*)", text):
        assert src.startswith("data:image/png;base64,")


def test_fit_json_stdout_is_one_document(fitted_run):
    """`fit --json` prints one JSON document (the metrics without history, plus 'out') on stdout."""
    data = json.loads(fitted_run.stdout)
    assert data["out"] == str(fitted_run.path)
    assert "history" not in data
    assert data["psnr"] == pytest.approx(fitted_run.metrics["psnr"])


def test_no_fresh_trains_the_default_value_and_split_all_has_no_test_psnr(cli, tmp_path, images):
    """--no-fresh trains the knob's default (mode 'default', no selection); --split all has psnr_test null."""
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--no-fresh", *SMALL_SIREN, "--steps", 5, "--split", "all",
                 "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "default"
    assert metrics["value"] == 30.0
    assert metrics["selection"] is None
    assert metrics["psnr_test"] is None
    assert metrics["psnr_train"] == pytest.approx(metrics["psnr"])
    assert metrics["split"]["test_samples"] == 0
    assert all(h["psnr_test"] is None for h in metrics["history"])
    assert result.json()["psnr_test"] is None


def test_setting_the_knob_skips_fresh(cli, tmp_path, images):
    """--set omega_0=40 trains 40 (mode 'set', selection null); --set convention=siren is recorded."""
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--set", "omega_0=40", "--set", "convention=siren",
                 *SMALL_SIREN, "--steps", 5, "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["mode"], metrics["value"], metrics["selection"]) == ("set", 40.0, None)
    config = json.loads((out / "config.json").read_text())
    assert config["params"]["omega_0"] == 40.0
    assert config["convention"] == "siren"


def test_setting_another_parameter_keeps_fresh_on(cli, tmp_path, images):
    """--set width=... (not the knob) still runs FreSh, over the given grid."""
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], *SMALL_SIREN, "--steps", 3, "--inits", 2, "--grid", "20,40",
                 "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["mode"] == "fresh"
    assert metrics["selection"]["chosen"] in (20.0, 40.0)
    assert metrics["selection"]["inits"] == 2


def _fit_interrupted(images, step_to_stop: int):
    """A small fit whose progress callback raises KeyboardInterrupt after ``step_to_stop``."""

    def progress(event) -> None:
        if event.phase is specfit.Phase.TRAIN and event.done == step_to_stop and not event.record:
            raise KeyboardInterrupt

    return specfit.fit(images["noise32"], "siren", width=16, hidden_layers=1, omega_0=30.0, device="cpu",
                       steps=20, eval_every=50, compile="off", progress=progress)


def test_keyboard_interrupt_still_writes_a_run(tmp_path, images):
    """A KeyboardInterrupt during training stops it but still gives a full run, with
    interrupted = true in metrics.json."""
    out = tmp_path / "run"
    run = _fit_interrupted(images, 3)
    assert run.metrics.interrupted is True
    run.save(out)
    assert tree(out) == RUN_FILES - {"log.txt"}  # saved by the API: no terminal, no log
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["interrupted"] is True
    assert on_disk["steps"] < 20
    assert any("interrupted" in note for note in on_disk["notes"])
    assert math.isfinite(on_disk["psnr"])


def test_keyboard_interrupt_counts_completed_steps(images):
    """Interrupted after step 3 completed: metrics report 3 steps, and the evaluation of the model
    it keeps is labelled step 3."""
    run = _fit_interrupted(images, 3)
    assert run.metrics.steps == 3
    assert run.history[-1]["step"] == 3


@pytest.mark.shared_data
def test_fit_on_kodak_image(cli, tmp_path, shared_data):
    """A real photo (kodim01, resized to 32 px) goes through FreSh, training and the report."""
    out = tmp_path / "run"
    result = cli("fit", shared_data / "kodak" / "kodim01.png", "--resize", 32, *SMALL_SIREN, "--steps", 10,
                 "--inits", 2, "--grid", "10,60,150", "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = result.json()
    config = json.loads((out / "config.json").read_text())
    channels, height, width = config["signal"]["shape"]
    assert (channels, min(height, width)) == (3, 32)
    assert metrics["split"]["train_samples"] + metrics["split"]["test_samples"] == height * width
    assert read_png(out / "reconstruction.png").shape == (height, width, 3)
    assert tree(out) == RUN_FILES
    assert any(note.startswith("resized") for note in metrics["notes"])



def test_train_step_falls_back_to_eager_when_compilation_fails(monkeypatch):
    from specfit.training.loop import TrainStep

    def broken_compile(function):
        def compiled(*args):
            raise RuntimeError("no C++ compiler")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = torch.nn.Linear(2, 1)
    options = FitOptions(steps=5, compile="on")
    step = TrainStep(lambda x, y: torch.nn.functional.mse_loss(model(x), y), options, compile_ok=True)
    assert step.compiled
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    value = step(torch.ones(4, 2), torch.zeros(4, 1), optimiser)
    assert not step.compiled and "torch.compile failed (RuntimeError)" in step.notes[0]
    assert model.weight.grad is not None and value.item() >= 0


def test_best_state_keeps_a_copy_of_the_best_parameters():
    from specfit.training.loop import BestState

    model, best = torch.nn.Linear(1, 1), BestState()
    with torch.no_grad():
        for step, (weight, score) in enumerate([(1.0, 10.0), (2.0, 30.0), (3.0, 20.0)], start=1):
            model.weight.fill_(weight)
            best.offer(model.state_dict(), score, step)
    assert (best.step, best.score) == (2, 30.0)
    assert best.state["weight"].item() == 2.0 and model.weight.item() == 3.0


def test_evaluator_scores_all_training_and_held_out_samples():
    from specfit.training.loop import Evaluator

    sampling = make_sampling((8, 8), "holdout", 0.25, seed=0)
    targets = torch.zeros(64, 1)
    model = torch.nn.Linear(2, 1)
    evaluator = Evaluator(targets, sampling, 0, lambda p, t: float(p.shape[0]), "count")
    (record,) = evaluator(7, torch.tensor([0.5]), [model(evaluator.coords)])
    assert record == {"step": 7, "loss": 0.5, "count": 64.0, "count_train": 48.0, "count_test": 16.0}
    signals = torch.stack([torch.zeros(64, 1), torch.ones(64, 1)])  # one signal per network
    errors = Evaluator(signals, sampling, 0, lambda p, t: float((p - t).abs().sum()), "error")
    records = errors(3, torch.tensor([0.25, 0.5]), [torch.zeros(64, 1), torch.zeros(64, 1)])
    assert [(r["loss"], r["error"], r["error_test"]) for r in records] == [(0.25, 0.0, 0.0),
                                                                            (0.5, 64.0, 16.0)]
