"""Integer-frequency sine networks (methods.md 3): lattice, periodicity, bounds, registry."""

from __future__ import annotations

import math

import pytest
import torch

from specfit.errors import SpecfitError
from specfit.fit import FitOptions, fit_model
from specfit.models import build_model
from specfit.models.tuner import IntegerSineNet, bounded_frequencies, in_half_space, uniform_frequencies
from specfit.signals import make_sampling


def test_bounded_frequencies_layout():
    """Basis first; distinct half-space integer rows; ~70 % in the low box; the rest beyond it, within B."""
    torch.manual_seed(0)
    rows = bounded_frequencies(2, 200, band_limit=45, low_limit=15)
    assert rows.shape == (200, 2)
    assert torch.equal(rows[:2], torch.eye(2, dtype=torch.long))
    assert len({tuple(r) for r in rows.tolist()}) == 200
    assert bool(in_half_space(rows).all())
    inf_norm = rows.abs().max(1).values
    low = int((inf_norm <= 15).sum())
    assert abs(low - round(0.7 * 200)) <= 1
    assert bool((inf_norm <= 45).all())
    assert bool((inf_norm[low:] > 15).all())  # rows after the basis and low box are high


def test_half_space_excludes_negatives_and_origin():
    """k and -k are never both present: the first non-zero coordinate is positive; the origin is out."""
    vectors = torch.tensor([[1, -3], [-1, 3], [0, 2], [0, -2], [0, 0], [2, 0]])
    assert in_half_space(vectors).tolist() == [True, False, True, False, False, True]


def test_uniform_frequencies_are_distinct_and_within_the_band():
    """The uniform baseline draws distinct half-space vectors from [0, B] x [-B, B]."""
    torch.manual_seed(1)
    rows = uniform_frequencies(2, 100, band_limit=20)
    assert len({tuple(r) for r in rows.tolist()}) == 100
    assert bool(in_half_space(rows).all()) and int(rows.abs().max()) <= 20


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_output_is_p_periodic(dims):
    """f(x + p e_i) = f(x) to float precision along every axis, in 1-3 dimensions."""
    torch.manual_seed(0)
    width, band = (16, 40) if dims == 1 else (64, 12)  # a 1-D band of B holds only B frequencies
    model = IntegerSineNet(dims, 2, width=width, band_limit=band, period=2.1)
    x = torch.rand(50, dims) * 2 - 1
    with torch.no_grad():
        for axis in range(dims):
            shift = torch.zeros(dims)
            shift[axis] = 2.1
            assert torch.allclose(model(x), model(x + shift), atol=1e-5)
        assert not torch.allclose(model(x), model(x + 0.5), atol=1e-3)  # not trivially constant


def test_hidden_weights_stay_within_their_bounds_after_training():
    """After fitting with a large learning rate, column j of the first hidden layer is within c_j/omega_0."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, width=32, hidden_layers=2, band_limit=12, c_low=1.0, c_high=0.4, c_deep=0.8)
    sampling = make_sampling((16, 16), "all")
    targets = torch.rand(256, 1) * 2 - 1
    fit_model(model, targets, sampling, FitOptions(steps=20, eval_every=10, compile="off"), lr=0.05,
              to_unit=lambda v: (v + 1) / 2)
    first, second = model.hidden[0].weight.detach(), model.hidden[1].weight.detach()
    limits = model.column_bounds / model.omega_0
    assert bool((first.abs() <= limits + 1e-7).all())
    assert bool((first.abs() >= limits - 1e-6).any())  # the bound was active, not vacuous
    assert float(second.abs().max()) <= 0.8 / 30 + 1e-7
    assert sorted({round(b, 6) for b in model.column_bounds.tolist()}) == [0.4, 1.0]


def test_initial_columns_follow_their_bounds():
    """Column j starts from N(0, (0.3 c_j / omega_0)^2): high-frequency columns are smaller on average."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, width=256, band_limit=40, c_low=1.0, c_high=0.3)
    weight = model.hidden[0].weight.detach()
    low = model.column_bounds == 1.0
    ratio = float(weight[:, ~low].std() / weight[:, low].std())
    assert 0.25 < ratio < 0.35


def test_uniform_model_has_no_bounds():
    """The uniform baseline leaves its weights unclamped."""
    torch.manual_seed(0)
    model = build_model("tuner-uniform", 2, 1, {"width": 32, "band_limit": 12})
    assert math.isinf(float(model.column_bounds[0]))
    with torch.no_grad():
        model.hidden[0].weight.fill_(1.0)
    model.project()
    assert float(model.hidden[0].weight.detach().min()) == 1.0


def test_too_small_band_limit_is_a_clear_error():
    """A band with fewer distinct frequencies than the width is refused with a SpecfitError."""
    with pytest.raises(SpecfitError, match="band limit"):
        IntegerSineNet(2, 1, width=256, band_limit=4)


def test_fit_and_select_with_tuner(cli, images, tmp_path):
    """`fit --model tuner` runs FreSh over the band limit; a saved model reloads and renders."""
    result = cli("fit", images["rough"], "--model", "tuner", "--grid", "16,24", "--inits", 3, "--steps", 5,
                 "--set", "width=64", "--compile", "off", "--json", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["knob"] == "band_limit" and metrics["value"] in (16, 24)
    assert cli("render", tmp_path / "run", "--size", "20x10").code == 0
