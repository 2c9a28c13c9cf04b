"""CT and MRI: signals fitted only through a forward model, and FreSh on their measurements."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import specfit
from specfit.errors import SpecfitError
from specfit.fresh.search import fresh_select, plan_measured_selection
from specfit.fresh.spectra import spectra
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.kinds.registry import task_for
from specfit.models.registry import get_entry
from specfit.operators.projection import project, projection_angles

SMALL = {"width": 64, "hidden_layers": 1}


def ct_phantom(size: int = 32, projections: int = 12) -> object:
    return load_signal("shepp-logan", LoadOptions(measure="ct", resize=size, projections=projections))


def test_builtin_phantoms_and_measurement_options() -> None:
    signal = ct_phantom(40, 9)
    assert (signal.kind, tuple(signal.values.shape), signal.meta) == ("ct", (1, 40, 40), {"projections": 9})
    volume = load_signal("phantom3d-3", LoadOptions(measure="mri", resize=12, kspace_fraction=0.2))
    assert volume.kind == "mri" and tuple(volume.values.shape) == (1, 12, 12, 12)
    assert volume.meta["kspace_fraction"] == 0.2
    with pytest.raises(SpecfitError, match="measures a volume"):
        load_signal("shepp-logan", LoadOptions(measure="mri", resize=16))
    with pytest.raises(SpecfitError, match="projections"):
        load_signal("shepp-logan", LoadOptions(measure="ct", resize=16, projections=0))


def test_ct_arrays_are_made_grey_and_square() -> None:
    rgb = np.random.default_rng(0).random((20, 30, 3))
    signal = specfit.load_signal(rgb, kind="ct", projections=5)
    assert tuple(signal.values.shape) == (1, 20, 20)
    assert any("centre-cropped" in note for note in signal.notes)
    expected = torch.from_numpy(rgb[:, 5:25].mean(axis=2)).float()
    assert torch.allclose(signal.values[0], expected, atol=1e-6)


def test_ct_training_targets_are_line_averages_of_the_phantom() -> None:
    signal = ct_phantom()
    task = task_for(signal)
    data = task.training_data("holdout", 0.1, 0, "unit", torch.device("cpu"))
    side = signal.values.shape[-1]
    expected = project(signal.values[None] * task.circle, projection_angles(12)) / side
    assert data.targets.shape == (12 * side, 1)
    assert torch.allclose(data.targets[:, 0], expected.flatten(), atol=1e-6)
    assert data.sampling.test is None  # the phantom itself is the test


def test_ct_forward_model_of_a_model_is_the_projection_of_its_image() -> None:
    signal = ct_phantom(24, 6)
    task = task_for(signal)
    data = task.training_data("all", 0.1, 0, "signed", torch.device("cpu"))
    torch.manual_seed(0)
    entry = get_entry("siren")
    model = entry.create(2, 1, SMALL)
    with torch.no_grad():
        image = (model(task._grid) + 1) / 2  # signed -> unit
        image = image.T.reshape(1, 1, 24, 24) * task.circle
        expected = (project(image, projection_angles(6)) / 24).flatten()
        predicted = data.forward.apply(model, data.sampling.coords)[:, 0]
    assert torch.allclose(predicted, expected, atol=1e-5)


def test_ct_fit_beats_its_start_and_reports_the_filtered_back_projection() -> None:
    signal = ct_phantom(32, 16)
    run = specfit.fit(signal, "ff-gaussian", steps=80, sigma=2.0, lr=3e-3, eval_every=40, compile="off",
                      device="cpu", **SMALL)
    scores = run.metrics.scores
    assert scores["psnr"] > 15.0
    assert scores["psnr_fbp"] > 12.0 and scores["projections"] == 16
    assert set(run.files) >= {"reconstruction.png", "baseline-fbp.png"}
    assert run.metrics.history[-1]["psnr_train"] > run.metrics.history[0]["psnr_train"] - 1e-9


def test_mri_measurements_are_the_dft_at_the_mask() -> None:
    volume = load_signal("phantom3d-1", LoadOptions(measure="mri", resize=10))
    task = task_for(volume)
    data = task.training_data("all", 0.1, 0, "unit", torch.device("cpu"))
    spectrum = torch.fft.fftn(volume.values[0], norm="ortho")[task.mask]
    pairs = torch.stack([spectrum.real, spectrum.imag], dim=-1).flatten()
    assert torch.allclose(data.targets[:, 0], pairs, atol=1e-6)
    assert abs(float(task.mask.float().mean()) - 0.13) < 0.01


def test_mri_volumes_are_padded_to_a_cube() -> None:
    array = np.random.default_rng(1).random((6, 8, 4)).astype(np.float32)
    array = (array - array.min()) / (array.max() - array.min())
    signal = specfit.load_signal(array, kind="mri")
    assert tuple(signal.values.shape) == (1, 8, 8, 8)
    assert torch.allclose(signal.values[0, 1:7, :, 2:6], torch.from_numpy(array), atol=1e-6)
    assert float(signal.values.sum()) == pytest.approx(float(array.sum()), rel=1e-5)


@pytest.mark.parametrize("signal", ["ct", "mri"])
def test_fresh_on_measurements_ranks_too_low_and_too_high_below_a_sensible_scale(signal: str) -> None:
    if signal == "ct":
        measured = ct_phantom(48, 20)
    else:
        measured = load_signal("phantom3d-2", LoadOptions(measure="mri", resize=16))
    task = task_for(measured)
    plan = plan_measured_selection(
        task.measured_spectrum("unit", torch.device("cpu"), "published", "fit", None),
        "ff-gaussian", {"features": 64, **SMALL}, [0.05, 1.5, 40.0], inits=3, search="full")
    selection = fresh_select(torch.empty(0), torch.empty(0, task.in_features), "ff-gaussian", plan=plan)
    w = {row.value: row.w_mean for row in selection.table}
    assert selection.chosen == 1.5, w
    assert w[0.05] > w[1.5] < w[40.0]


def test_ct_measured_target_is_the_sinograms_mean_projection_spectrum() -> None:
    task = task_for(ct_phantom(32, 8))
    measured = task.measured_spectrum("unit", torch.device("cpu"), "signal", "fit", None)
    centred = task.about_mean(task.sinogram)
    assert torch.allclose(centred.sum(dim=-1), torch.zeros(1, 8), atol=1e-5)  # the mean disk is gone
    expected = spectra(centred.unsqueeze(0), measured.band, per_frame=True)[0]
    assert torch.allclose(measured.target, expected)
    assert measured.target.shape == (measured.band.bins,)


def test_cli_fits_ct_and_refuses_a_mismatched_measurement(cli, tmp_path) -> None:
    out = tmp_path / "run"
    result = cli("fit", "phantom-4", "--task", "ct", "--resize", "24", "--projections", "8", "--model",
                 "ff-gaussian", "--set", "sigma=2", "--set", "width=32", "--set", "hidden_layers=1",
                 "--steps", "5", "--device", "cpu", "--compile", "off", "--out", str(out))
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["projections"] == 8 and metrics["psnr_fbp"] is not None
    assert (out / "baseline-fbp.png").exists() and (out / "reconstruction.png").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["signal"]["kind"] == "ct" and config["load"]["measure"] == "ct"
    bad = cli("fit", "shepp-logan", "--task", "mri", "--out", str(tmp_path / "bad"))
    assert bad.code == 2 and bad.err.startswith("error:") and "volume" in bad.err
    assert not (tmp_path / "bad").exists()


def test_select_and_spectrum_commands_use_the_measurements(cli) -> None:
    result = cli("select", "phantom-1", "--task", "ct", "--resize", "48", "--model", "ff-gaussian", "--inits",
                 "3", "--grid", "0.05,2,40", "--search", "full", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    selection = result.json()
    w = {row["value"]: row["w_mean"] for row in selection["table"]}
    assert selection["chosen"] == 2.0 and w[0.05] > w[2.0] < w[40.0]
    spectrum = cli("spectrum", "phantom-1", "--task", "ct", "--resize", "48", "--json").json()
    task = task_for(load_signal("phantom-1", LoadOptions(measure="ct", resize=48)))
    measured = task.measured_spectrum("unit", torch.device("cpu"), "published", "fit", None)
    assert np.allclose(spectrum["spectrum"], measured.target.numpy())


@pytest.mark.parametrize("band", ["published", "signal"])
def test_mri_measured_spectrum_in_both_bands_on_a_small_volume(band: str) -> None:
    task = task_for(load_signal("phantom3d-2", LoadOptions(measure="mri", resize=24)))
    measured = task.measured_spectrum("unit", torch.device("cpu"), band, "fit", None)
    assert 1 <= measured.band.bins <= 12
    assert float(measured.target.sum()) == pytest.approx(1.0)
