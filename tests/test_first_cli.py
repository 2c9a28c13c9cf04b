"""A new user's command line: a photo at a working size with its cost told first, --resume that
refuses what it cannot honour, help that reads outside the repository, devices, a starting config
file, a run's log and example data."""

from __future__ import annotations

import pytest

SMALL = ["--set", "width=16", "--set", "hidden_layers=1", "--device", "cpu", "--compile", "off"]


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
