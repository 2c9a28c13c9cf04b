"""Shared fixtures: synthetic signals written to temporary folders, a CLI runner, one fitted run."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN, powerlaw_image, save_png8, smooth_rgb, to_uint8

from specfit.cli.main import main

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Every tensor in this suite is tiny: one thread avoids OpenMP spin-waiting, which makes small
# models many times slower when the two cores are shared with anything else.
torch.set_num_threads(1)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``specfit.cli.main.main`` in-process; returns its exit code and captured stdout/stderr."""

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def shared_data() -> Path:
    """The project's shared data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Deterministic test images (PNG): rough (1/f) and smooth (1/f^3) 64 x 64 power-law noise, a
    32 x 32 grey noise image and a smooth 40 x 32 (portrait) RGB image."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    return {
        "rough": save_png8(folder / "rough.png", powerlaw_image(64, 1.0, seed=0)),
        "smooth": save_png8(folder / "smooth.png", powerlaw_image(64, 3.0, seed=0)),
        "noise32": save_png8(folder / "noise32.png", rng.integers(0, 256, (32, 32), dtype=np.uint8)),
        "portrait_rgb": save_png8(folder / "portrait_rgb.png", to_uint8(smooth_rgb(40, 32))),
    }


@dataclass
class FittedRun:
    path: Path
    stdout: str
    metrics: dict
    config: dict
    image: Path


@pytest.fixture(scope="session")
def fitted_run(tmp_path_factory: pytest.TempPathFactory, images: dict[str, Path]) -> FittedRun:
    """One short CLI fit with FreSh (SIREN, 40 x 32 RGB, 10 % held out), shared by several tests."""
    out = tmp_path_factory.mktemp("fit") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([
            "fit", str(images["portrait_rgb"]), "--model", "siren", *SMALL_SIREN,
            "--steps", "30", "--lr", "1e-3", "--eval-every", "5",
            "--inits", "3", "--grid", "10,30,60", "--out", str(out), "--json",
        ])
    assert code == 0, stderr.getvalue()
    return FittedRun(
        path=out,
        stdout=stdout.getvalue(),
        metrics=json.loads((out / "metrics.json").read_text()),
        config=json.loads((out / "config.json").read_text()),
        image=images["portrait_rgb"],
    )
