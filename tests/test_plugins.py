"""Third-party models and signal kinds: a package that declares a model under the ``specfit.models``
entry point is found by the ``specfit`` command, fits with FreSh over its knob grid and renders; one
that declares a signal kind under ``specfit.kinds`` (its own file suffix, loader, task, FreSh
target, render and saved description) is fitted, saved and rendered by the ``specfit`` command
like a built-in kind; broken plugins are skipped with a warning and never replace a built-in model
or kind.

The plugin is a plain folder on ``PYTHONPATH`` holding the package and its ``.dist-info`` (what
pip would install), so importlib.metadata finds it in a subprocess; each subprocess imports
torch (a few seconds), so they are few and the fitted run is shared.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from specfit.kinds import registry as kind_registry
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
                       packages: dict[str, str], group: str = ENTRY_POINT_GROUP) -> None:
    """An installed distribution as pip would leave it: packages plus ``NAME-0.1.dist-info``, its
    entry points in ``group``."""
    for package, source in packages.items():
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    points = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{points}")


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


# --- signal kinds ----------------------------------------------------------------------------------

TRACE_PACKAGE = '''\
"""A user's own signal kind: a 1-D scalar field sampled at irregular positions, read from a
``.trace`` text file of ``position value`` lines (in any order and range)."""

import dataclasses
from pathlib import Path

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.kinds import checks
from specfit.kinds.kind import SignalKind
from specfit.kinds.render import RenderJob
from specfit.metrics import psnr
from specfit.models.evaluate import model_from_unit, predict, unit_from_model
from specfit.signals.sampling import Sampling, grid_coordinates
from specfit.tasks.base import Outcome, Task, TrainingData

GRID = 64  # FreSh compares spectra on a regular grid of this many samples


@dataclasses.dataclass
class Trace:
    name: str
    positions: np.ndarray  # (N,) in [-1, 1], sorted
    values: np.ndarray  # (N,) in [0, 1]
    low: float  # the file's value at 0
    high: float  # the file's value at 1
    source: str
    kind: str = "trace"


def load(path, options):
    data = np.loadtxt(path, ndmin=2)
    if data.shape[1] != 2 or len(data) < 4:
        raise SpecfitError(f"{path}: a trace is at least 4 lines of 'position value'")
    data = data[np.argsort(data[:, 0])]
    x, v = data[:, 0], data[:, 1]
    low, high = float(v.min()), float(v.max())
    return Trace(Path(path).stem, 2 * (x - x[0]) / (x[-1] - x[0]) - 1, (v - low) / (high - low), low, high,
                 str(path))


def write(path, positions, values, signal):
    np.savetxt(path, np.column_stack([positions, signal["low"] + values * (signal["high"] - signal["low"])]))


class TraceTask(Task):
    kind = "trace"
    frequency_label = "frequency (cycles per trace)"
    in_features = out_features = 1

    def __init__(self, trace):
        self.trace = trace

    name = property(lambda self: self.trace.name)
    notes = property(lambda self: [])
    sample_count = property(lambda self: len(self.trace.values))

    def describe(self):
        trace = self.trace
        return {"kind": "trace", "name": trace.name, "samples": len(trace.values), "low": trace.low,
                "high": trace.high, "source": trace.source}

    def headline(self):
        return f"{self.trace.name} (trace, {len(self.trace.values)} irregular samples)"

    def sampling(self, split, holdout, seed):
        coords = torch.tensor(self.trace.positions, dtype=torch.float32).view(-1, 1)
        if split == "all":
            return Sampling(coords, torch.arange(len(coords)), None, "signed", split)
        order = torch.randperm(len(coords), generator=torch.Generator().manual_seed(seed))
        held = max(1, round(holdout * len(coords)))
        return Sampling(coords, order[held:].sort().values, order[:held].sort().values, "signed", split)

    def spectrum_target(self, value_range, device, split="all", holdout=0.1, seed=0):
        """FreSh's target: the training samples interpolated onto a regular grid."""
        train = self.sampling(split, holdout, seed).train.numpy()
        values = np.interp(np.linspace(-1, 1, GRID), self.trace.positions[train], self.trace.values[train])
        target = model_from_unit(torch.tensor(values, dtype=torch.float32).view(1, GRID), value_range)
        return target.to(device), grid_coordinates((GRID,)).to(device)

    def training_data(self, split, holdout, seed, value_range, device):
        sampling = self.sampling(split, holdout, seed)
        sampling.coords = sampling.coords.to(device)
        values = torch.tensor(self.trace.values, dtype=torch.float32).view(-1, 1)
        return TrainingData(sampling, model_from_unit(values, value_range).to(device))

    def finish(self, model, value_range, data, device):
        recon = unit_from_model(predict(model, data.sampling.coords).float(), value_range).cpu().view(-1)
        target = torch.tensor(self.trace.values, dtype=torch.float32)
        train, test = data.sampling.train, data.sampling.test
        metrics = {"psnr": psnr(recon, target), "psnr_train": psnr(recon[train], target[train]),
                   "psnr_test": None if test is None else psnr(recon[test], target[test]), "ssim": None}
        signal = self.describe()
        positions = self.trace.positions
        files = {"reconstruction.trace": lambda path: write(path, positions, recon.numpy(), signal)}
        return Outcome(metrics, files, summary=f"PSNR {metrics['psnr']:.2f} dB")


