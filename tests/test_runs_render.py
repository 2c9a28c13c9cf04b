"""Saved runs and rendering: reload exactly, render at any size, atomic writes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN, assert_single_error, read_png, save_png16, tree
from PIL import Image

from specfit.errors import SpecfitError
from specfit.models import REGISTRY, build_model, get_entry, resolve_params
from specfit.models.evaluate import predict
from specfit.runs.folder import load_model, staged_directory, write_model
from specfit.runs.format import FORMAT_VERSION
from specfit.signals import grid_coordinates
from specfit.signals.image import image_to_array
from specfit.util.files import dumps

RUN_FILES = {"config.json", "metrics.json", "history.csv", "checkpoint.safetensors", "model.safetensors",
             "reconstruction.png",
             "report.html", "log.txt"}  # log.txt: what `specfit fit` showed


def test_render_to_a_given_size(cli, fitted_run, tmp_path):
    """`render RUN --size 40x24 --out x.png` writes a 40-wide, 24-high PNG with the run's channels."""
    out = tmp_path / "x.png"
    result = cli("render", fitted_run.path, "--size", "40x24", "--out", out, "--device", "cpu")
    assert result.code == 0, result.err
    with Image.open(out) as image:
        assert image.size == (40, 24)
        assert image.mode == "RGB"
    assert tree(tmp_path) == {"x.png"}  # no staging file left


@pytest.mark.parametrize(
    "option, value", [("--size", "40by24"), ("--size", "0x10"), ("--size", "x40"), ("--out", "x.jpg")]
)
def test_render_option_errors(cli, fitted_run, tmp_path, monkeypatch, option, value):
    """Malformed or out-of-range --size, or a non-PNG --out, is a one-line error and writes nothing."""
    monkeypatch.chdir(tmp_path)
    args = ["render", fitted_run.path, "--device", "cpu", "--out", tmp_path / "x.png", option, value]
    result = cli(*args)
    assert_single_error(result.code, result.out, result.err)
    assert tree(tmp_path) == set()
    assert tree(fitted_run.path) == RUN_FILES


def test_render_at_original_size_equals_reconstruction(cli, fitted_run, tmp_path):
    """Rendering at the signal's size (the default, into RUN/render-WxH.png) reproduces
    reconstruction.png pixel for pixel."""
    run = shutil.copytree(fitted_run.path, tmp_path / "run")
    result = cli("render", run, "--device", "cpu")
    assert result.code == 0, result.err
    rendered = read_png(run / "render-32x40.png")
    np.testing.assert_array_equal(rendered, read_png(run / "reconstruction.png"))


def test_reloaded_model_reproduces_the_reconstruction(fitted_run):
    """load_model rebuilds the trained network exactly: its output on the grid gives reconstruction.png."""
    model, config = load_model(fitted_run.path)
    assert not model.training
    coords = grid_coordinates((40, 32), config["coordinates"])
    values = (predict(model, coords).float() + 1) / 2  # SIREN is trained on [-1, 1]
    pixels = image_to_array(values.T.reshape(3, 40, 32), 8)
    np.testing.assert_array_equal(pixels, read_png(fitted_run.path / "reconstruction.png"))


def test_config_records_model_convention_and_signal(fitted_run):
    """config.json records the model, its resolved params, the convention, coordinates and the signal."""
    config = fitted_run.config
    assert config["model"] == "siren"
    assert config["convention"] == "fresh"
    assert config["params"]["convention"] == "fresh"
    assert config["params"]["omega_0"] == fitted_run.metrics["value"]
    assert config["params"]["width"] == 32
    assert config["coordinates"] == "signed"
    assert config["value_range"] == "signed"
    assert config["signal"]["shape"] == [3, 40, 32]
    assert (config["in_features"], config["out_features"]) == (2, 3)


