"""Models, encodings and the registry (methods.md 1.4, 1.5, 2, 4)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import specfit
from specfit.encodings import GaussianEncoding, PositionalEncoding
from specfit.errors import SpecfitError
from specfit.models import REGISTRY, ModelEntry, build_model, get_entry, resolve_params
from specfit.models import params as params_module
from specfit.models.mlp import FourierMLP
from specfit.models.params import DEFAULT_LAYER_WIDTH, declared
from specfit.models.registry import check_buildable
from specfit.models.sine import Finer, FinerParams, Siren, SirenParams, finer_activation
from specfit.signals.sampling import grid_coordinates


def _coords(n: int = 50, d: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_registry_model_maps_n_coordinates_to_n_by_c(name, channels):
    """Each registry model builds from its entry and maps (N, 2) coordinates to finite (N, C) values."""
    torch.manual_seed(0)
    model = build_model(name, 2, channels, {"width": 32, "hidden_layers": 1})
    with torch.no_grad():
        out = model(_coords())
    assert out.shape == (50, channels)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert float(out.std()) > 0  # not a constant output


@torch.no_grad()
def test_fourier_mlps_output_in_zero_one():
    """Fourier-feature MLPs train on [0, 1] and end in a sigmoid; every model is 'unit' or 'signed'."""
    for name, entry in REGISTRY.items():
        assert entry.value_range in ("unit", "signed"), name
        model = build_model(name, 2, 3, {"width": 16, "hidden_layers": 1})
        if isinstance(model, FourierMLP):
            assert entry.value_range == "unit", name
            out = model(_coords() * 5)
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def _tiny_siren(convention: str, omega_0: float = 7.0) -> Siren:
    torch.manual_seed(1)
    params = SirenParams(width=5, hidden_layers=1, omega_0=omega_0, convention=convention)
    model = Siren(2, 2, params)
    with torch.no_grad():  # make every bias clearly non-zero so scaling it or not matters
        for layer in (model.first, *model.hidden, model.last):
            layer.bias.uniform_(-0.5, 0.5)
    return model


def test_siren_convention_scales_bias_in_first_layer():
    """'siren' convention: layers compute sin(omega (W h + b)) and the output W h + b."""
    model = _tiny_siren("siren")
    x = _coords(9)
    W0, b0 = model.first.weight, model.first.bias
    W1, b1 = model.hidden[0].weight, model.hidden[0].bias
    W2, b2 = model.last.weight, model.last.bias
    h = torch.sin(7.0 * (x @ W0.T + b0))
    h = torch.sin(30.0 * (h @ W1.T + b1))
    expected = h @ W2.T + b2
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_fresh_convention_scales_inputs_not_biases():
    """'fresh' convention: sin(W (omega_0 x) + b), hidden sin(W (30 h) + b), output W (30 h) + b."""
    model = _tiny_siren("fresh")
    x = _coords(9)
    W0, b0 = model.first.weight, model.first.bias
    W1, b1 = model.hidden[0].weight, model.hidden[0].bias
    W2, b2 = model.last.weight, model.last.bias
    h = torch.sin((7.0 * x) @ W0.T + b0)
    h = torch.sin((30.0 * h) @ W1.T + b1)
    expected = (30.0 * h) @ W2.T + b2
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    # The two conventions are genuinely different functions of the same weights.
    other = _tiny_siren("siren")
    assert not torch.allclose(model(x), other(x), atol=1e-3)


def test_siren_default_convention_is_fresh_and_recorded_in_registry():
    """The registry's SIREN defaults to the FreSh convention and lets the user choose 'siren'."""
    entry = get_entry("siren")
    assert entry.defaults["convention"] == "fresh"
    assert "fresh" in entry.convention and "siren" in entry.convention
    assert build_model("siren", 2, 1, {"convention": "siren", "width": 8}).convention == "siren"
    with pytest.raises(SpecfitError):
        resolve_params(entry, {"convention": "other"})


