"""The settings tree: each setting declared once, and from that declaration its keyword, flag,
config key, JSON key and checks; the JSON of settings is the one written before the tree."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace

import pytest

import specfit
from specfit.cli.main import build_parser, main
from specfit.config.file import read_fit_config
from specfit.config.settings import FitSettings
from specfit.config.tree import (
    add_flags,
    build,
    check_tree,
    from_json,
    given_flags,
    group,
    leaves,
    to_json,
    tree,
)
from specfit.errors import SpecfitError
from specfit.models.params import param
from specfit.runs.run import RunConfig
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions

# FitSettings().to_json() as commit db6d8d5 wrote it (before the tree).
DEFAULT_JSON = {
    "model": "siren", "params": {}, "fresh": True, "grid": None, "inits": 10, "bins": None, "spectrum": None,
    "objective": None, "search": "bracket", "split": "holdout", "holdout": 0.1, "seed": 0, "device": "auto",
    "fit": {"steps": 2000, "lr": None, "schedule": "none", "batch_size": None, "eval_every": 100,
            "compile": "auto", "seed": 0, "checkpoint_every": 500},
    "shape_target": "occupancy", "video_spectrum": "frames", "compaction": None,
}

# The config.json of a run written by db6d8d5's `specfit fit n32.png --steps 30 --inits 2 --grid 10,30
# --set width=16 --set hidden_layers=1 --device cpu --compile off` (versions, hardware and the
# rest of the record left out).
OLD_RUN_CONFIG = {
    "format": 1, "specfit": "0.1.0", "model": "siren",
    "params": {"width": 16, "hidden_layers": 1, "omega_0": 30.0, "hidden_omega_0": 30.0,
               "convention": "fresh"},
    "in_features": 2, "out_features": 1, "value_range": "signed", "convention": "fresh",
    "coordinates": "signed",
    "signal": {"kind": "image", "name": "n32", "shape": [1, 32, 32], "mode": "L", "bit_depth": 8,
               "value_offset": 0.0, "value_scale": 1.0, "source": "n32.png", "meta": {}},
    "settings": {
        "model": "siren", "params": {"width": "16", "hidden_layers": "1"}, "fresh": True,
        "grid": [10.0, 30.0], "inits": 2, "bins": None, "spectrum": None, "objective": None,
        "search": "bracket", "split": "holdout", "holdout": 0.1, "seed": 0, "device": "cpu",
        "fit": {"steps": 30, "lr": None, "schedule": "none", "batch_size": None, "eval_every": 25,
                "compile": "off", "seed": 0, "checkpoint_every": 500},
        "shape_target": "occupancy", "video_spectrum": "frames", "compaction": None},
    "load": {"kind": None, "resize": None, "max_seconds": None, "sample_rate": None, "max_frames": None,
             "frame_step": 1, "allow_open": False, "max_samples": 134217728, "measure": None,
             "projections": 20, "kspace_fraction": 0.13, "mask_seed": 0},
}


def test_the_json_of_the_default_settings_is_unchanged() -> None:
    data = FitSettings().to_json()
    assert data == DEFAULT_JSON
    assert list(data) == list(DEFAULT_JSON) and list(data["fit"]) == list(DEFAULT_JSON["fit"])
    assert FitSettings.from_json(DEFAULT_JSON) == FitSettings()


def test_an_old_runs_config_still_loads_and_writes_the_same_json(tmp_path) -> None:
    config = RunConfig.from_json(json.loads(json.dumps(OLD_RUN_CONFIG)))
    assert config.settings.to_json() == OLD_RUN_CONFIG["settings"]
    settings = config.settings
    assert (settings.grid, settings.fit.steps, settings.device) == ([10.0, 30.0], 30, "cpu")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(OLD_RUN_CONFIG))
    request = read_fit_config(path)
    assert request.settings == config.settings
    assert request.options()["steps"] == 30 and "fit.seed" not in request.options()


def _asked(command: str, *argv: str):
    from specfit.cli import fit, grid

    args = build_parser().parse_args([command, *argv])
    return (fit if command == "fit" else grid).asked(args)


def test_command_lines_build_the_settings_they_built_before() -> None:
    """JSON that db6d8d5's command line built for the same arguments (grid records are keyed by it)."""
    _, settings, _ = _asked("fit", "img.png", "--steps", "7", "--set", "width=16", "--grid", "10,30",
                            "--model", "tuner", "--prune-to", "8", "--seed", "3", "--eval-every", "5",
                            "--split", "all")
    assert settings.to_json() == {
        **DEFAULT_JSON, "model": "tuner", "params": {"width": "16"}, "grid": [10.0, 30.0], "split": "all",
        "seed": 3, "fit": {**DEFAULT_JSON["fit"], "steps": 7, "eval_every": 5, "seed": 3},
        "compaction": {"target_inputs": 8, "densify": 0, "ramp_steps": 500, "finetune_steps": 500,
                       "alpha": 0.01}}
    sources, settings, options = _asked("fit")
    assert sources == [None] and options == {"resize": 256}
    assert settings.to_json() == {**DEFAULT_JSON,
                                  "fit": {**DEFAULT_JSON["fit"], "steps": 200, "eval_every": 25}}
    settings, options = _asked("grid", "a.png", "--grid", "10:30:10", "--inits", "3", "--resize", "32")
    assert settings.to_json() == {**DEFAULT_JSON, "grid": [10.0, 20.0, 30.0], "inits": 3,
                                  "fit": {**DEFAULT_JSON["fit"], "steps": 300, "eval_every": 25}}
    assert options == {"kind": None, "resize": 32, "max_seconds": None, "sample_rate": None,
                       "max_frames": None, "frame_step": 1, "allow_open": False, "max_samples": 134217728,
                       "measure": None, "projections": 20, "kspace_fraction": 0.13}


