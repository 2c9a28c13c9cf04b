"""The other ways to set a sine network's knob: weight scaling, WINNER's noise and its scales from
the spectral centroid, and the benchmark values of the registry's knobs."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from specfit.errors import SpecfitError
from specfit.fresh.centroid import spectral_centroid, winner_scales
from specfit.models import REGISTRY, build_model, get_entry, resolve_params
from specfit.models.resfields import ResFieldSiren, ResFieldsParams
from specfit.models.sine import Finer, FinerParams, Siren, SirenParams

# Digests of the state dicts (and of the next draws of the random stream) that the code before
# these options built from seed 7: the options at their defaults must not change a bit.
BEFORE = {
    "siren": "fd15eb14b7d6f94f",
    "finer": "5bec01dd039b843d",
    "resfields": "3ce3232c85ce6324",
}


def _digest(build) -> str:
    torch.manual_seed(7)
    model = build()
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    digest.update(torch.rand(4).numpy().tobytes())  # nothing more was drawn from the stream
    return digest.hexdigest()[:16]


def _seeded(build, seed: int = 3):
    torch.manual_seed(seed)
    return build()


def test_defaults_leave_the_initialisation_bit_identical():
    assert _digest(lambda: Siren(2, 3, SirenParams(width=8, hidden_layers=2))) == BEFORE["siren"]
    assert _digest(lambda: Finer(2, 3, FinerParams(width=8, hidden_layers=2, first_bias_scale=0.5))) == \
        BEFORE["finer"]
    assert _digest(lambda: ResFieldSiren(3, 3, ResFieldsParams(width=8, hidden_layers=2, n_frames=3,
                                                              rank=2))) == BEFORE["resfields"]
    # the registry's defaults are the same options
    assert _digest(lambda: build_model("siren", 2, 3, {"width": 8, "hidden_layers": 2})) == BEFORE["siren"]


@pytest.mark.parametrize("build", [
    lambda **o: Siren(2, 3, SirenParams(width=16, hidden_layers=2, **o)),
    lambda **o: Siren(2, 3, SirenParams(width=16, hidden_layers=2, convention="siren", **o)),
    lambda **o: Finer(2, 3, FinerParams(width=16, hidden_layers=2, first_bias_scale=0.7, **o)),
    lambda **o: ResFieldSiren(3, 3, ResFieldsParams(width=16, hidden_layers=2, n_frames=3, rank=2, **o)),
])
def test_weight_scaling_multiplies_the_first_and_hidden_weights_only(build):
    """alpha times every weight but the output layer's; biases, output layer and residuals as before."""
    plain, scaled = _seeded(build), _seeded(lambda: build(weight_scale=2.5))
    before, after = plain.state_dict(), scaled.state_dict()
    multiplied = {"first.weight", "hidden.0.weight", "hidden.1.weight"}
    for name, tensor in before.items():
        expected = tensor * 2.5 if name in multiplied else tensor
        assert torch.equal(after[name], expected), name
    assert not torch.equal(after["first.weight"], before["first.weight"])


def test_weight_scale_is_a_checked_hyperparameter():
    assert resolve_params(get_entry("siren"), {"weight_scale": "2.5"})["weight_scale"] == 2.5
    assert resolve_params(get_entry("finer"), {"weight_scale": 3})["weight_scale"] == 3.0
    with pytest.raises(SpecfitError, match="weight_scale"):
        resolve_params(get_entry("siren"), {"weight_scale": 0})
    with pytest.raises(SpecfitError, match="weight_scale"):  # not a sinusoidal network's option
        resolve_params(get_entry("gauss"), {"weight_scale": 2})


def test_winner_noise_has_its_scale_per_layer_and_touches_nothing_else():
    """N(0, (s0/omega_0)^2) on the first layer, N(0, (s1/hidden_omega_0)^2) on the first hidden one."""
    def build(**options):
        return Siren(2, 1, SirenParams(width=512, hidden_layers=2, omega_0=60.0, hidden_omega_0=20.0,
                                       **options))

    plain, noisy = _seeded(build), _seeded(lambda: build(winner_s0=6.0, winner_s1=1.0))
    before, after = plain.state_dict(), noisy.state_dict()
    for name, std in (("first.weight", 6.0 / 60.0), ("hidden.0.weight", 1.0 / 20.0)):
        noise = (after[name] - before[name]).double()
        assert abs(float(noise.mean())) < 0.1 * std, name
        assert float(noise.std()) == pytest.approx(std, rel=0.1), name
    for name in before.keys() - {"first.weight", "hidden.0.weight"}:
        assert torch.equal(after[name], before[name]), name


