"""Small things users expect from the command line: --version, a default model for select,
integer knob values shown as integers, and a per-evaluation history in every run."""

from __future__ import annotations

import csv
import json

import pytest

import specfit
from specfit.cli.main import main
from specfit.kinds.registry import get_kind
from specfit.kinds.render import scaled_size
from specfit.util.formatting import shown


def test_version_flag_prints_the_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"specfit {specfit.__version__}"


def test_integral_values_are_shown_without_a_decimal_point() -> None:
    assert (shown(91.0), shown(2.5), shown(40), shown(None)) == ("91", "2.5", "40", "None")


def test_select_defaults_to_siren(cli, images) -> None:
    result = cli("select", images["noise32"], "--inits", "2", "--grid", "10,30", "--device", "cpu", "--json",
                 "--set", "width=16", "--set", "hidden_layers=1")
    assert result.code == 0, result.err
    assert result.json()["knob"] == "omega_0"


def test_every_run_writes_its_history_as_csv(cli, images, tmp_path) -> None:
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--no-fresh", "--steps", "4", "--eval-every", "2", "--set",
                 "width=16", "--set", "hidden_layers=1", "--device", "cpu", "--compile", "off", "--out", out)
    assert result.code == 0, result.err
    with (out / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [int(row["step"]) for row in rows] == [record["step"] for record in history] == [2, 4]
    assert float(rows[-1]["psnr_train"]) == history[-1]["psnr_train"]


def test_render_size_can_be_a_factor_of_the_signals_size(cli, images, tmp_path) -> None:
    out = tmp_path / "run"
    assert cli("fit", images["portrait_rgb"], "--no-fresh", "--steps", "2", "--set", "width=16", "--set",
               "hidden_layers=1", "--device", "cpu", "--compile", "off", "--out", out).code == 0
    result = cli("render", out, "--size", "2x", "--device", "cpu")
    assert result.code == 0, result.err
    assert (out / "render-64x80.png").exists()  # the image is 32 wide and 40 high
    assert cli("render", out, "--size", "0x").code == 2


def test_size_factors_follow_each_kinds_size_convention() -> None:
    assert scaled_size("2x", get_kind("audio"), {"shape": [1, 1000]}) == "2000"
    assert scaled_size("0.5x", get_kind("volume"), {"shape": [1, 10, 20, 30]}) == "5x10x15"
    assert scaled_size("2x", get_kind("shape"), {}) == "512"
    assert scaled_size("1.5x", get_kind("video"), {"shape": [3, 8, 20, 40]}) == "60x30"
    assert scaled_size("0.5x", get_kind("mri"), {"shape": [1, 8, 8, 8]}) == "4x4x4"
    assert scaled_size("2x", get_kind("nerf"), {"shape": [3, 5, 10, 20]}) == "40x20"
    assert scaled_size("64x48", get_kind("image"), {"shape": [3, 10, 10]}) == "64x48"


def test_headlines_give_sizes_as_render_takes_them(images) -> None:
    from specfit.kinds.registry import task_for

    portrait = task_for(specfit.load_signal(images["portrait_rgb"]))  # 32 wide, 40 high
    assert "32 x 40" in portrait.headline()
