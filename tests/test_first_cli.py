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