@pytest.mark.parametrize("cls, params", [(Siren, SirenParams), (Finer, FinerParams)])
@torch.no_grad()
def test_sine_network_initialisation_bounds(cls, params):
    """First layer W ~ U(-1/n_in, 1/n_in); later W ~ U(+-sqrt(6/n_in)/30); PyTorch default biases."""
    torch.manual_seed(0)
    model = cls(2, 3, params(width=256, hidden_layers=2))
    first = model.first.weight
    assert float(first.abs().max()) <= 0.5
    assert float(first.abs().max()) > 0.45  # actually uses the whole range
    bound = math.sqrt(6.0 / 256) / 30.0
    for layer in (*model.hidden, model.last):
        assert float(layer.weight.abs().max()) <= bound + 1e-7
        assert float(layer.weight.abs().max()) > 0.9 * bound
        assert float(layer.bias.abs().max()) <= 1 / math.sqrt(256) + 1e-7


@torch.no_grad()
def test_finer_forward_is_variable_periodic_sine():
    """FINER layers compute sin(omega (|z| + 1) z) with z = W h + b."""
    torch.manual_seed(2)
    model = Finer(2, 1, FinerParams(width=6, hidden_layers=0, omega_0=5.0))
    x = _coords(7)
    z = model.first(x)
    expected = model.last(torch.sin(5.0 * (z.abs() + 1) * z))
    torch.testing.assert_close(model(x), expected)


def test_finer_backward_treats_abs_plus_one_as_constant():
    """d/dz of FINER's activation is cos(omega (|z|+1) z) * omega (|z|+1): (|z|+1) gets no gradient."""
    omega = 3.0
    z = torch.tensor([-1.3, -0.4, 0.0, 0.2, 0.9, 2.1], dtype=torch.float64, requires_grad=True)
    finer_activation(z, omega).sum().backward()
    zd = z.detach()
    manual = torch.cos(omega * (zd.abs() + 1) * zd) * omega * (zd.abs() + 1)
    torch.testing.assert_close(z.grad, manual)
    # The full derivative (with d|z|/dz) would differ away from z = 0.
    full = torch.cos(omega * (zd.abs() + 1) * zd) * omega * (2 * zd.abs() + 1)
    assert not torch.allclose(z.grad, full)


@pytest.mark.parametrize("k", [0.0, 0.5, 2.5])
@torch.no_grad()
def test_finer_first_bias_scale_draws_uniform_k(k):
    """FINER's knob k draws the first-layer bias from U(-k, k); None keeps PyTorch's default."""
    torch.manual_seed(3)
    bias = Finer(2, 1, FinerParams(width=512, hidden_layers=0, first_bias_scale=k)).first.bias
    assert float(bias.abs().max()) <= k
    if k > 0:
        assert float(bias.abs().max()) > 0.95 * k
        assert float(bias.mean()) == pytest.approx(0.0, abs=0.15 * k)
    default = Finer(2, 1, FinerParams(width=512, hidden_layers=0, first_bias_scale=None)).first.bias
    assert 0.6 < float(default.abs().max()) <= 1 / math.sqrt(2)


def test_fourier_features_gaussian_parameter_count_matches_tancik():
    """ff-gaussian with 256 features, width 256, 2 (+1) hidden layers has ~264k parameters."""
    model = build_model("ff-gaussian", 2, 3, {"features": 256, "width": 256, "hidden_layers": 2})
    count = sum(p.numel() for p in model.parameters())
    assert count == 512 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 3 + 3
    assert 263_000 < count < 265_000