def test_lattice_split_run_renders_in_unit_coordinates(cli, tmp_path):
    """A Fourier-feature fit with --split lattice records 'unit' coordinates, tests on the odd-odd
    pixels, and renders back to its reconstruction exactly."""
    rng = np.random.default_rng(0)
    image = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "run"
    result = cli("fit", image, "--model", "ff-gaussian", "--set", "sigma=5", "--set", "width=32",
                 "--set", "hidden_layers=1", "--set", "features=32", "--compile", "off", "--device", "cpu",
                 "--steps", 5, "--split", "lattice", "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["split"]["train_samples"] == metrics["split"]["test_samples"] == 12 * 16
    assert metrics["psnr_test"] is not None
    config = json.loads((out / "config.json").read_text())
    assert config["coordinates"] == "unit"
    assert config["value_range"] == "unit"
    assert cli("render", out, "--out", tmp_path / "r.png", "--device", "cpu").code == 0
    np.testing.assert_array_equal(read_png(tmp_path / "r.png"), read_png(out / "reconstruction.png"))


def test_16bit_run_writes_and_renders_16bit(cli, tmp_path):
    """A 16-bit grey input gives a 16-bit reconstruction.png, and render reproduces it in 16 bits."""
    yy, xx = np.mgrid[0:20, 0:20]
    pixels = (30000 + 20000 * np.sin(xx / 3.0) * np.cos(yy / 4.0)).astype(np.uint16)
    image = save_png16(tmp_path / "g16.png", pixels)
    out = tmp_path / "run"
    result = cli("fit", image, "--set", "omega_0=30", *SMALL_SIREN, "--steps", 5, "--out", out, "--json")
    assert result.code == 0, result.err
    recon = read_png(out / "reconstruction.png")
    assert recon.dtype == np.uint16 and recon.shape == (20, 20, 1)
    assert len(np.unique(recon)) > 256  # really uses 16-bit precision
    assert cli("render", out, "--out", tmp_path / "r.png", "--device", "cpu").code == 0
    np.testing.assert_array_equal(read_png(tmp_path / "r.png"), recon)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_fits_saves_and_renders_back(cli, tmp_path, name, images):
    """Every registry model goes through fit (FreSh on a 2-value grid where it has a knob), is saved,
    reloaded and rendered back to exactly its reconstruction.png."""
    entry = get_entry(name)
    grid = ["--grid", ",".join(str(v) for v in entry.knob.grid[:2])] if entry.knob else []
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--model", name, "--set", "width=16", "--set", "hidden_layers=1",
                 "--compile", "off", "--device", "cpu", "--steps", 3, "--inits", 2, *grid,
                 "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["mode"] == ("fresh" if entry.knob else "default")
    assert tree(out) == RUN_FILES
    model, config = load_model(out)
    assert config["model"] == name
    assert sum(p.numel() for p in model.parameters()) == metrics["params"]
    if entry.knob:
        assert config["params"][entry.knob.name] == metrics["value"]
    assert cli("render", out, "--out", tmp_path / "r.png", "--device", "cpu").code == 0
    np.testing.assert_array_equal(read_png(tmp_path / "r.png"), read_png(out / "reconstruction.png"))


def test_load_model_rejects_mismatched_or_corrupt_weights(fitted_run, tmp_path):
    """A run whose weights do not match its config, or are not safetensors, is a SpecfitError."""
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((fitted_run.path / "config.json").read_text())
    config["params"]["width"] = 16
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "model.safetensors").write_bytes((fitted_run.path / "model.safetensors").read_bytes())
    with pytest.raises(SpecfitError, match="does not match"):
        load_model(bad)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SpecfitError):
        load_model(bad)
    with pytest.raises(SpecfitError, match="not a run directory"):
        load_model(tmp_path)


def test_saved_model_roundtrip_keeps_gaussian_b(tmp_path):
    """write_model + load_model restores buffers such as the Gaussian B, so outputs are identical."""
    torch.manual_seed(0)
    params = {"width": 16, "hidden_layers": 1, "features": 8, "sigma": 4.0}
    model = build_model("ff-gaussian", 2, 1, params)
    config = {"model": "ff-gaussian", "params": resolve_params(get_entry("ff-gaussian"), params),
              "in_features": 2, "out_features": 1}
    write_model(tmp_path, model, config)
    torch.manual_seed(1)  # a different stream: B must come from the file, not from the seed
    loaded, _ = load_model(tmp_path)
    coords = grid_coordinates((8, 8))
    torch.testing.assert_close(predict(loaded, coords), predict(model, coords), rtol=0, atol=0)


def test_staged_directory_leaves_nothing_on_failure(tmp_path):
    """A failed staged write leaves neither the run folder nor a hidden partial folder behind."""
    with pytest.raises(RuntimeError), staged_directory(tmp_path / "run") as stage:
        (stage / "metrics.json").write_text("{}")
        raise RuntimeError("boom")
    assert tree(tmp_path) == set()


def test_staged_directory_replaces_a_previous_run_whole(tmp_path):
    """Writing a run over an older one replaces it entirely (no stale files mixed in)."""
    config = dumps({"format": FORMAT_VERSION, "specfit": "0", "model": "siren"})
    with staged_directory(tmp_path / "run") as stage:
        (stage / "config.json").write_text(config)
        (stage / "render-8x8.png").write_text("old")
    with staged_directory(tmp_path / "run") as stage:
        (stage / "config.json").write_text(config)
        (stage / "report.html").write_text("new")
    assert tree(tmp_path) == {"run", "run/config.json", "run/report.html"}


def test_dumps_writes_valid_json_for_non_finite_numbers():
    """Run JSON stays valid when a metric is infinite or NaN (a perfect fit has PSNR inf)."""
    data = json.loads(dumps({"psnr": float("inf"), "x": [float("nan"), 1.0], "y": -float("inf")}))
    assert data == {"psnr": "inf", "x": [None, 1.0], "y": "-inf"}
