"""Third-party models: a package that declares a model under the ``specfit.models`` entry point
is found by the ``specfit`` command, fits with FreSh over its knob grid and renders; broken
plugins are skipped with a warning and never replace a built-in model.

The plugin is a plain folder on ``PYTHONPATH`` holding the package and its ``.dist-info`` (what
pip would install), so importlib.metadata finds it in a subprocess; each subprocess imports
torch (a few seconds), so they are few and the fitted run is shared.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_single_error, save_png8
from PIL import Image

import specfit
from specfit.cli.main import main
from specfit.models.registry import ENTRY_POINT_GROUP

SOURCE_ROOT = Path(specfit.__file__).resolve().parents[1]  # the specfit under test, first on the path

TOY_PACKAGE = '''\
"""A user's own model: learnable random Fourier features B ~ N(0, scale^2), then a ReLU MLP."""

import dataclasses
import math

import torch
from torch import nn

from specfit.models import Knob, ModelEntry
from specfit.models.params import param


class ToyINR(nn.Module):
    def __init__(self, in_features, out_features, width=16, scale=2.0):
        super().__init__()
        self.freqs = nn.Parameter(torch.randn(in_features, width // 2) * scale)
        self.body = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, coords):
        z = math.pi * coords @ self.freqs
        return self.body(torch.cat([torch.cos(z), torch.sin(z)], dim=-1))


@dataclasses.dataclass(frozen=True)
class ToyParams:
    width: int = param(16, "hidden units", minimum=2, maximum=1024)
    scale: float = param(2.0, "Fourier feature scale", minimum=0.0, maximum=100.0)


def entry():
    return ModelEntry(
        name="toy",
        summary="toy plugin: learnable Fourier features + ReLU MLP",
        build=ToyINR,
        params=ToyParams(),
        lr=1e-2,
        value_range="signed",
        convention="gamma(v) = [cos pi B v, sin pi B v], B ~ N(0, scale^2), learnable",
        knob=Knob("scale", 2.0, (1.0, 2.0, 4.0), "Fourier feature scale"),
        reference="specfit plugin test",
    )
'''

# A ModelEntry object (not a function) that claims a built-in name; building it would fail, so a
# run that used it instead of the built-in SIREN could not render.
IMPOSTOR_PACKAGE = '''\
import dataclasses

from specfit.models import REGISTRY


def refuse(*args, **kwargs):
    raise RuntimeError("the impostor plugin's siren was built")


entry = dataclasses.replace(REGISTRY["siren"], summary="impostor siren from a plugin", build=refuse)
'''


def write_distribution(site: Path, name: str, entry_points: dict[str, str],
                       packages: dict[str, str]) -> None:
    """An installed distribution as pip would leave it: packages plus ``NAME-0.1.dist-info``."""
    for package, source in packages.items():
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    points = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{points}")


def specfit_cli(*args: object, path: tuple[Path, ...] = (), cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m specfit ARGS`` in a fresh interpreter with ``path`` on PYTHONPATH (the rest of
    the environment kept)."""
    env = dict(os.environ)
    entries = [*map(str, path), str(SOURCE_ROOT)]
    if env.get("PYTHONPATH"):
        entries.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only spin
    return subprocess.run(
        [sys.executable, "-m", "specfit", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@dataclass
class Plugins:
    root: Path
    toy_site: Path  # the working plugin
    broken_site: Path  # a plugin whose module is missing and one that claims "siren"
    image: Path


@dataclass
class ToyRun:
    path: Path
    fit: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Plugins:
    root = tmp_path_factory.mktemp("plugins")
    toy_site, broken_site = root / "site", root / "broken-site"
    write_distribution(toy_site, "toy-inr", {"toy": "toy_inr:entry"}, {"toy_inr": TOY_PACKAGE})
    write_distribution(
        broken_site, "broken-inr",
        {"ghost": "specfit_test_no_such_module:entry", "impostor": "impostor_inr:entry"},
        {"impostor_inr": IMPOSTOR_PACKAGE},
    )
    pixels = np.random.default_rng(3).integers(0, 256, (16, 16), dtype=np.uint8)
    image = save_png8(root / "tiny.png", pixels)
    return Plugins(root, toy_site, broken_site, image)


@pytest.fixture(scope="module")
def toy_run(plugins: Plugins) -> ToyRun:
    """One fit of the plugin model (FreSh over its own grid), shared by the tests below."""
    out = plugins.root / "toy-run"
    fit = specfit_cli(
        "fit", plugins.image, "--model", "toy", "--steps", 5, "--inits", 2, "--out", out,
        "--device", "cpu", "--compile", "off", path=(plugins.toy_site,), cwd=plugins.root,
    )
    return ToyRun(out, fit)


def test_models_lists_the_plugin(plugins: Plugins) -> None:
    done = specfit_cli("models", path=(plugins.toy_site,), cwd=plugins.root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert warning_lines(done.stderr) == []
    lines = done.stdout.splitlines()
    row = next((i for i, line in enumerate(lines) if line.split()[:1] == ["toy"]), None)
    assert row is not None, done.stdout
    assert "toy plugin: learnable Fourier features" in lines[row]
    assert "knob scale (default 2); FreSh grid 1..4 (3 values)" in lines[row + 1]
    assert lines[0].startswith("siren "), "built-in models come first"


def test_fit_with_the_plugin(toy_run: ToyRun) -> None:
    fit = toy_run.fit
    assert fit.returncode == 0, fit.stderr
    assert "Traceback" not in fit.stderr
    assert not [line for line in warning_lines(fit.stderr) if "plugin" in line]
    assert "FreSh chose scale = " in fit.stdout
    config = json.loads((toy_run.path / "config.json").read_text())
    assert config["model"] == "toy"
    assert config["value_range"] == "signed"
    assert config["convention"].startswith("gamma(v) = [cos pi B v")
    assert set(config["params"]) == {"width", "scale"}
    assert config["params"]["width"] == 16
    assert config["params"]["scale"] in (1.0, 2.0, 4.0)
    assert (toy_run.path / "model.safetensors").is_file()


def test_render_rebuilds_the_plugin_model(plugins: Plugins, toy_run: ToyRun) -> None:
    assert toy_run.fit.returncode == 0, toy_run.fit.stderr
    done = specfit_cli("render", toy_run.path, "--size", "8x8", path=(plugins.toy_site,), cwd=plugins.root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert warning_lines(done.stderr) == []
    png = toy_run.path / "render-8x8.png"
    assert "render-8x8.png (8 x 8)" in done.stdout
    with Image.open(png) as image:
        assert image.size == (8, 8)
        assert image.mode == "L"


def test_render_without_the_plugin_is_one_error(plugins: Plugins, toy_run: ToyRun) -> None:
    assert toy_run.fit.returncode == 0, toy_run.fit.stderr
    done = specfit_cli("render", toy_run.path, "--size", "4x4", cwd=plugins.root)
    assert_single_error(done.returncode, done.stdout, done.stderr)
    assert "'toy'" in done.stderr and "model" in done.stderr
    assert not (toy_run.path / "render-4x4.png").exists()


def test_broken_plugins_are_skipped_with_a_warning(plugins: Plugins) -> None:
    # A built-in SIREN run, fitted here (no plugins in this process).
    siren_run = plugins.root / "siren-run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([
            "fit", str(plugins.image), "--model", "siren", "--set", "width=8", "--set", "hidden_layers=1",
            "--no-fresh", "--steps", "2", "--out", str(siren_run), "--device", "cpu", "--compile", "off",
        ])
    assert code == 0, err.getvalue()

    both = (plugins.broken_site, plugins.toy_site)
    listed = specfit_cli("models", path=both, cwd=plugins.root)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    warnings = warning_lines(listed.stderr)
    assert len(warnings) == 2, listed.stderr
    assert any("ghost" in line and "specfit_test_no_such_module" in line for line in warnings), warnings
    assert any("impostor" in line and "'siren'" in line for line in warnings), warnings
    names = [line.split()[0] for line in listed.stdout.splitlines() if line and not line[0].isspace()]
    assert names.count("siren") == 1 and "toy" in names and "ghost" not in names
    assert "SIREN, sine activations" in listed.stdout
    assert "impostor" not in listed.stdout

    # With broken plugins installed, a built-in run still renders (the built-in SIREN is rebuilt).
    rendered = specfit_cli("render", siren_run, "--size", "8x8", path=(plugins.broken_site,),
                           cwd=plugins.root)
    assert rendered.returncode == 0, rendered.stderr
    assert "Traceback" not in rendered.stderr
    assert (siren_run / "render-8x8.png").is_file()