def plan_render(config, size, out, run_dir):
    signal = config["signal"]
    if size is not None and not size.isdigit():
        raise SpecfitError(f"malformed --size {size!r}: use a number of samples")
    samples = int(size) if size else signal["samples"]
    path = Path(out) if out else Path(run_dir) / f"render-{samples}.trace"

    def draw(model):
        coords = grid_coordinates((samples,)).to(next(model.parameters()).device)
        values = unit_from_model(predict(model, coords).float(), config["value_range"]).cpu().view(-1)
        write(path, coords.cpu().numpy()[:, 0], values.numpy(), signal)
        return f"{samples} samples"

    return RenderJob(path, draw)


def check_description(signal, channels, where):
    checks.integer(signal.get("samples"), where, "signal.samples", range(4, 2**31))
    checks.number(signal.get("low"), where, "signal.low")
    checks.number(signal.get("high"), where, "signal.high")


KIND = SignalKind(
    name="trace", suffixes=(".trace",), load=load, task=lambda signal, **_: TraceTask(signal),
    render=plan_render, coordinates=1, channels=range(1, 2), check_description=check_description,
    scale_size=lambda signal, times: str(times(signal["samples"])),
)
'''

# Kinds that would take a built-in kind's name or file suffix.
IMPOSTOR_KINDS_PACKAGE = '''\
import dataclasses

from specfit.kinds.builtin import KINDS

IMAGE = next(kind for kind in KINDS if kind.name == "image")
named_image = dataclasses.replace(IMAGE, suffixes=(".fake",))


def png_thief():
    return dataclasses.replace(IMAGE, name="thief", suffixes=(".png",))
