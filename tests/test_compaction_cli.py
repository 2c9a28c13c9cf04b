"""Compaction from the command line: `fit --model tuner --prune-to M` / `--densify K`."""

from __future__ import annotations

import json

import torch
from helpers import assert_single_error

from specfit.runs.folder import load_model

TINY_TUNER = ["--model", "tuner", "--set", "width=16", "--set", "band_limit=8", "--no-fresh",
              "--compile", "off", "--device", "cpu", "--steps", "10", "--eval-every", "5"]


def test_prune_to_shrinks_the_saved_model_and_records_before_and_after(cli, images, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], *TINY_TUNER, "--prune-to", "8", "--ramp-steps", "4",
                 "--finetune-steps", "4", "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    before, after = metrics["compaction"]["before"], metrics["compaction"]["after"]
    assert (before["inputs"], after["inputs"]) == (16, 8)
    hidden = 16  # one hidden layer of 16: each input carries a phase and a weight column
    assert before["trainable"] - after["trainable"] == 8 * (1 + hidden)
    assert metrics["params"] == after["trainable"]
    assert len(metrics["compaction"]["pruned_frequencies"]) == 8
    config = json.loads((out / "config.json").read_text())
    assert config["params"]["inputs"] == 8
    model, _ = load_model(out)
    assert model.frequencies.shape == (8, 2)
    assert "compaction: input frequencies" in (out / "report.html").read_text()
    render = cli("render", out, "--size", "8x8")
    assert render.code == 0, render.err


def test_densify_adds_inputs_at_twice_a_frequency(cli, images, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], *TINY_TUNER, "--densify", "2", "--finetune-steps", "2",
                 "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    added = metrics["compaction"]["added_frequencies"]
    assert metrics["compaction"]["after"]["inputs"] == 16 + len(added) and len(added) >= 1
    model, _ = load_model(out)
    existing = {tuple(row) for row in model.frequencies.round().long().tolist()}
    for vector in added:
        half = tuple(torch.tensor(vector).div(2, rounding_mode="floor").tolist())
        assert all(v % 2 == 0 for v in vector) and half in existing


def test_compaction_is_refused_for_other_models_and_bad_targets(cli, images, tmp_path):
    out = tmp_path / "run"
    siren = cli("fit", images["noise32"], "--model", "siren", "--prune-to", "8", "--steps", "2",
                "--out", out)
    assert_single_error(siren.code, siren.out, siren.err)
    assert not out.exists()
    too_many = cli("fit", images["noise32"], *TINY_TUNER, "--prune-to", "0", "--out", out)
    assert_single_error(too_many.code, too_many.out, too_many.err)
    assert not out.exists()
