"""The command-line contract (design.md): errors, JSON output, `models`, and output folders."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL_SIREN, assert_single_error, save_png8, tree

from specfit.models import REGISTRY

# A fit small enough to finish in about a second if an error case is (wrongly) accepted.
FIT = [*SMALL_SIREN, "--steps", "3", "--inits", "2"]


def _noise_png(folder: Path, name: str = "img.png", shape: tuple[int, ...] = (32, 32)) -> Path:
    rng = np.random.default_rng(0)
    return save_png8(folder / name, rng.integers(0, 256, shape, dtype=np.uint8))


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _text_png(t: Path) -> Path:
    path = t / "notes.png"
    path.write_text("this is not an image\n")
    return path


def _truncated_png(t: Path) -> Path:
    path = _noise_png(t, "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _constant_png(t: Path) -> Path:
    return save_png8(t / "flat.png", np.full((32, 32, 3), 90, np.uint8))


def _nan_npy(t: Path) -> Path:
    values = np.random.default_rng(0).random((16, 16))
    values[3, 5] = np.nan
    np.save(t / "nan.npy", values)
    return t / "nan.npy"


def _file_path(t: Path) -> Path:
    path = t / "file.txt"
    path.write_text("a file, not a folder")
    return path


ERROR_CASES: dict[str, Callable[[Path], list]] = {
    "missing file": lambda t: ["fit", t / "missing.png", *FIT, "--out", t / "run"],
    "a directory": lambda t: ["fit", _folder(t / "folder.png"), *FIT, "--out", t / "run"],
    "text file named .png": lambda t: ["fit", _text_png(t), *FIT, "--out", t / "run"],
    "truncated png": lambda t: ["fit", _truncated_png(t), *FIT, "--out", t / "run"],
    "1x1 image": lambda t: ["fit", _noise_png(t, "dot.png", (1, 1)), *FIT, "--out", t / "run"],
    "constant image, spectrum": lambda t: ["spectrum", _constant_png(t)],
    "constant image, fit": lambda t: ["fit", _constant_png(t), *FIT, "--out", t / "run"],
    "constant image, select": lambda t: ["select", _constant_png(t), "--model", "siren", "--inits", 2],
    "NaN in .npy": lambda t: ["fit", _nan_npy(t), *FIT, "--out", t / "run"],
    "unknown model": lambda t: ["fit", _noise_png(t), "--model", "nope", *FIT, "--out", t / "run"],
    "unknown knob": lambda t: ["fit", _noise_png(t), "--set", "nonsense=3", *FIT, "--out", t / "run"],
    "malformed grid": lambda t: ["fit", _noise_png(t), "--grid", "10,abc", *FIT, "--out", t / "run"],
    "malformed grid, select": lambda t: ["select", _noise_png(t), "--model", "siren", "--grid", "10,abc"],
    "too many bins": lambda t: ["spectrum", _noise_png(t), "--bins", 100],
    "too many bins, select": lambda t: ["select", _noise_png(t), "--model", "siren", "--bins", 17],
    "out dir not writable": lambda t: ["fit", _noise_png(t), *FIT, "--out", "/proc/forbidden/run"],
    "out dir under a file": lambda t: ["fit", _noise_png(t), *FIT, "--out", _file_path(t) / "run"],
    "model rejects a value, fit": lambda t: ["fit", _noise_png(t), "--model", "tuner", *FIT,
                                              "--set", "width=64", "--set", "band_limit=2",
                                              "--out", t / "run"],
    "model rejects a grid value, select": lambda t: ["select", _noise_png(t), "--model", "hashgrid",
                                                     "--grid", "8,64", "--inits", 2],
    "malformed --set": lambda t: ["fit", _noise_png(t), "--set", "omega_0", *FIT, "--out", t / "run"],
    "render a non-run folder": lambda t: ["render", _folder(t / "notarun"), "--out", t / "x.png"],
    "zero steps": lambda t: ["fit", _noise_png(t), *FIT, "--steps", 0, "--out", t / "run"],
    "negative width": lambda t: ["fit", _noise_png(t), *FIT, "--set", "width=-3", "--out", t / "run"],
    "negative FINER bias range": lambda t: [
        "select", _noise_png(t), "--model", "finer", "--grid=-1,1", "--inits", 2, "--json"],
    "model without knob": lambda t: ["select", _noise_png(t), "--model", "relu"],
    "unknown command": lambda t: ["frobnicate"],
    "missing required argument": lambda t: ["grid", "--model", "siren"],
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_one_line_exit_2_and_leave_nothing_behind(cli, tmp_path, monkeypatch, case):
    """Each user error exits with code 2, prints exactly one stderr line starting with 'error:', nothing
    on stdout, and creates no output folder or partial file (default outputs would land in the cwd)."""
    args = ERROR_CASES[case](tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    result = cli(*args)
    assert_single_error(result.code, result.out, result.err)
    assert tree(tmp_path) == before


def test_existing_folder_given_as_out_is_not_wiped(cli, tmp_path):
    """--out naming an existing folder that is not a run never deletes the user's files in it (either
    the fit refuses with a one-line error, or it keeps them)."""
    folder = _folder(tmp_path / "photos")
    (folder / "holiday.jpg").write_bytes(b"precious")
    result = cli("fit", _noise_png(tmp_path), "--set", "omega_0=30", *FIT, "--out", folder)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"
    if result.code != 0:
        assert_single_error(result.code, result.out, result.err)


def test_current_directory_as_out_is_handled(cli, tmp_path, monkeypatch):
    """--out . does not crash with a traceback, and the input image survives."""
    image = _noise_png(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = cli("fit", image.name, "--set", "omega_0=30", *FIT, "--out", ".")
    assert image.is_file()
    assert result.code in (0, 2), result.err
    if result.code == 2:
        assert_single_error(result.code, result.out, result.err)


def test_fit_without_out_writes_runs_name_model_and_never_overwrites(cli, tmp_path, monkeypatch):
    """Without --out, fit writes runs/NAME-MODEL in the cwd, then runs/NAME-MODEL-2 next time."""
    image = _noise_png(tmp_path, "cat.png")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = cli("fit", image, "--set", "omega_0=30", *FIT, "--json")
        assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cat-siren", "cat-siren-2"]
    assert result.json()["out"] == str(Path("runs") / "cat-siren-2")


def test_fit_without_signal_uses_cameraman_at_256(cli, tmp_path, monkeypatch):
    """`fit` with no SIGNAL fits the bundled cameraman, downscaled to 256 px, into runs/cameraman-siren."""
    monkeypatch.chdir(tmp_path)
    result = cli("fit", "--steps", 1, "--inits", 2, "--grid", "10,30", "--set", "width=8",
                 "--set", "hidden_layers=1", "--compile", "off", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    config = json.loads((tmp_path / "runs" / "cameraman-siren" / "config.json").read_text())
    assert config["signal"]["name"] == "cameraman"
    assert config["signal"]["shape"] == [1, 256, 256]
    assert result.json()["model"] == "siren"


def test_json_outputs_are_single_documents(cli, tmp_path, fitted_run):
    """spectrum, select and fit with --json print one JSON document on stdout and nothing else."""
    image = _noise_png(tmp_path)
    for args in (["spectrum", image, "--json"],
                 ["select", image, "--model", "siren", "--grid", "10,30", "--inits", 2, "--set", "width=32",
                  "--json"]):
        result = cli(*args)
        assert result.code == 0, result.err
        document = json.loads(result.out)
        assert isinstance(document, dict)
        assert result.out.strip().count("\n") == 0  # one line, no banners or notes mixed in
    assert isinstance(json.loads(fitted_run.stdout), dict)


def test_models_json_lists_the_registry(cli):
    """`models --json` lists every registry model with its knob, default and grid."""
    result = cli("models", "--json")
    assert result.code == 0
    rows = {row["name"]: row for row in result.json()}
    assert set(rows) == set(REGISTRY)
    assert rows["siren"]["knob"]["name"] == "omega_0"
    assert rows["siren"]["knob"]["default"] == 30.0
    assert rows["siren"]["knob"]["grid"][:3] == [10.0, 20.0, 30.0]
    assert rows["relu"]["knob"] is None


def test_python_m_specfit_models_smoke():
    """`python -m specfit models` runs as a module and lists every model and its knob."""
    completed = subprocess.run(
        [sys.executable, "-m", "specfit", "models"], capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for name in REGISTRY:
        assert name in completed.stdout
    assert "omega_0" in completed.stdout and "sigma" in completed.stdout


@pytest.mark.shared_data
def test_spectrum_of_kodak_image_resized(cli, shared_data):
    """`spectrum` on a real photo with --resize 32 uses 16 bins (short side 32)."""
    result = cli("spectrum", shared_data / "kodak" / "kodim01.png", "--resize", 32, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["bins"] == 16
    assert sum(data["spectrum"]) == pytest.approx(1.0)
    # Natural images have falling spectra: the low bins outweigh the high ones.
    assert sum(data["spectrum"][:4]) > sum(data["spectrum"][-4:])

