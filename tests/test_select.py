"""FreSh selection (methods.md 1.3): the CLI's choices, its JSON, racing, seeding, and the scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import numpy_spectrum
from scipy.stats import wasserstein_distance

from specfit.errors import SpecfitError
from specfit.fresh.search import RACE_ROUNDS, InitEvaluator, fresh_select, plan_selection
from specfit.kinds.load import load_signal
from specfit.models import get_entry
from specfit.signals import make_sampling

SMALL = ["--set", "width=64", "--set", "hidden_layers=1", "--device", "cpu"]


def _select(cli, image, model, grid, *extra):
    result = cli("select", image, "--model", model, "--grid", grid, "--inits", 3, *SMALL, "--json", *extra)
    assert result.code == 0, result.err
    return result.json()


@pytest.mark.parametrize(
    "model, knob, grid",
    [
        ("siren", "omega_0", "10,60,150"),
        ("ff-gaussian", "sigma", "1,3,10"),
        ("finer", "first_bias_scale", "0,1,3"),
    ],
)
def test_rough_image_gets_a_higher_frequency_than_smooth_image(cli, images, model, knob, grid):
    """FreSh picks a larger embedding frequency for 1/f noise than for 1/f^3 noise, for each family."""
    rough = _select(cli, images["rough"], model, grid)
    smooth = _select(cli, images["smooth"], model, grid)
    assert rough["knob"] == smooth["knob"] == knob
    assert rough["chosen"] > smooth["chosen"], (rough["table"], smooth["table"])


def test_select_json_document_shape(cli, images):
    """`select --json` prints one JSON document: knob, chosen, table rows (value, w_mean, w_stderr),
    seconds."""
    result = cli("select", images["rough"], "--model", "siren", "--grid", "10,60,150", "--inits", 3,
                 *SMALL, "--json")
    assert result.code == 0
    data = result.json()  # the whole of stdout parses as one document
    assert {"knob", "chosen", "table", "seconds"} <= set(data)
    assert data["knob"] == "omega_0"
    assert [row["value"] for row in data["table"]] == [10.0, 60.0, 150.0]
    for row in data["table"]:
        assert {"value", "w_mean", "w_stderr"} <= set(row)
        assert row["w_mean"] > 0 and row["w_stderr"] >= 0
        assert row["inits"] in {r for r in RACE_ROUNDS if r < 3} | {3}
    finalists = [row for row in data["table"] if row["inits"] == 3]
    best = min(finalists, key=lambda row: row["w_mean"])
    assert data["chosen"] == best["value"]
    assert isinstance(data["seconds"], float) and data["seconds"] > 0
    assert "\u2588" not in result.out and "FreSh" not in result.out  # no progress bar on stdout


def test_select_text_output_lists_table_and_choice(cli, images):
    """Without --json, select prints the table and marks the chosen value."""
    result = cli("select", images["rough"], "--model", "siren", "--grid", "10,60", "--inits", 2, *SMALL)
    assert result.code == 0
    assert "<- chosen" in result.out
    assert "omega_0 =" in result.out


def test_race_and_no_race_agree_and_complete_candidates_have_all_inits(cli, images):
    """Raced and un-raced selection choose the same value; candidates that finish have inits == R,
    and their scores equal the un-raced ones (same random stream)."""
    grid = "10,40,60,80,100,150,200"
    raced = _select(cli, images["rough"], "siren", grid, "--inits", 8)
    full = _select(cli, images["rough"], "siren", grid, "--inits", 8, "--no-race")
    assert raced["chosen"] == full["chosen"]
    assert all(row["inits"] == 8 for row in full["table"])
    assert all(row["inits"] in {*RACE_ROUNDS, 8} for row in raced["table"])
    chosen_row = next(r for r in raced["table"] if r["value"] == raced["chosen"])
    assert chosen_row["inits"] == 8
    assert any(row["inits"] < 8 for row in raced["table"]), "nothing was raced out: grid too easy"
    for r_row, f_row in zip(raced["table"], full["table"], strict=True):
        if r_row["inits"] == 8:
            assert r_row["w_mean"] == pytest.approx(f_row["w_mean"], rel=1e-6)
            assert r_row["w_stderr"] == pytest.approx(f_row["w_stderr"], rel=1e-5)


def test_same_seed_gives_identical_tables_and_other_seed_differs(cli, images):
    """Selection is reproducible for a seed; another seed draws other initialisations."""
    a = _select(cli, images["smooth"], "ff-gaussian", "1,3,10", "--seed", 5)
    b = _select(cli, images["smooth"], "ff-gaussian", "1,3,10", "--seed", 5)
    c = _select(cli, images["smooth"], "ff-gaussian", "1,3,10", "--seed", 6)
    assert a["table"] == b["table"]
    assert a["chosen"] == b["chosen"]
    assert [r["w_mean"] for r in a["table"]] != [r["w_mean"] for r in c["table"]]


def test_scores_equal_an_independent_recomputation(images):
    """w_mean / w_stderr are the mean and standard error over R seeded inits of W(target, spectrum of the
    untrained output), recomputed here with NumPy and scipy."""
    signal = load_signal(images["smooth"])
    coords = make_sampling(signal.spatial_shape, "all").coords
    target = signal.values * 2 - 1  # SIREN's value range
    params = {"width": 32, "hidden_layers": 1}
    plan = plan_selection(target, "siren", params, grid=[20.0, 50.0], inits=4, spectrum="published")
    selection = fresh_select(target, coords, "siren", seed=11, race=False, plan=plan)
    entry = get_entry("siren")
    p = numpy_spectrum(signal.values.double().numpy(), 32)
    for row in selection.table:
        torch.manual_seed(11)
        models = [entry.create(2, 1, {**params, "omega_0": row.value})
                  for _ in range(4)]
        distances = []
        for model in models:
            with torch.no_grad():
                output = model(coords).T.reshape(1, 64, 64).double().numpy()
            q = numpy_spectrum(output, 32)
            distances.append(wasserstein_distance(np.arange(32), np.arange(32), p, q))
        assert row.w_mean == pytest.approx(np.mean(distances), rel=1e-4)
        assert row.w_stderr == pytest.approx(np.std(distances, ddof=1) / 2, rel=1e-3, abs=1e-6)
        assert row.inits == 4
    assert selection.bins == 32
    np.testing.assert_allclose(selection.target_spectrum, p, atol=1e-6)


def test_candidates_share_one_random_stream():
    """Every candidate re-seeds: inits start..stop of a later round equal those of one full pass, and
    two values of the knob see the same first-layer weights."""
    coords = make_sampling((16, 16), "all").coords
    entry = get_entry("siren")

    def build(value):
        return entry.create(2, 1, {"width": 16, "hidden_layers": 1, "omega_0": value})

    evaluator = InitEvaluator(build, coords, (1, 16, 16), seed=3, inits=6)
    full = evaluator.outputs(30.0, 0, 6)
    assert full.shape == (6, 1, 16, 16)
    torch.testing.assert_close(evaluator.outputs(30.0, 3, 6), full[3:6])
    torch.manual_seed(3)
    first = build(30.0)
    with torch.no_grad():
        torch.testing.assert_close(full[0], first(coords).T.reshape(1, 16, 16), rtol=1e-5, atol=1e-5)
    torch.manual_seed(3)
    weights_30 = build(30.0).first.weight.detach().clone()
    torch.manual_seed(3)
    torch.testing.assert_close(build(90.0).first.weight.detach(), weights_30)


def test_selection_does_not_disturb_the_global_random_stream(images):
    """fresh_select draws from a forked RNG: the caller's torch random state is unchanged."""
    signal = load_signal(images["noise32"])
    coords = make_sampling(signal.spatial_shape, "all").coords
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fresh_select(signal.values, coords, "siren", {"width": 8, "hidden_layers": 1}, grid=[10.0, 30.0],
                 inits=2)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "relu"}, "no frequency knob"),
        ({"model": "siren", "inits": 1}, "inits"),
        ({"model": "siren", "grid": []}, "empty"),
        ({"model": "siren", "bins": 17}, "bins"),
        ({"model": "siren", "params": {"nonsense": 1}}, "nonsense"),
    ],
)
def test_selection_input_errors(images, kwargs, message):
    """Selection refuses a model without a knob, R < 2, an empty grid, too many bins, unknown params."""
    signal = load_signal(images["noise32"])
    coords = make_sampling(signal.spatial_shape, "all").coords
    arguments = {"grid": [10.0, 30.0], "inits": 2, **kwargs}
    with pytest.raises(SpecfitError, match=message):
        fresh_select(signal.values, coords, **arguments)


@pytest.mark.shared_data
def test_selection_on_kodak_image(cli, shared_data):
    """On a real photo (kodim01 resized to 32 px) selection runs and chooses a grid value."""
    data = _select(cli, shared_data / "kodak" / "kodim01.png", "siren", "10,60,150", "--resize", 32)
    assert data["chosen"] in (10.0, 60.0, 150.0)
    assert data["bins"] == 16



def test_edge_choice_is_flagged_in_select_and_fit(cli, images, tmp_path):
    """A choice at the end of the grid gets a note (select on stderr, fit in metrics.json notes)."""
    result = cli("select", images["smooth"], "--model", "siren", "--grid", "150,200", "--inits", 3, *SMALL)
    assert result.code == 0, result.err
    assert "outside" in result.err
    fit = cli("fit", images["smooth"], "--grid", "150,200", "--inits", 3, "--steps", 3, "--compile", "off",
              *SMALL, "--json", "--out", tmp_path / "run")
    assert fit.code == 0, fit.err
    assert any("outside" in note for note in fit.json()["notes"])