def test_the_api_builds_the_settings_it_built_before(monkeypatch) -> None:
    import specfit.api

    monkeypatch.setattr(specfit.api, "fit_settings", lambda signal, settings, progress: settings)
    settings = specfit.api.fit(None, steps=5, width=16, seed=2)
    assert settings.to_json() == {**DEFAULT_JSON, "params": {"width": 16}, "seed": 2,
                                  "fit": {**DEFAULT_JSON["fit"], "steps": 5, "eval_every": 25, "seed": 2}}


def test_a_config_file_is_layered_under_the_command_line(tmp_path) -> None:
    path = tmp_path / "fit.yaml"
    path.write_text("signal: {source: a.png}\nload: {resize: 40}\nsettings:\n"
                    "  params: {width: 16, hidden_layers: 1}\n  fit: {steps: 9, lr: 0.01}\n"
                    "  compaction: {densify: 2}\n")
    sources, settings, options = _asked("fit", "--config", str(path), "--set", "width=8", "--steps", "4",
                                        "--resize", "20")
    assert sources == ["a.png"] and options == {"resize": 20}
    assert settings.params == {"width": "8", "hidden_layers": 1}
    assert (settings.fit.steps, settings.fit.lr, settings.compaction.densify) == (4, 0.01, 2)


def test_every_option_reaches_the_keywords_the_flags_and_the_json(capsys) -> None:
    signature = inspect.signature(specfit.fit).parameters
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    fit_help = capsys.readouterr().out
    # two_knobs is written only when set (see specfit.config.tree.to_json)
    data = FitSettings(compaction=CompactionPlan(densify=1), two_knobs=True).to_json()
    nested = {key: value for key, value in data.items() if isinstance(value, dict) and key != "params"}
    keys = {key for key in data if key not in nested} | {f"{k}.{sub}" for k, v in nested.items() for sub in v}
    for leaf in leaves(FitSettings).values():
        assert leaf.key in keys
        assert leaf.flag in fit_help
        if leaf.name != "model":  # fit's second positional parameter
            assert signature[leaf.name].default == leaf.fit_default
            assert f"{leaf.name} (default {leaf.fit_default!r}): {leaf.help}" in specfit.fit.__doc__


@tree
@dataclass(init=False)
class _Toy:
    """A tree declared as a new option would be: one line per setting."""

    name: str = param("a", "a name", choices=("a", "b"))
    training: FitOptions = group(FitOptions, "training")
    extra: CompactionPlan | None = group(CompactionPlan, "extra", optional=True)


