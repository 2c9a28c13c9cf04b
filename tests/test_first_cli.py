"""A new user's command line: a photo at a working size with its cost told first, --resume that
refuses what it cannot honour, help that reads outside the repository, devices, a starting config
file, a run's log and example data."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from helpers import save_png8, smooth_rgb, to_uint8

import specfit
from specfit import SpecfitWarning

SMALL = ["--set", "width=16", "--set", "hidden_layers=1", "--device", "cpu", "--compile", "off"]


TINY = {"width": 16, "hidden_layers": 1, "device": "cpu", "compile": "off"}


@pytest.fixture
def photo(tmp_path):
    """A 150 x 225 RGB "photo": larger than the working size (128 px on its shorter side)."""
    return save_png8(tmp_path / "photo.png", to_uint8(smooth_rgb(150, 225)))


# ---- item 1: a photo at a working size, its cost told before training ---------------------------------


def test_an_image_file_larger_than_the_working_size_loads_at_it_with_a_warning(photo):
    expected = r"150 x 225 pixels.*working size 128 x 192.*resize='full'"
    with pytest.warns(SpecfitWarning, match=expected) as got:
        signal = specfit.load_signal(photo)
    assert signal.spatial_shape == (128, 192) and signal.load_options["resize"] == 128
    assert {w.filename for w in got if w.category is SpecfitWarning} == {__file__}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecfitWarning)
        assert specfit.load_signal(photo, resize="full").spatial_shape == (150, 225)
        assert specfit.load_signal(photo, resize=None).spatial_shape == (150, 225)  # a saved run's options
        assert specfit.load_signal(photo, resize=64).spatial_shape == (64, 96)


def test_the_api_fit_of_a_file_uses_the_working_size_and_warns(photo):
    with pytest.warns(SpecfitWarning, match="working size"):
        run = specfit.fit(str(photo), fresh=False, steps=1, **TINY)
    assert run.config.signal["shape"][1:] == [128, 192] and run.config.load["resize"] == 128


def test_fit_tells_the_working_size_memory_and_time_before_training(cli, photo, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", photo, "--no-fresh", *SMALL, "--steps", 2, "--out", out)
    assert result.code == 0, result.err
    before = result.err.split("before training: ")[1].splitlines()[0]
    assert before.startswith("working size 128 x 192 of the 150 x 225 image (--resize full keeps it); about ")
    assert " of memory; training should take about " in before and "2 steps of " in before
    assert "FreSh" not in before  # --no-fresh: no selection to wait for
    assert "warning:" not in result.err  # the API's warning is not repeated in its words
    assert json.loads((out / "config.json").read_text())["load"]["resize"] == 128
    assert cli("fit", "--resume", out, "--steps", 3).code == 0  # loads it again at the same size
    full = cli("fit", photo, "--no-fresh", *SMALL, "--steps", 1, "--resize", "full", "--out", tmp_path / "f")
    assert full.code == 0, full.err
    assert "working size" not in full.err and "before training: about " in full.err
    assert json.loads((tmp_path / "f" / "config.json").read_text())["signal"]["shape"][1:] == [150, 225]
    bad = cli("fit", photo, "--resize", "huge")
    assert bad.code == 2 and "expected pixels or full" in bad.err


def test_select_notes_the_working_size(cli, photo):
    result = cli("select", photo, "--grid", "10,20", "--inits", 2, *SMALL[:-2])
    assert result.code == 0, result.err
    assert "note: working size 128 x 192 of the 150 x 225 image (--resize full keeps it)" in result.err


def test_a_config_file_may_ask_for_the_full_size(cli, photo, tmp_path):
    config = tmp_path / "full.toml"
    config.write_text(f'[signal]\nsource = "{photo}"\n[load]\nresize = "full"\n')
    result = cli("fit", "--config", config, "--no-fresh", *SMALL, "--steps", 1, "--out", tmp_path / "r",
                 "--json")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["signal"]["shape"][1:] == [150, 225]


def test_the_estimate_times_a_few_steps_and_leaves_random_state_alone(photo):
    from specfit.api import check_fit
    from specfit.config.settings import FitSettings
    from specfit.fitting import estimate

    signal = specfit.load_signal(photo, resize=32)
    settings = FitSettings.for_fit(fresh=False, steps=100, eval_every=30, device="cpu", compile="off",
                                   params={"width": 16, "hidden_layers": 1})
    plan = check_fit(signal, settings)
    state = torch.get_rng_state()
    got = estimate.estimate_fit(plan)
    assert torch.equal(state, torch.get_rng_state())
    assert round(32 * 48 * 0.85) < got.samples_per_step < plan.samples_per_step == 32 * 48  # 10 % held out
    assert got.memory_bytes == plan.memory_bytes > 0
    assert got.steps == 100 and got.evaluations == math.ceil(100 / 30)
    assert got.step_seconds > 0 and got.eval_seconds >= 0
    assert got.seconds == pytest.approx(100 * got.step_seconds + 4 * got.eval_seconds)


def test_a_refusal_for_memory_names_the_options_that_fix_it(cli, photo, monkeypatch):
    monkeypatch.setattr("specfit.models.memory.available_bytes", lambda device: 50_000)  # the model fits
    result = cli("fit", photo, "--no-fresh", *SMALL, "--steps", 1)
    assert result.code == 2 and result.err.count("\n") == 1
    assert "error: training siren" in result.err and "more than the 48.8 KiB available" in result.err
    assert "a smaller --resize" in result.err and "--batch-size" in result.err


# ---- item 3: --resume refuses what it cannot honour -----------------------------------------------


@pytest.fixture
def finished(cli, images, tmp_path):
    """A finished 4-step run folder."""
    run = tmp_path / "run"
    assert cli("fit", images["noise32"], "--no-fresh", *SMALL, "--steps", 4, "--out", run).code == 0
    return run


@pytest.mark.parametrize("extra, named", [
    (["--model", "finer"], "--model"),
    (["--lr", "1e-3"], "--lr"),
    (["--set", "omega_0=60"], "--set"),
    (["--no-fresh"], "--no-fresh"),
    (["--resize", "16"], "--resize"),
    (["--out", "elsewhere"], "--out"),
    (["--together", "on"], "--together"),
    (["--config", "c.toml"], "--config"),
])
def test_resume_refuses_every_option_it_cannot_honour(cli, finished, extra, named):
    report = (finished / "report.html").stat().st_mtime_ns
    result = cli("fit", "--resume", finished, "--steps", 8, *extra)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"so {named} cannot apply" in result.err
    assert (finished / "report.html").stat().st_mtime_ns == report


def test_resume_refuses_a_signal_and_takes_steps_and_json(cli, finished, images):
    result = cli("fit", images["noise32"], "--resume", finished, "--steps", 8)
    assert result.code == 2 and "SIGNAL" in result.err
    result = cli("fit", "--resume", finished, "--steps", 8, "--json")
    assert result.code == 0, result.err
    assert result.json()["steps"] == 8


def _help(capsys, *command: str) -> str:
    from specfit.cli.main import main

    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_says_what_the_objective_set_and_render_size_do(capsys):
    fit = _help(capsys, "fit")
    assert "else fit" not in fit and "(the held-out samples); default: fit" in fit
    grid = _help(capsys, "grid")
    assert "skips FreSh" not in grid and "the knob itself is trained at each value of --grid" in grid
    assert "e.g. 2x" in _help(capsys, "render")


def test_bench_needs_its_data_folder_and_writes_no_page_unless_asked(cli, tmp_path, monkeypatch):
    result = cli("bench", "fresh-images")
    assert result.code == 2 and "--data" in result.err
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("specfit.bench.suites.run_suite", lambda *a, **k: {"suite": "fresh-images"})
    monkeypatch.setattr("specfit.bench.suites.suite_markdown", lambda result: ["done"])
    assert cli("bench", "fresh-images", "--data", tmp_path).code == 0
    assert not (tmp_path / "docs").exists()


# ---- item 9: what users of comparable tools expect --------------------------------------------------


@pytest.mark.parametrize("device", ["cuda:1", "cuda:0", "mps"])
def test_named_devices_are_accepted_and_refused_clearly_when_absent(cli, device, monkeypatch, images):
    from specfit.config.settings import FitSettings
    from specfit.util.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    FitSettings.for_fit(device=device)  # a valid name
    result = cli("fit", images["noise32"], "--device", device, "--steps", 1)
    assert result.code == 2 and result.err.count("\n") == 1
    assert result.err.startswith(f"error: --device {device} was asked for, but ")
    assert resolve_device("auto") == torch.device("cpu")  # the CPU only when asked for auto


def test_a_second_gpu_is_used_when_present_and_typos_are_refused(cli, monkeypatch):
    from specfit.util.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(specfit.SpecfitError, match="only 2 CUDA devices"):
        resolve_device("cuda:2")
    result = cli("fit", "--device", "gpu")
    assert result.code == 2 and "--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'" in result.err


def test_print_config_writes_a_file_that_config_reads_back_to_the_same_fit(cli, images, tmp_path):
    from specfit.config.file import read_fit_config

    asked = [images["noise32"], "--model", "finer", "--steps", 3, "--grid", "0.5,1", "--set", "width=16",
             "--resize", 16, "--prune-to", 8]
    printed = cli("fit", *asked, "--print-config")
    assert printed.code == 0 and not printed.err
    assert "# optimiser steps\nsteps = 3\n" in printed.out and "# lr =\n" in printed.out
    path = tmp_path / "fit.toml"
    path.write_text(printed.out)
    request = read_fit_config(path)
    assert request.source == str(images["noise32"]) and request.load["resize"] == 16
    assert request.settings.model == "finer" and request.settings.fit.steps == 3
    assert request.settings.grid == [0.5, 1.0] and request.settings.params == {"width": 16}
    assert request.settings.compaction.target_inputs == 8
    default = cli("fit", "--print-config")
    (tmp_path / "default.toml").write_text(default.out)
    assert "# [settings.compaction]" in default.out and "# source =" in default.out
    from specfit.config.settings import FitSettings

    read = read_fit_config(tmp_path / "default.toml")
    assert read.settings.to_json() == FitSettings.for_fit(steps=200).to_json()  # the bundled image's steps
    result = cli("fit", "--config", tmp_path / "default.toml", *SMALL, "--no-fresh", "--steps", 1,
                 "--resize", 16, "--out", tmp_path / "run", "--json")
    assert result.code == 0, result.err
    assert cli("fit", images["noise32"], images["smooth"], "--print-config").code == 2


def test_a_fit_keeps_what_the_terminal_showed_in_log_txt_and_resume_continues_it(cli, images, tmp_path):
    from specfit.runs.format import LOG

    run = tmp_path / "run"
    result = cli("fit", images["noise32"], "--no-fresh", *SMALL, "--steps", 4, "--out", run)
    assert result.code == 0, result.err
    log = (run / LOG).read_text()
    assert "\r" not in log and "\x1b" not in log
    assert log.startswith("fitting noise32") and "before training: " in log
    assert "4 steps in" in log and "log.txt" in result.out  # the listing names it
    assert cli("fit", "--resume", run, "--steps", 6).code == 0
    continued = (run / LOG).read_text()
    assert continued.startswith(log) and "continuing from step 4 to 6" in continued[len(log):]
    assert cli("render", run, "--size", "2x").code == 0
    assert (run / LOG).read_text() == continued
    (run / LOG).unlink()  # a run written before logs: it still loads, renders and continues
    specfit.load_run(run)
    assert cli("render", run, "--size", "8x8").code == 0
    assert cli("fit", "--resume", run, "--steps", 7).code == 0
    assert "continuing from step 6 to 7" in (run / LOG).read_text()
    again = cli("fit", images["noise32"], "--no-fresh", *SMALL, "--steps", 1, "--out", run, "--overwrite")
    assert again.code == 0
    assert "continuing" not in (run / LOG).read_text()  # a new run, a new log


def test_the_api_writes_no_log(images, tmp_path):
    run = specfit.fit(images["noise32"], fresh=False, steps=1, **TINY)
    run.save(tmp_path / "run")
    assert not (tmp_path / "run" / "log.txt").exists()


def test_example_writes_signals_made_without_network_or_data_folder(cli, tmp_path, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("an example reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.chdir(tmp_path)
    listed = cli("example")
    assert listed.code == 0 and "astronaut.png" in listed.out and "chord.wav" in listed.out
    assert cli("example", "astronaut").code == 0
    assert specfit.load_signal(tmp_path / "astronaut.png", resize="full").values.shape == (3, 512, 512)
    assert cli("example", "chord", "--out", tmp_path / "sound.wav").code == 0
    sound = specfit.load_signal(tmp_path / "sound.wav")
    assert sound.kind == "audio" and sound.values.shape == (1, 48000) and sound.meta["sample_rate"] == 16000
    again = cli("example", "astronaut")
    assert again.code == 2 and "astronaut.png exists" in again.err
    assert cli("example", "astronuat").code == 2
    assert cli("example", "chord", "--out", "x.png").code == 2


@pytest.mark.parametrize("seconds, said", [(0.2, "under 1 s"), (40.4, "40 s"), (220, "3 min 40 s"),
                                           (180, "3 min"), (7500, "2 h 5 min")])
def test_durations_read_as_people_say_them(seconds, said):
    from specfit.util.formatting import duration

    assert duration(seconds) == said