'''

TRACE_SAMPLES = 40


@dataclass
class KindPlugins:
    root: Path
    site: Path  # the trace kind
    broken_site: Path  # a missing module, a kind named "image", a kind reading .png files
    trace: Path  # a .trace file of TRACE_SAMPLES irregular samples


@pytest.fixture(scope="module")
def kind_plugins(tmp_path_factory: pytest.TempPathFactory) -> KindPlugins:
    root = tmp_path_factory.mktemp("kind-plugins")
    site, broken_site = root / "site", root / "broken-site"
    group = kind_registry.ENTRY_POINT_GROUP
    write_distribution(site, "toy-trace", {"trace": "toy_trace:KIND"}, {"toy_trace": TRACE_PACKAGE}, group)
    write_distribution(
        broken_site, "broken-kinds",
        {"ghost": "specfit_test_no_such_module:KIND", "impostor": "impostor_kinds:named_image",
         "thief": "impostor_kinds:png_thief"},
        {"impostor_kinds": IMPOSTOR_KINDS_PACKAGE}, group,
    )
    x = np.sort(np.random.default_rng(0).uniform(0.0, 10.0, TRACE_SAMPLES))
    trace = root / "wave.trace"
    np.savetxt(trace, np.column_stack([x, np.sin(2 * x) + 0.3 * np.cos(5 * x)]))
    return KindPlugins(root, site, broken_site, trace)


@pytest.fixture(scope="module")
def trace_run(kind_plugins: KindPlugins) -> ToyRun:
    """One fit of a trace with SIREN, FreSh choosing omega_0 on the kind's own target."""
    out = kind_plugins.root / "trace-run"
    fit = specfit_cli(
        "fit", kind_plugins.trace, "--steps", 20, "--inits", 2, "--out", out, "--set", "width=16",
        "--set", "hidden_layers=1", "--device", "cpu", "--compile", "off",
        path=(kind_plugins.site,), cwd=kind_plugins.root,
    )
    return ToyRun(out, fit)


def test_fit_a_signal_of_a_plugin_kind(trace_run: ToyRun) -> None:
    fit = trace_run.fit
    assert fit.returncode == 0, fit.stderr
    assert "Traceback" not in fit.stderr and warning_lines(fit.stderr) == []
    assert "fitting wave (trace, 40 irregular samples) with siren" in fit.stderr
    assert "FreSh chose omega_0 = " in fit.stdout
    config = json.loads((trace_run.path / "config.json").read_text())
    assert config["signal"]["kind"] == "trace" and config["signal"]["samples"] == TRACE_SAMPLES
    assert config["in_features"] == config["out_features"] == 1
    metrics = json.loads((trace_run.path / "metrics.json").read_text())
    assert metrics["psnr"] > 0 and metrics["psnr_test"] is not None
    assert metrics["selection"]["knob"] == "omega_0"
    assert len(np.loadtxt(trace_run.path / "reconstruction.trace")) == TRACE_SAMPLES
    report = (trace_run.path / "report.html").read_text()
    assert "frequency (cycles per trace)" in report  # the task's units on the FreSh spectra


def test_render_a_run_of_a_plugin_kind(kind_plugins: KindPlugins, trace_run: ToyRun) -> None:
    assert trace_run.fit.returncode == 0, trace_run.fit.stderr
    done = specfit_cli("render", trace_run.path, "--size", "2x", path=(kind_plugins.site,),
                       cwd=kind_plugins.root)
    assert done.returncode == 0, done.stderr
    assert "render-80.trace (80 samples)" in done.stdout  # the kind scales its own size
    drawn = np.loadtxt(trace_run.path / "render-80.trace")
    assert drawn.shape == (80, 2) and np.isfinite(drawn).all()


def test_render_without_the_kind_plugin_is_one_error(kind_plugins: KindPlugins, trace_run: ToyRun) -> None:
    assert trace_run.fit.returncode == 0, trace_run.fit.stderr
    done = specfit_cli("render", trace_run.path, cwd=kind_plugins.root)
    assert_single_error(done.returncode, done.stdout, done.stderr)
    assert "signal.kind" in done.stderr and "'trace'" in done.stderr
    assert not (trace_run.path / "render-40.trace").exists()


def test_broken_kind_plugins_are_skipped_with_a_warning(kind_plugins: KindPlugins) -> None:
    """Beside broken kind plugins, the good one still gives FreSh's spectrum of its signal."""
    done = specfit_cli("spectrum", kind_plugins.trace, "--json",
                       path=(kind_plugins.broken_site, kind_plugins.site), cwd=kind_plugins.root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = warning_lines(done.stderr)
    assert len(warnings) == 3, done.stderr
    assert any("ghost" in line and "specfit_test_no_such_module" in line for line in warnings), warnings
    assert any("impostor" in line and "'image'" in line for line in warnings), warnings
    assert any("thief" in line and ".png files are read as image" in line for line in warnings), warnings
    spectrum = json.loads(done.stdout)
    assert len(spectrum["spectrum"]) == spectrum["bins"] > 0


def test_a_failed_kind_plugin_is_named_when_its_kind_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kind_registry._FAILED_PLUGINS, "ghost", "No module named 'ghost_kind'")
    monkeypatch.setitem(kind_registry._FAILED_PLUGINS, "image", "the name 'image' is taken")
    with pytest.raises(specfit.SpecfitError, match="'ghost' comes from a plugin that failed to load"):
        specfit.load_signal(np.zeros((4, 4)), kind="ghost")
    assert kind_registry.get_kind("image").name == "image"  # a failed impostor never hides a built-in


def test_a_plugin_kind_is_checked_before_it_is_registered() -> None:
    image = kind_registry.get_kind("image")
    with pytest.raises(TypeError, match="not a SignalKind"):
        kind_registry._check_plugin(object())
    with pytest.raises(ValueError, match="taken by a built-in kind"):
        kind_registry._check_plugin(dataclasses.replace(image, suffixes=(".x",)))
    for change, message in (({"coordinates": 4}, "coordinates must be 1 to 3"),
                            ({"channels": range(0, 2)}, "channels must lie within"),
                            ({"suffixes": ("TXT",)}, "lower case and start with a dot"),
                            ({"suffixes": (".wav",)}, ".wav files are read as audio")):
        mine = dataclasses.replace(image, **{"name": "mine", "suffixes": (".mine",), **change})
        with pytest.raises(ValueError, match=message):
            kind_registry._check_plugin(mine)