def test_one_declaration_gives_flags_keywords_json_and_checks() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_flags(parser, _Toy)
    args = parser.parse_args(["--name", "b", "--eval-every", "7", "--prune-to", "3"])
    toy = build(_Toy, given_flags(args, _Toy), fit_defaults=True)
    assert (toy.name, toy.training.eval_every, toy.training.steps) == ("b", 7, 1000)
    assert toy.extra.target_inputs == 3
    assert to_json(toy)["training"]["eval_every"] == 7
    assert from_json(_Toy, to_json(toy)) == toy
    shown = " ".join(parser.format_help().split())
    assert "evaluate every N steps (and at the last step) (default: 25)" in shown
    with pytest.raises(SpecfitError, match="eval_every must be at least 1, got 0"):
        check_tree(build(_Toy, {"eval_every": 0}))
    with pytest.raises(SpecfitError, match="unknown settings evl_every"):
        build(_Toy, {"evl_every": 3})
    assert build(_Toy, {"densify": 0}).extra is None  # an optional group given only its defaults is absent


def test_flat_groups_are_keywords_and_attributes_and_never_shared() -> None:
    settings = FitSettings(grid=[1.0, 2.0], split="all", shape_target="sdf")
    assert (settings.selection.grid, settings.sampling.split, settings.kind_options.shape_target) == (
        [1.0, 2.0], "all", "sdf")
    other = replace(settings, fresh=False)
    other.grid = [5.0]
    assert (settings.fresh, settings.grid, other.fresh, other.grid) == (True, [1.0, 2.0], False, [5.0])
    with pytest.raises(TypeError, match="unexpected keyword argument 'gird'"):
        FitSettings(gird=[1.0])


@pytest.mark.parametrize("options, words", [
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"steps": "10"}, "steps must be a whole number, got '10'"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"split": "most"}, "split must be one of all, holdout, lattice, got 'most'"),
    ({"seed": 2**40}, "seed must be 0 to 4294967295"),
    ({"grid": []}, "grid must be a list of finite numbers"),
    ({"fresh": "no"}, "fresh must be true or false"),
    ({"target_inputs": 0}, "target_inputs must be at least 1"),
    ({"ramp_steps": -1, "densify": 1}, "ramp_steps must not be negative"),
])
def test_settings_are_checked_by_their_declarations(options, words) -> None:
    with pytest.raises(SpecfitError, match=words):
        FitSettings.for_fit(**options)


@pytest.mark.parametrize("argv, line", [
    (["--steps", "0"], "error: --steps must be at least 1, got 0"),
    (["--prune-to", "0", "--model", "tuner"], "error: --prune-to must be at least 1, got 0"),
    (["--frame-step", "0"], "error: --frame-step must be at least 1, got 0"),
    (["--set", "omega_0"], "error: argument --set: malformed 'omega_0': use KNOB=VALUE"),
])
def test_command_line_errors_name_the_flag(argv, line, images, tmp_path, capsys) -> None:
    assert main(["fit", str(images["noise32"]), *argv, "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == line
    assert not (tmp_path / "r").exists()


def test_spectrum_of_gives_the_vector_and_its_band() -> None:
    import numpy as np

    rate = 8000
    tone = np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    clip = specfit.load_signal(tone, kind="audio", sample_rate=rate)
    result = specfit.spectrum_of(clip, bins=16)
    assert np.array_equal(result.vector, specfit.spectrum(clip, bins=16))
    assert result.band.bins == len(result.vector) <= 16 and result.spectrum == "signal"
    assert 0 < result.edge_hz <= rate / 2 and "audio" in result.headline


def test_check_fit_then_fit_plan_records_the_command(images) -> None:
    settings = FitSettings.for_fit(steps=2, fresh=False, device="cpu", compile="off",
                                   params={"width": 8, "hidden_layers": 1})
    plan = specfit.check_fit(images["noise32"], settings)
    assert plan.entry.name == "siren" and "32 x 32" in plan.task.headline()
    run = specfit.fit_plan(plan, command="specfit fit noise32.png")
    assert run.config.command == "specfit fit noise32.png" and run.metrics.steps == 2


def test_the_api_reference_tables_every_setting() -> None:
    import importlib.util
    from pathlib import Path

    from specfit.kinds.kind import LoadOptions

    path = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "specfit_docs.py"
    spec = importlib.util.spec_from_file_location("specfit_docs", path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = hook.settings_reference()
    for leaf in leaves(FitSettings).values():
        assert f"| `{leaf.name}` | `{leaf.flag}` | `settings.{leaf.key}` |" in page
    for leaf in leaves(LoadOptions).values():
        assert f"`load.{leaf.key}`" in page