def test_winner_noise_is_added_after_weight_scaling():
    def build(**options):
        return Siren(2, 1, SirenParams(width=64, hidden_layers=1, **options))

    scaled = _seeded(lambda: build(weight_scale=2.0))
    both = _seeded(lambda: build(weight_scale=2.0, winner_s1=3.0))
    assert torch.equal(both.first.weight, scaled.first.weight)
    noise = (both.hidden[0].weight - scaled.hidden[0].weight).detach()
    assert float(noise.std()) == pytest.approx(3.0 / 30.0, rel=0.2)


def test_winner_s1_needs_a_hidden_layer():
    with pytest.raises(SpecfitError, match="winner_s1") as caught:
        build_model("siren", 2, 1, {"hidden_layers": 0, "winner_s1": 1.0})
    assert caught.value.setting == "winner_s1"
    build_model("siren", 2, 1, {"hidden_layers": 0, "winner_s0": 1.0})


def _sinusoid(samples: int, cycles: int) -> torch.Tensor:
    n = torch.arange(samples, dtype=torch.float64)
    return torch.sin(2 * math.pi * cycles * n / samples)


def test_centroid_of_a_pure_tone_gives_the_audio_scales():
    """A tone of 64 cycles in 1024 samples: centroid 1/16 cycle per sample, 1/8 of Nyquist."""
    tone = _sinusoid(1024, 64)[None]
    assert spectral_centroid(tone) == pytest.approx(0.125, abs=1e-9)
    assert spectral_centroid(0.3 * tone) == pytest.approx(0.125, abs=1e-9)
    scales = winner_scales(tone)
    assert scales.s0 == pytest.approx(3500 * (1 - math.exp(-7 * 0.125)), rel=1e-8)
    assert scales.s1 == pytest.approx(3 * 0.125, rel=1e-8)


def test_centroid_of_an_image_flattens_rows_and_divides_by_channels():
    """Rows of 8 cycles in 64 pixels flatten to one tone: centroid 1/4 of Nyquist; RGB: x = c / 9."""
    gray = _sinusoid(64, 8).expand(32, 64)[None]
    scales = winner_scales(gray)
    assert scales.centroid == pytest.approx(0.25, abs=1e-9)
    assert scales.s0 == pytest.approx(50 * (1 - math.exp(-5 * 0.25)), rel=1e-8)
    assert scales.s1 == pytest.approx(0.4 * 0.25, rel=1e-8)
    rgb = winner_scales(gray.expand(3, 32, 64))
    assert rgb.centroid == pytest.approx(0.25, abs=1e-9)
    assert rgb.s0 == pytest.approx(50 * (1 - math.exp(-5 * 0.25 / 9)), rel=1e-8)
    assert rgb.s1 == pytest.approx(0.4 * 0.25 / 9, rel=1e-8)


def test_centroid_edge_cases():
    assert winner_scales(torch.zeros(1, 16)) == winner_scales(torch.zeros(1, 4, 4))
    assert winner_scales(torch.zeros(1, 16)).s0 == 0.0
    assert spectral_centroid(torch.ones(2, 8)) == 0.0  # a constant: all its power at frequency 0
    with pytest.raises(SpecfitError, match="3 spatial axes"):
        winner_scales(torch.zeros(1, 4, 4, 4))
    with pytest.raises(SpecfitError, match="at least 2 samples"):
        spectral_centroid(torch.zeros(1, 1))


def test_winner_scales_of_a_signal_build_a_siren():
    scales = winner_scales(_sinusoid(64, 8).expand(16, 64)[None].float())
    model = build_model("siren", 2, 1, {"width": 16, "hidden_layers": 1,
                                        "winner_s0": scales.s0, "winner_s1": scales.s1})
    assert model.hparams.winner_s0 == scales.s0 > 0


def test_benchmark_values_lie_in_their_grids_and_name_their_source():
    for name in ("siren", "finer", "finer-omega", "resfields", "wire", "gauss", "ff-positional", "ff-nerf",
                 "ff-gaussian", "hashgrid", "tuner", "tuner-uniform"):
        knob = REGISTRY[name].knob
        assert knob.benchmark_source, name
        if knob.benchmark is not None:
            assert knob.benchmark in knob.grid, name
    # published scales on [0, 1) coordinates, converted to specfit's [-1, 1]
    assert REGISTRY["ff-gaussian"].knob.benchmark == 10.0 / 2
    assert REGISTRY["ff-positional"].knob.benchmark == 6.0 - 1
    assert REGISTRY["siren"].knob.benchmark == 30.0


def test_models_lists_the_benchmark_values(cli):
    result = cli("models")
    assert result.code == 0
    assert "benchmark 5: sigma = 10 on natural images" in result.out
    lines = [line.strip() for line in result.out.splitlines()]
    assert sum(line.startswith("benchmark ") for line in lines) == sum(
        1 for entry in REGISTRY.values() if entry.knob is not None and entry.knob.benchmark is not None)
