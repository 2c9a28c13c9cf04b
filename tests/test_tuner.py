"""Integer-frequency sine networks (methods.md 3): lattice, periodicity, bounds, registry."""

from __future__ import annotations

import math

import pytest
import torch

from specfit.errors import SpecfitError
from specfit.models import build_model
from specfit.models.tuner import (
    IntegerSineNet,
    TunerParams,
    bounded_frequencies,
    in_half_space,
    uniform_frequencies,
)
from specfit.runs.folder import load_model, write_model
from specfit.runs.format import WEIGHTS
from specfit.signals import make_sampling
from specfit.training.loop import FitOptions, fit_model


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


@pytest.mark.parametrize("bound", ["fixed", "learned"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_output_is_p_periodic(dims, bound):
    """f(x + p e_i) = f(x) to float precision along every axis, in 1-3 dimensions, both bound variants."""
    torch.manual_seed(0)
    width, band = (16, 40) if dims == 1 else (64, 12)  # a 1-D band of B holds only B frequencies
    model = IntegerSineNet(dims, 2, TunerParams(width=width, band_limit=band, period=2.1, bound=bound))
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
    params = TunerParams(width=32, hidden_layers=2, band_limit=12, c_low=1.0, c_high=0.4, c_deep=0.8)
    model = IntegerSineNet(2, 1, params)
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
    model = IntegerSineNet(2, 1, TunerParams(width=256, band_limit=40, c_low=1.0, c_high=0.3))
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
        IntegerSineNet(2, 1, TunerParams(width=256, band_limit=4))


def test_fit_and_select_with_tuner(cli, images, tmp_path):
    """`fit --model tuner` runs FreSh over the band limit; a saved model reloads and renders."""
    result = cli("fit", images["rough"], "--model", "tuner", "--grid", "16,24", "--inits", 3, "--steps", 5,
                 "--set", "width=64", "--compile", "off", "--json", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["knob"] == "band_limit" and metrics["value"] in (16, 24)
    assert cli("render", tmp_path / "run", "--size", "20x10").code == 0


# --- separate inputs, learned bounds, column penalty, pruning and densification ----------------------


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _short_fit(model: IntegerSineNet, steps: int = 30, lr: float = 1e-2) -> None:
    torch.manual_seed(1)
    targets = torch.rand(256, 1) * 2 - 1
    fit_model(model, targets, make_sampling((16, 16), "all"), FitOptions(steps=steps, eval_every=steps,
              compile="off"), lr=lr, to_unit=lambda v: (v + 1) / 2)


def _save(folder, model: IntegerSineNet, name: str = "tuner") -> None:
    folder.mkdir()
    write_model(folder, model, {"model": name, "params": model.config_params(),
                                "in_features": model.in_features, "out_features": model.out_features})


def test_seed_network_parameter_counts():
    """2-300-300-3 has 91 503 trainable values, 92 103 with the frozen frequencies (the seed's 92 100
    leaves out the 3 output biases); pruned to 60 inputs: 19 263 / 19 383 (seed: 19 380)."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 3, TunerParams(inputs=300, width=300, hidden_layers=1))
    assert _trainable(model) == 91_503
    assert _trainable(model) + model.frequencies.numel() == 92_103
    model.prune_inputs(torch.arange(60))
    assert _trainable(model) == 19_263
    assert _trainable(model) + model.frequencies.numel() == 19_383


@pytest.mark.parametrize("bound", ["fixed", "learned"])
def test_first_layer_columns_stay_within_bounds_after_training(bound):
    """With inputs != width and a large learning rate, every column of the effective first hidden
    weight stays within c_j / omega_0: clamped exactly (fixed) or by tanh with the learned |c_j|."""
    torch.manual_seed(0)
    params = TunerParams(inputs=24, width=16, band_limit=12, c_low=1.0, c_high=0.4, bound=bound)
    model = IntegerSineNet(2, 1, params)
    start = model.first_hidden_weight().detach().clone()
    start_c = model.hidden[0].c.detach().clone() if bound == "learned" else None
    _short_fit(model)
    weight = model.first_hidden_weight().detach()
    assert weight.shape == (16, 24)
    assert not torch.allclose(weight, start, atol=1e-4)  # the weights did move
    if bound == "fixed":
        limits = model.column_bounds / model.omega_0
        assert bool((weight.abs() >= limits - 1e-6).any())  # some clamps were active
    else:
        c = model.hidden[0].c.detach()
        assert not torch.equal(c, start_c)  # c is trained
        limits = c.abs() / model.omega_0
    assert bool((weight.abs() <= limits + 1e-7).all())


def test_regularization_matches_a_hand_computation():
    """regularization() = bound_l1 * ||c||_1 (learned) + sum_j penalty_j * ||W_eff[:, j]||_1, a 0-d tensor
    that is exactly zero for a fixed-bound model without penalty; the penalty is not saved."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, TunerParams(inputs=6, width=4, band_limit=6, bound="learned", bound_l1=1e-3))
    raw, c = model.hidden[0].raw.detach().tolist(), model.hidden[0].c.detach().tolist()
    expected = 1e-3 * sum(abs(v) for v in c)
    assert float(model.regularization().detach()) == pytest.approx(expected, rel=1e-6)
    penalty = [0.0, 2.0, 0.0, 0.0, 5.0, 0.0]
    model.column_penalty.copy_(torch.tensor(penalty))
    for j in range(6):
        for i in range(4):
            expected += penalty[j] * abs(c[j] / 30.0 * math.tanh(raw[i][j]))
    assert float(model.regularization().detach()) == pytest.approx(expected, rel=1e-5)
    assert "column_penalty" not in model.state_dict()

    fixed = IntegerSineNet(2, 1, TunerParams(inputs=6, width=4, band_limit=6))
    zero = fixed.regularization()
    assert isinstance(zero, torch.Tensor) and zero.ndim == 0 and float(zero.detach()) == 0.0
    fixed.column_penalty[2] = 3.0
    by_hand = 3.0 * sum(abs(v) for v in fixed.hidden[0].weight[:, 2].tolist())
    assert float(fixed.regularization().detach()) == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize("bound", ["fixed", "learned"])
def test_pruning_removes_parameters_and_reloads_exactly(tmp_path, bound):
    """Removing K inputs drops K (1 + width) trainable values (+K for learned c); removing columns that
    carry no weight leaves f unchanged; the saved file shrinks and reloads to identical outputs."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, TunerParams(inputs=24, width=16, band_limit=12, bound=bound))
    _short_fit(model, steps=5)
    keep = torch.arange(0, 24, 3)  # 8 kept, 16 removed
    drop = torch.tensor([j for j in range(24) if j % 3])
    with torch.no_grad():  # weightless columns: removing them must not change f
        (model.hidden[0].raw if bound == "learned" else model.hidden[0].weight)[:, drop] = 0.0
    x = torch.rand(64, 2) * 2 - 1
    with torch.no_grad():
        before = model(x)
    _save(tmp_path / "full", model)
    count, kept_rows = _trainable(model), model.frequencies[keep].clone()
    model.prune_inputs(keep)
    assert count - _trainable(model) == 16 * (1 + 16 + (bound == "learned"))
    assert model.inputs == 8 and torch.equal(model.frequencies, kept_rows)
    assert model.first_hidden_weight().shape == (16, 8) and model.column_penalty.shape == (8,)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-6)
    _save(tmp_path / "pruned", model)
    assert (tmp_path / "pruned" / WEIGHTS).stat().st_size < (tmp_path / "full" / WEIGHTS).stat().st_size
    loaded, config = load_model(tmp_path / "pruned")
    assert config["params"]["inputs"] == 8
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_any_number_of_inputs_from_the_dimension_up_builds(dims):
    """A rebuild with m' inputs draws frequencies for any m' >= d; fewer is a clear error."""
    for init in ("bounded", "uniform"):
        for m in range(dims, dims + 3):
            model = IntegerSineNet(dims, 1, TunerParams(inputs=m, width=8, band_limit=8), init)
            assert model.frequencies.shape == (m, dims)
    if dims > 1:
        with pytest.raises(SpecfitError, match="input dimension"):
            IntegerSineNet(dims, 1, TunerParams(inputs=dims - 1, width=8, band_limit=8))
    with pytest.raises(SpecfitError, match="at least"):
        IntegerSineNet(dims, 1, TunerParams(width=8, band_limit=8)).prune_inputs(torch.arange(dims - 1))


@pytest.mark.parametrize("bound", ["fixed", "learned"])
def test_densify_adds_inputs_at_twice_the_frequency(bound):
    """New inputs at exactly 2 k_j (present ones and repeats skipped), bounds by the low/high rule,
    K (1 + width) new trainable values, and f almost unchanged at insertion."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, TunerParams(inputs=6, width=16, band_limit=12, low_limit=4, bound=bound))
    with torch.no_grad():
        model.frequencies.copy_(torch.tensor([[1, 0], [0, 1], [2, 0], [1, -1], [3, 2], [5, 5]]).float())
    x = torch.rand(200, 2) * 2 - 1
    with torch.no_grad():
        before = model(x)
    count = _trainable(model)
    new = model.densify(torch.tensor([0, 1, 3, 3, 4]))  # 2 (1, 0) = (2, 0) is present; (1, -1) twice
    assert new.tolist() == [6, 7, 8]
    assert model.frequencies[6:].tolist() == [[0, 2], [2, -2], [6, 4]]
    assert model.column_bounds[6:].tolist() == [1.0, 1.0, 0.5]  # ||(6, 4)||_inf > L = 4: high
    assert _trainable(model) - count == 3 * (1 + 16 + (bound == "learned"))
    assert model.inputs == 9 and model.first_hidden_weight().shape == (16, 9)
    with torch.no_grad():
        change = float((model(x) - before).abs().max())
    assert 0.0 < change < 1e-2 * float(before.std())
    assert model.densify(torch.tensor([0])).numel() == 0 and model.inputs == 9


def test_densified_model_beyond_the_band_reloads(tmp_path):
    """Doubling beyond the band limit still reloads: config_params widens the band to hold them."""
    torch.manual_seed(0)
    model = IntegerSineNet(1, 1, TunerParams(width=8, band_limit=8))  # all 8 positive frequencies of the band
    model.densify(torch.tensor([6, 7]))
    assert sorted(int(v) for v in model.frequencies[8:, 0]) == [14, 16]
    _save(tmp_path / "run", model)
    loaded, _ = load_model(tmp_path / "run")
    x = torch.rand(32, 1) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_registry_parses_inputs_and_bound():
    """`inputs` and `bound` reach the model through the registry; bad values are SpecfitErrors."""
    model = build_model("tuner", 2, 1, {"width": 16, "inputs": "24", "band_limit": 12, "bound": "learned"})
    assert model.inputs == 24 and model.first_hidden_weight().shape == (16, 24)
    assert isinstance(model.hidden[0].c, torch.nn.Parameter)
    with pytest.raises(SpecfitError, match="bound must be one of"):
        build_model("tuner", 2, 1, {"bound": "loose"})
    with pytest.raises(SpecfitError, match="minimum"):
        build_model("tuner", 2, 1, {"inputs": 0})
    with pytest.raises(SpecfitError, match="learned"):
        build_model("tuner-uniform", 2, 1, {"width": 16, "band_limit": 12, "bound": "learned"})
