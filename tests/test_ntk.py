"""Neural tangent kernels (specfit.tangent, ``specfit ntk``, ``specfit.ntk``): closed forms, the
kernel against finite differences, every model family, spectral bias, trainable B, the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import specfit
from specfit.models import build_model, models, resolve_params
from specfit.models.registry import get_entry
from specfit.signals.sampling import grid_coordinates
from specfit.tangent.analysis import model_ntk
from specfit.tangent.experiments import (
    MappedMLP,
    extra_frequency_mapping,
    fit_held_out,
    lattice_split,
    mapping,
    power_law_mapping,
)
from specfit.tangent.kernel import (
    AmplitudeFourierMapping,
    _jacobian_part,
    averaged_ntk,
    empirical_ntk,
    mapping_kernel,
    stationary_profile,
)
from specfit.tangent.measures import bandwidth, eigenvalues, profile, profile_spectrum, stationarity
from specfit.tangent.spectral_bias import periodic_grid, spectral_bias

# Small models of every family: the NTK's two paths must agree on each.
SMALL = {"width": 8, "hidden_layers": 1}
SMALL_EXTRA = {"hashgrid": {"log2_table": 8, "levels": 4}, "resfields": {"rank": 2},
               "tuner": {"band_limit": 64}, "tuner-uniform": {"band_limit": 64},
               "ff-gaussian": {"features": 8}, "ff-positional": {"features": 8}}


def test_linear_model_kernel_is_the_feature_gram_matrix() -> None:
    torch.manual_seed(0)
    features = AmplitudeFourierMapping(torch.randn(5, 2) * 2, torch.rand(5) + 0.5)
    model = nn.Sequential(features, nn.Linear(features.out_features, 1))
    coords = torch.rand(20, 2) * 2 - 1
    phi = features(coords).double()
    expected = phi @ phi.T + 1.0  # the weight's features and the bias's constant 1
    assert torch.allclose(empirical_ntk(model, coords), expected, atol=1e-5)


def test_fourier_mapping_kernel_is_h_phi_of_the_offset() -> None:
    torch.manual_seed(1)
    b, a = torch.randn(16, 2) * 3, 1.0 / torch.arange(1, 17, dtype=torch.float32)
    coords = grid_coordinates((7, 7))
    kernel = mapping_kernel(AmplitudeFourierMapping(b, a), coords)
    offsets = (coords[:, None, :] - coords[None, :, :]).reshape(-1, 2)
    closed = stationary_profile(b, a, offsets).reshape(kernel.shape)
    assert torch.allclose(kernel, closed, atol=1e-5)
    assert stationarity(kernel.numpy(), 7, 2) < 1e-5  # float32 features


def test_power_law_and_extra_frequency_mappings_have_their_closed_forms() -> None:
    coords = grid_coordinates((33,))
    d = coords - coords[16]
    narrow = mapping_kernel(power_law_mapping(0.5, 32), coords)[16]
    offset = d[:, 0].double()
    closed = sum(j ** -1.0 * torch.cos(math.pi * j * offset) for j in range(1, 33))
    assert torch.allclose(narrow, closed, atol=1e-4)
    extra = mapping_kernel(extra_frequency_mapping(6.0), coords)[16]
    assert torch.allclose(extra, torch.cos(math.pi * offset) + torch.cos(6 * math.pi * offset), atol=1e-5)


def _finite_difference_kernel(model: nn.Module, coords: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    columns = []
    with torch.no_grad():
        for p in model.parameters():
            real = torch.view_as_real(p) if p.is_complex() else p
            flat = real.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                up = model(coords)[:, 0]
                flat[i] = old - eps
                down = model(coords)[:, 0]
                flat[i] = old
                columns.append((up - down) / (2 * eps))
    jac = torch.stack(columns, 1).double()
    return jac @ jac.T


@pytest.mark.parametrize(("name", "params"), [
    ("siren", {"width": 4, "hidden_layers": 1}),
    ("hashgrid", {"width": 4, "hidden_layers": 1, "levels": 2, "log2_table": 4, "n_max": 32}),
    ("wire", {"width": 4, "hidden_layers": 1}),
])
def test_empirical_ntk_matches_finite_differences(name: str, params: dict) -> None:
    torch.manual_seed(0)
    model = build_model(name, 1, 1, params).double()
    for p in model.parameters():  # .double() leaves complex64 parameters (WIRE's) alone
        if p.is_complex():
            p.data = p.data.to(torch.complex128)
    coords = torch.linspace(-0.9, 0.9, 9, dtype=torch.float64).unsqueeze(1)
    expected = _finite_difference_kernel(model, coords)
    scale = float(expected.abs().max())
    assert torch.allclose(empirical_ntk(model, coords), expected, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("name", sorted(models()))
@pytest.mark.parametrize("dims", [1, 2])
def test_every_family_gives_the_same_kernel_by_both_paths(name: str, dims: int) -> None:
    """The fast path (linear layers) and per-sample Jacobians of all parameters agree, for the whole
    kernel and for some of its rows."""
    torch.manual_seed(0)
    model = build_model(name, dims, 1, {**SMALL, **SMALL_EXTRA.get(name, {})})
    coords = grid_coordinates((17,) if dims == 1 else (5, 5))  # 2 rows of 17+: double backward
    generic = _jacobian_part(model, coords, set(), 1 << 28)
    scale = float(generic.abs().max())
    assert torch.allclose(empirical_ntk(model, coords), generic, rtol=1e-4, atol=1e-5 * scale)
    rows = torch.tensor([3, 0])
    by_rows = _jacobian_part(model, coords, set(), 1 << 28, rows)  # every parameter by double backward
    for part in (empirical_ntk(model, coords, rows=rows), by_rows):
        assert torch.allclose(part, generic[rows], rtol=1e-4, atol=1e-5 * scale)


def test_gaussian_mapping_makes_a_wide_relu_mlp_kernel_nearly_stationary() -> None:
    """Stated factor: the stationarity measure drops at least 3-fold (measured about 5-fold)."""
    shape = {"width": 1024, "hidden_layers": 1}
    plain = model_ntk("relu", 1, 32, shape, seeds=4)
    mapped = model_ntk("ff-gaussian", 1, 32, {**shape, "sigma": 1.0}, seeds=4)
    assert plain.stationarity > 0.15
    assert mapped.stationarity < plain.stationarity / 3


def test_measures_of_a_known_kernel() -> None:
    size = 33
    coords = grid_coordinates((size,))
    kernel = np.exp(-((coords - coords.T) ** 2).numpy() / 0.02)
    assert stationarity(kernel, size, 1) < 1e-12
    values = eigenvalues(kernel)
    assert np.all(np.diff(values) <= 1e-12)
    offsets, line = profile(kernel, size, 1)
    assert offsets[size // 2] == 0 and np.allclose(line, np.exp(-offsets ** 2 / 0.02))
    # 32 points of a cosine of 3 cycles over them
    frequencies, spectrum = profile_spectrum(np.cos(np.pi * 3 * offsets[:-1]))
    assert spectrum.argmax() == 3 and frequencies[3] == 3
    assert bandwidth(np.array([1.0, 0.5, 0.5, 0.0])) == 2 and bandwidth(np.array([1.0, 0.0])) == 0
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((size, size))
    assert stationarity(noise @ noise.T, size, 1) > 0.3


def test_averaged_kernel_is_the_mean_and_keeps_the_random_stream() -> None:
    coords = grid_coordinates((6,))
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    mean = averaged_ntk(lambda: build_model("relu", 1, 1, SMALL), coords, seeds=2, seed=3)
    assert torch.equal(torch.rand(1), before)
    kernels = []
    for s in (3, 4):
        torch.manual_seed(s)
        kernels.append(empirical_ntk(build_model("relu", 1, 1, SMALL), coords))
    assert torch.allclose(mean, (kernels[0] + kernels[1]) / 2)


def test_spectral_bias_prediction_is_exact_for_a_model_linear_in_its_parameters() -> None:
    """Gradient descent on a linear model is kernel regression: its curves are the prediction's
    up to the discrete steps (exp(-eta lambda t) against (1 - eta lambda)^t, eta lambda <= 0.05)."""
    def build() -> nn.Module:
        return nn.Sequential(power_law_mapping(1.0, 12), nn.Linear(24, 1))

    curves = spectral_bias(build, "linear", frequencies=(1, 3, 6), size=32, steps=60, records=6,
                           fraction=0.05)
    assert curves.trained.shape == curves.predicted.shape == (len(curves.steps), 3)
    assert np.allclose(curves.trained[0], curves.predicted[0], atol=1e-5)
    assert np.allclose(curves.trained, curves.predicted, atol=0.02)
    assert curves.trained[-1, 0] < 0.5 * curves.trained[0, 0]  # the low frequency is learned first
    assert curves.trained[-1, 2] > curves.trained[-1, 0]


def test_trainable_b_is_an_option_of_the_gaussian_mapping_that_default_configs_leave_out() -> None:
    entry = get_entry("ff-gaussian")
    assert "trainable_b" not in resolve_params(entry, {})  # saved configs and grid records unchanged
    assert "trainable_b" not in resolve_params(entry, {"trainable_b": 0})
    assert resolve_params(entry, {"trainable_b": "1"})["trainable_b"] == 1
    frozen = build_model("ff-gaussian", 1, 1, {"width": 8, "features": 4})
    trained = build_model("ff-gaussian", 1, 1, {"width": 8, "features": 4, "trainable_b": 1})
    assert "encoding.frequencies" not in dict(frozen.named_parameters())
    assert "encoding.frequencies" in dict(trained.named_parameters())
    assert set(frozen.state_dict()) == set(trained.state_dict())
    with pytest.raises(specfit.SpecfitError, match="trainable_b"):
        resolve_params(entry, {"trainable_b": 2})
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    data = (x, 0.5 + 0.3 * torch.sin(3 * x))
    small = {"width": 8, "features": 4, "trainable_b": 1}
    score = fit_held_out(lambda: build_model("ff-gaussian", 1, 1, small), data, data, steps=5, lr=1e-2)
    assert score.b_change is not None and score.b_change > 0
    fixed = fit_held_out(lambda: MappedMLP(mapping("gaussian", 1, 2.0, 4), 8, 1), data, data, steps=2)
    assert fixed.b_change is None


def test_lattice_split_takes_even_and_odd_samples() -> None:
    values = torch.arange(16.0).reshape(1, 4, 4)
    (train_x, train_y), (_, test_y) = lattice_split(values)
    assert train_y[:, 0].tolist() == [0, 2, 8, 10] and test_y[:, 0].tolist() == [5, 7, 13, 15]
    assert torch.allclose(train_x[1], torch.tensor([-1.0, 1.0 / 3.0]))
    assert periodic_grid(4)[:, 0].tolist() == [-1.0, -0.5, 0.0, 0.5]


# --- API and command line ------------------------------------------------------------------------


def test_api_returns_a_typed_result() -> None:
    import specfit.tangent.kernel

    result = specfit.ntk("ff-basic", 2, 5, seeds=1, width=8, hidden_layers=1)
    assert isinstance(result, specfit.NTKResult)
    assert result.kernel.shape == (25, 25) and result.eigenvalues.shape == (25,)
    assert result.params["width"] == 8 and result.profile.shape == (5,)


def test_cli_json_document(cli) -> None:
    result = cli("ntk", "ff-gaussian", "--size", "16", "--seeds", "1", "--set", "width=8", "--set", "sigma=2",
                 "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert {"eigenvalues", "stationarity", "profile", "spectrum", "params", "bandwidth"} <= set(doc)
    assert len(doc["eigenvalues"]) == 16 and doc["params"]["sigma"] == 2.0
    assert doc["eigenvalues"] == sorted(doc["eigenvalues"], reverse=True)


@pytest.mark.parametrize("argv", [
    ["ntk", "ff-gaussian", "--size", "2"],
    ["ntk", "ff-gaussian", "--set", "sigmaa=2"],
    ["ntk", "ff-gaussian", "--set", "sigma"],
    ["ntk", "ff-gaussian", "--dims", "3"],
    ["ntk", "ff-gaussian", "--seeds", "0"],
    ["ntk", "nosuchmodel"],
])
def test_cli_bad_input_is_one_error_line(cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error:") and result.err.count("\n") == 1


def test_cli_out_writes_a_page_and_refuses_to_overwrite(cli, tmp_path) -> None:
    out = tmp_path / "page"
    args = ["ntk", "relu", "--size", "8", "--seeds", "1", "--set", "width=8", "--out", out]
    assert cli(*args).code == 0
    assert {p.name for p in out.iterdir()} == {"report.html", "kernel.png", "ntk.json"}
    assert json.loads((out / "ntk.json").read_text())["size"] == 8
    refused = cli(*args)
    assert refused.code == 2 and "--overwrite" in refused.err
    assert cli(*args, "--overwrite").code == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert cli("ntk", "relu", "--size", "8", "--out", other, "--overwrite").code == 2
    assert (other / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_fit_with_trainable_b_saves_it_and_loads_it_back(tmp_path) -> None:
    image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    run = specfit.fit(image, "ff-gaussian", steps=3, device="cpu", width=8, features=4, sigma=2.0,
                      trainable_b=1)
    assert run.config.params["trainable_b"] == 1
    run.save(tmp_path / "run")
    again = specfit.load_run(tmp_path / "run")
    frequencies = dict(again.model.named_parameters())["encoding.frequencies"]
    assert torch.equal(frequencies, run.model.encoding.frequencies)
    plain = specfit.fit(image, "ff-gaussian", steps=1, device="cpu", width=8, features=4, sigma=2.0)
    assert "trainable_b" not in plain.config.params