def test_gaussian_b_is_a_frozen_buffer_saved_in_state_dict():
    """Gaussian B is a buffer: in state_dict, not a parameter, untouched by an optimiser step."""
    torch.manual_seed(4)
    model = build_model("ff-gaussian", 2, 1, {"width": 16, "hidden_layers": 1, "sigma": 3.0})
    keys = [k for k in model.state_dict() if "frequencies" in k]
    assert keys == ["encoding.frequencies"]
    b = model.state_dict()["encoding.frequencies"].clone()
    assert b.shape == (256, 2)
    assert all(p is not model.encoding.frequencies for p in model.parameters())
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    model(_coords()).square().mean().backward()
    optimiser.step()
    torch.testing.assert_close(model.state_dict()["encoding.frequencies"], b)
    # Loading a state dict restores B exactly (so a saved model is rebuilt with its own B).
    torch.manual_seed(5)
    other = build_model("ff-gaussian", 2, 1, {"width": 16, "hidden_layers": 1, "sigma": 3.0})
    assert not torch.equal(other.encoding.frequencies, b)
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other(_coords()), model(_coords()))


def test_gaussian_encoding_formula_and_scale():
    """gamma(v) = [cos 2 pi B v, sin 2 pi B v] with B ~ N(0, sigma^2)."""
    torch.manual_seed(6)
    encoding = GaussianEncoding(2, features=4096, sigma=10.0)
    b = encoding.frequencies
    assert float(b.std()) == pytest.approx(10.0, rel=0.05)
    assert abs(float(b.mean())) < 0.5
    v = _coords(5)
    projected = 2 * math.pi * v.double() @ b.double().T
    reference = torch.cat([projected.cos(), projected.sin()], dim=-1).float()
    torch.testing.assert_close(encoding(v), reference, rtol=0, atol=2e-4)  # float32 phases ~100 rad
    assert encoding.out_features == 8192


