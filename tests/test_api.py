"""The Python API: in-memory fits, typed runs, save and reload, re-running a saved run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN
from PIL import Image

import specfit
from specfit.events import Phase

TINY = {"width": 16, "hidden_layers": 1}
FAST = {"steps": 15, "eval_every": 5, "compile": "off", "device": "cpu", "inits": 2, "grid": [10.0, 40.0]}


def test_importing_specfit_changes_no_global_state():
    code = ("import sys, specfit; import matplotlib; "
            "print('torch' in sys.modules, matplotlib.rcParams['backend'] if False else "
            "'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    code = "import specfit, numpy as np; specfit.fit(np.random.rand(16, 16), steps=2, fresh=False, " \
           "device='cpu', width=8, hidden_layers=1); import sys; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


def test_an_array_and_the_same_image_as_png_give_identical_metrics(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    from_array = specfit.fit(pixels, "siren", **TINY, **FAST)
    from_file = specfit.fit(tmp_path / "image.png", "siren", **TINY, **FAST)
    for key in ("psnr", "psnr_train", "psnr_test", "ssim", "value", "steps"):
        assert from_array.metrics.to_json()[key] == from_file.metrics.to_json()[key], key
    assert from_array.metrics.selection["table"] == from_file.metrics.selection["table"]


def test_save_then_load_run_predicts_bit_for_bit(tmp_path):
    run = specfit.fit(np.random.default_rng(0).random((20, 20)), "ff-gaussian", features=16, **TINY, **FAST)
    coords = torch.rand(50, 2) * 2 - 1
    folder = run.save(tmp_path / "run")
    loaded = specfit.load_run(folder)
    assert torch.equal(loaded.predict(coords), run.predict(coords))
    assert loaded.metrics.to_json() == json.loads((folder / "metrics.json").read_text())
    assert loaded.config.settings == run.config.settings
    assert loaded.render().shape == (1, 20, 20)
    assert torch.equal(loaded.render((7, 9)), run.render((7, 9)))


def test_a_cli_run_loads_and_its_config_alone_re_runs_it_exactly(cli, images, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", images["portrait_rgb"], *SMALL_SIREN, "--steps", 12, "--eval-every", 4,
                 "--inits", 2, "--grid", "20,60", "--holdout", 0.2, "--seed", 5, "--out", out, "--json")
    assert result.code == 0, result.err
    loaded = specfit.load_run(out)
    assert loaded.config.settings.seed == 5 and loaded.config.settings.holdout == 0.2
    assert loaded.config.settings.grid == [20.0, 60.0] and loaded.config.load["kind"] is None
    again = specfit.rerun(out)
    first, second = loaded.metrics.to_json(), again.metrics.to_json()
    for key in ("psnr", "psnr_train", "psnr_test", "ssim", "psnr_grad", "value", "steps", "best_step"):
        assert first[key] == second[key], key
    assert first["history"] == second["history"]


def test_progress_arrives_as_typed_events():
    events = []
    specfit.fit(np.random.default_rng(1).random((16, 16)), "siren", progress=events.append, **TINY, **FAST)
    phases = [e.phase for e in events]
    assert phases[0] is Phase.SELECT and events[0].message.startswith("FreSh")
    assert Phase.TRAIN in phases and Phase.EVALUATE in phases
    assert phases.index(Phase.EVALUATE) > max(i for i, p in enumerate(phases) if p is Phase.TRAIN)
    steps = [e.done for e in events if e.phase is Phase.TRAIN and not e.record and not e.message]
    assert steps == list(range(1, 16))
    records = [e.record for e in events if e.record]
    assert [r["step"] for r in records] == [5, 10, 15]


def test_select_and_spectrum_work_in_memory():
    image = np.random.default_rng(2).random((32, 32))
    selection = specfit.select(image, "siren", grid=[10, 60], inits=2, **TINY)
    assert selection.chosen in (10.0, 60.0) and len(selection.table) == 2
    vector = specfit.spectrum(image, bins=8)
    assert vector.shape == (8,) and np.isclose(vector.sum(), 1.0)


@pytest.mark.parametrize("array, options, kind", [
    (np.zeros((100,), np.float32) + np.sin(np.arange(100)) * 0.5, {"sample_rate": 8000}, "audio"),
    (np.random.default_rng(0).random((6, 8, 8, 3)), {"kind": "video", "fps": 10}, "video"),
    (np.random.default_rng(0).random((8, 9, 10)), {}, "volume"),
    (torch.rand(12, 12, 3), {}, "image"),
])
def test_load_signal_takes_arrays_of_every_grid_kind(array, options, kind):
    signal = specfit.load_signal(array, **options)
    assert signal.kind == kind


def test_load_signal_takes_a_trimesh():
    trimesh = pytest.importorskip("trimesh")
    shape = specfit.load_signal(trimesh.creation.icosphere(subdivisions=1))
    assert shape.kind == "shape" and np.abs(shape.vertices).max() == pytest.approx(0.9)


@pytest.mark.parametrize("source, options, words", [
    (np.zeros((4, 8, 8, 3)), {}, "ambiguous"),
    (np.zeros(100), {"kind": "audio"}, "sample_rate"),
    (np.zeros((16, 16)), {"fps": 3}, "do not apply"),
    ("image.png", {"bogus": 1}, "unknown loading options"),
    (object(), {}, "cannot load"),
])
def test_load_signal_refuses_what_it_cannot_read(source, options, words):
    with pytest.raises(specfit.SpecfitError, match=words):
        specfit.load_signal(source, **options)