def test_positional_encoding_frequencies_per_axis():
    """Positional encoding: per axis m/2 frequencies 2^linspace(0, sigma_p, m/2) - 1 (256 vectors, m=256)."""
    encoding = PositionalEncoding(2, features=256, scale=6.0)
    b = encoding.frequencies
    assert b.shape == (256, 2)
    expected = 2.0 ** np.linspace(0, 6, 128) - 1
    np.testing.assert_allclose(b[:128, 0].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b[128:, 1].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(b[:128, 1].abs().max()) == 0.0 and float(b[128:, 0].abs().max()) == 0.0


@pytest.mark.parametrize(
    "name, knob, default, first, last, count",
    [
        ("siren", "omega_0", 30.0, 10.0, 200.0, 20),
        ("ff-gaussian", "sigma", 10.0, 1.0, 20.0, 20),
        ("finer", "first_bias_scale", None, 0.0, 3.0, 31),
        ("finer-omega", "omega_0", 30.0, 10.0, 200.0, 20),
    ],
)
def test_registry_knobs_and_default_grids_follow_methods_table(name, knob, default, first, last, count):
    """Knob names, defaults and FreSh grids are the published ones (methods.md 1.4)."""
    entry = get_entry(name)
    assert entry.knob is not None
    assert entry.knob.name == knob
    assert entry.knob.default == default
    grid = entry.knob.grid
    assert (grid[0], grid[-1], len(grid)) == (pytest.approx(first), pytest.approx(last), count)
    steps = np.diff(grid)
    np.testing.assert_allclose(steps, steps[0], atol=1e-9)
    assert entry.defaults[knob] == default


@torch.no_grad()
def test_finer_omega_has_zero_first_bias_and_relu_has_no_knob():
    """'finer-omega' fixes the first bias to 0; a plain ReLU MLP has no knob for FreSh."""
    assert get_entry("finer-omega").defaults["first_bias_scale"] == 0.0
    model = build_model("finer-omega", 2, 1, {"width": 16})
    assert float(model.first.bias.abs().max()) == 0.0
    assert get_entry("relu").knob is None


def test_resolve_params_parses_and_validates():
    """--set values are parsed to the defaults' types; unknown names and bad numbers are errors."""
    entry = get_entry("siren")
    params = resolve_params(entry, {"width": "32", "omega_0": "45.5"})
    assert params["width"] == 32 and isinstance(params["width"], int)
    assert params["omega_0"] == 45.5
    for bad in ({"nonsense": "3"}, {"width": "32.5"}, {"omega_0": "abc"}, {"omega_0": "inf"}):
        with pytest.raises(SpecfitError):
            resolve_params(entry, bad)
    with pytest.raises(SpecfitError, match="unknown model"):
        get_entry("no-such-model")


def test_basic_mapping_does_not_alias_on_the_default_domain():
    """On [-1, 1] the default basic mapping (period 2) separates v from v + 1; period 1 (the
    published mapping, meant for [0, 1)) does not."""
    from specfit.encodings import BasicEncoding

    v = torch.tensor([[-0.5, 0.25]])
    shifted = v + torch.tensor([[1.0, 0.0]])
    default, published = BasicEncoding(2), BasicEncoding(2, period=1.0)
    assert not torch.allclose(default(v), default(shifted), atol=1e-4)
    assert torch.allclose(published(v), published(shifted), atol=1e-5)


def test_the_shared_layer_stack_applies_scales_activations_and_readout():
    from specfit.models.body import ActivationMLP

    class Tanh(ActivationMLP):
        input_scale, hidden_scale = 2.0, 3.0

        def activation(self, z: torch.Tensor) -> torch.Tensor:
            return torch.tanh(z)

        def readout(self, out: torch.Tensor) -> torch.Tensor:
            return -out

    torch.manual_seed(0)
    model = Tanh(2, 1, width=8, hidden_layers=2)
    x = torch.rand(5, 2)
    h = torch.tanh(model.first(2.0 * x))
    for layer in model.hidden:
        h = torch.tanh(layer(3.0 * h))
    assert torch.equal(model(x), -model.last(3.0 * h))
    assert [name for name, _ in model.named_parameters()][:4] == [
        "first.weight", "first.bias", "hidden.0.weight", "hidden.0.bias"]


def test_a_family_changes_one_hidden_layer_through_the_pre_activation_hook():
    """``hidden_pre_activation`` changes one layer's pre-activation, for the sample it is given,
    and nothing else of the layer loop."""
    from specfit.models.body import ActivationMLP

    class Tanh(ActivationMLP):
        def activation(self, z: torch.Tensor) -> torch.Tensor:
            return torch.tanh(z)

    class ShiftedSecond(Tanh):
        def hidden_pre_activation(self, index: int, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
            z = super().hidden_pre_activation(index, x, coords)
            return z + coords[:, :1] if index == 2 else z

    torch.manual_seed(0)
    plain = Tanh(2, 1, width=8, hidden_layers=3)
    shifted = ShiftedSecond(2, 1, width=8, hidden_layers=3)
    shifted.load_state_dict(plain.state_dict())
    x = torch.rand(5, 2)
    h = torch.tanh(plain.first(x))
    for index, layer in enumerate(plain.hidden, start=1):
        h = torch.tanh(layer(h) + (x[:, :1] if index == 2 else 0.0))
    assert torch.equal(shifted(x), plain.last(h))
    assert not torch.allclose(shifted(x), plain(x))


def test_relu_head_has_the_asked_layers_and_init():
    from specfit.models.body import relu_mlp

    torch.manual_seed(0)
    net = relu_mlp(6, 3, width=10, hidden_layers=2, xavier=True)
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(6, 10), (10, 10), (10, 3)]
    assert all(m.bias.abs().max() < 1e-4 for m in linear)  # N(0, 1e-6) biases
    assert len(relu_mlp(6, 3, width=10, hidden_layers=0)) == 1


# --- what a family declares about itself -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_built_models_keep_the_parameter_object_they_were_built_from(name):
    entry = get_entry(name)
    model = entry.create(2, 1, {"width": 16, "hidden_layers": 1})
    assert model.hparams == entry.hyperparameters({"width": 16, "hidden_layers": 1})
    assert model.hparams.width == 16 and model.hparams.hidden_layers == 1


def test_size_estimates_come_from_each_family_within_about_2x():
    """Each family estimates its own size (no parameter-name sniffing): within 2x of the parameters
    of the model built with its defaults."""
    for entry in REGISTRY.values():
        size = declared(entry.params).model_size(2, 3)
        built = sum(p.numel() for p in entry.create(2, 3).parameters())
        assert built / 2.1 <= size.params <= 2.1 * built, entry.name
        assert size.activations_per_sample > 0
    tuner = get_entry("tuner").params
    assert declared(tuner).model_size(2, 3).scratch_values > 0  # its integer-frequency box
    resfields = get_entry("resfields")
    frames = declared(resfields.hyperparameters({"n_frames": 100})).model_size(3, 3).params
    assert frames - declared(resfields.params).model_size(3, 3).params == 3 * 10 * 99  # 3 layers, rank 10


@dataclasses.dataclass(frozen=True)
class _PlainParams:  # a plugin's dataclass: no ModelParams, so its builder takes keywords
    width: int = params_module.width(8)
    gain: float = params_module.param(2.0, "output gain", minimum=0.0, maximum=10.0)


class _PlainNet(torch.nn.Module):
    def __init__(self, in_features, out_features, width=8, gain=2.0):
        super().__init__()
        self.layer, self.gain = torch.nn.Linear(in_features, out_features * width), gain

    def forward(self, coords):
        return self.gain * self.layer(coords)


def test_a_plain_dataclass_model_is_built_from_keywords_and_measured():
    entry = ModelEntry(name="plain", summary="a plugin's model", build=_PlainNet, params=_PlainParams(),
                       lr=1e-3, value_range="signed", convention="gain * W x", knob=None, reference="test")
    model = entry.create(2, 3, {"width": 4, "gain": "3"})
    assert isinstance(model, _PlainNet) and model.gain == 3.0 and model.layer.out_features == 12
    size = check_buildable(entry, 2, 3, {"width": 4})  # no estimate declared: the built model is counted
    assert size.params == 2 * 12 + 12 and declared(entry.params).layer_width() == DEFAULT_LAYER_WIDTH


@dataclasses.dataclass(frozen=True)
class _FramedParams(SirenParams):
    slots: int = params_module.param(1, "one per frame", minimum=1, maximum=1000)

    def frame_params(self, frames):
        return {"slots": frames}


def test_a_clip_asks_the_family_which_parameters_its_frames_fix():
    from specfit.kinds.registry import task_for

    clip = task_for(specfit.load_signal(np.zeros((5, 4, 4, 3), dtype=np.float32), kind="video"))
    assert clip.model_params(get_entry("resfields").params) == {"n_frames": 5}
    assert clip.model_params(_FramedParams()) == {"slots": 5}
    assert clip.model_params(get_entry("siren").params) == {}
    assert clip.model_params(_PlainParams()) == {}
    image = task_for(specfit.load_signal(np.zeros((4, 4), dtype=np.float32)))
    assert image.model_params(_FramedParams()) == {}


@dataclasses.dataclass(frozen=True)
class _WideParams(SirenParams):
    def layer_width(self):
        return 4096


def test_fresh_sizes_its_chunks_by_the_declared_layer_width(monkeypatch):
    from specfit.fresh import search

    widths = []
    monkeypatch.setattr(search, "chunk_rows", lambda width: widths.append(width) or 256)
    monkeypatch.setitem(REGISTRY, "siren-wide", dataclasses.replace(get_entry("siren"), name="siren-wide",
                                                                    params=_WideParams(width=8)))
    values = torch.rand(1, 8, 8)
    coords = grid_coordinates((8, 8))
    search.fresh_select(values, coords, "siren-wide", {"hidden_layers": 1}, grid=[10.0, 30.0], inits=2)
    assert widths and set(widths) == {4096}  # not the 8 units its layers have
