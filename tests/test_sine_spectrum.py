"""Spectrum view of integer sine networks: generable frequencies, measured FFT amplitudes, the plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.special import jv

from specfit.errors import SpecfitError
from specfit.models.tuner import IntegerSineNet, TunerParams
from specfit.models.tuner_spectrum import generable_frequencies, measured_spectrum, plot_sine_spectrum


def _two_input_net(c0: float = 0.5, c1: float = 1.0) -> IntegerSineNet:
    """d = 1, K = [1, 3]; column 0 of omega_0 W peaks at c0, column 1 at c1 (in absolute value)."""
    torch.manual_seed(0)
    model = IntegerSineNet(1, 1, TunerParams(inputs=2, width=4, band_limit=4))
    with torch.no_grad():
        model.frequencies.copy_(torch.tensor([[1.0], [3.0]]))
        model.hidden[0].weight.copy_(torch.tensor([[c0, 0.1], [-0.5, -c1], [0.2, 0.3], [0.0, 0.0]]) / 30)
    return model


def test_generable_frequencies_of_a_tiny_net():
    """K = [1, 3]: order 1 gives {1, 3}, order 2 adds 3 - 1 = 2, 2 * 1 = 2, 1 + 3 = 4, 2 * 3 = 6, with the
    bounds prod (c/2)^|k| / |k|! from the measured column maxima (duplicates: the larger bound)."""
    model = _two_input_net(c0=0.5, c1=1.0)
    frequencies, bound = generable_frequencies(model, max_order=2)
    got = dict(zip([f[0] for f in frequencies.tolist()], bound.tolist(), strict=True))
    h1, h3 = 0.25, 0.5  # c / 2
    expected = {1: h1, 3: h3, 4: h1 * h3, 2: max(h1 * h3, h1**2 / 2), 6: h3**2 / 2}  # 2: 3 - 1 wins
    assert got.keys() == expected.keys()
    for k, value in expected.items():
        assert got[k] == pytest.approx(value, rel=1e-6)
    first, first_bound = generable_frequencies(model, max_order=1)
    assert first.tolist() == [[1], [3]] and first_bound.tolist() == pytest.approx([h1, h3], rel=1e-6)
    _, nominal = generable_frequencies(model, max_order=1, nominal=True)
    assert nominal.tolist() == pytest.approx([0.5, 0.25])  # c_low = 1 for k = 1, c_high = 0.5 for k = 3
    with pytest.raises(SpecfitError, match="max_order"):
        generable_frequencies(model, max_order=3)


def test_generable_frequencies_for_many_inputs():
    """256 inputs in 2-D (32 640 pairs): distinct half-space vectors, every input present with at least
    its order-1 bound, and every pair K_i + K_j present."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 1, TunerParams(inputs=256, width=8, band_limit=30))
    frequencies, bound = generable_frequencies(model)
    assert len({tuple(r) for r in frequencies.tolist()}) == len(frequencies)
    first_nonzero = torch.where(frequencies[:, 0] != 0, frequencies[:, 0], frequencies[:, 1])
    assert bool((first_nonzero > 0).all())
    index = {tuple(r): b for r, b in zip(frequencies.tolist(), bound.tolist(), strict=True)}
    c = (30 * model.hidden[0].weight.detach()).abs().amax(0)
    rows = model.frequencies.long()
    for j in range(0, 256, 17):
        assert index[tuple(rows[j].tolist())] >= float(c[j]) / 2 - 1e-9
        assert tuple((rows[j] + rows[(j + 5) % 256]).tolist()) in index


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_measured_spectrum_matches_bessel_amplitudes(dims):
    """One neuron sin(w sin(theta)) on the last basis input has amplitude 2 |J_n(w)| at n e_{d-1} for odd
    n and none at even n (bias 0): checks the FFT normalisation and which axis is which."""
    torch.manual_seed(0)
    model = IntegerSineNet(dims, 1, TunerParams(inputs=dims + 1, width=3, band_limit=4))
    w = 1.3
    with torch.no_grad():
        model.hidden[0].weight.zero_()
        model.hidden[0].bias.zero_()
        model.hidden[0].weight[0, dims - 1] = w / 30  # basis rows come first: input dims - 1 is e_{d-1}
        model.last.weight.zero_()
        model.last.weight[0, 0] = 1.0
        model.last.bias.zero_()
    frequencies, amplitude = measured_spectrum(model, samples_per_period=16)
    found = {tuple(r): a for r, a in zip(frequencies.tolist(), amplitude.tolist(), strict=True)}
    for n in range(1, 7):
        k = tuple(n if axis == dims - 1 else 0 for axis in range(dims))
        expected = 2 * abs(jv(n, w)) if n % 2 else 0.0
        assert found[k] == pytest.approx(expected, abs=2e-6)
    off_axis = [a for r, a in found.items() if any(r[axis] for axis in range(dims - 1))]
    assert max(off_axis, default=0.0) < 1e-6


def test_spectrum_lives_on_the_generated_lattice():
    """With even input frequencies every generated frequency is even: no amplitude at an odd coordinate.
    And f has no energy between integer frequencies (a 2-period FFT is empty at half-integer bins)."""
    torch.manual_seed(0)
    model = IntegerSineNet(2, 2, TunerParams(inputs=12, width=16, band_limit=8, c_low=1.5, c_high=1.0))
    with torch.no_grad():
        model.frequencies.mul_(2)
    frequencies, amplitude = measured_spectrum(model, samples_per_period=40)
    odd = (frequencies % 2 == 1).any(1)
    assert float(amplitude[~odd].max()) > 1e-2
    assert float(amplitude[odd].max()) < 1e-6 * float(amplitude[~odd].max())

    torch.manual_seed(1)
    rough = IntegerSineNet(2, 1, TunerParams(width=32, band_limit=8), "uniform")
    n = 24  # two periods with 2n samples per axis: bin j is frequency j / 2 per period
    axis = torch.arange(2 * n, dtype=torch.float64) * (rough.period / n)
    grid = torch.stack([g.reshape(-1) for g in torch.meshgrid(axis, axis, indexing="ij")], 1).float()
    with torch.no_grad():
        values = rough(grid)[:, 0].double().numpy().reshape(2 * n, 2 * n)
    energy = np.abs(np.fft.fft2(values - values.mean())) ** 2
    half_integer = (np.arange(2 * n)[:, None] % 2 == 1) | (np.arange(2 * n)[None, :] % 2 == 1)
    assert energy[half_integer].sum() < 1e-9 * energy.sum()


def test_measured_spectrum_rejects_bad_requests():
    model = _two_input_net()
    with pytest.raises(SpecfitError, match="channel"):
        measured_spectrum(model, channel=1)
    with pytest.raises(SpecfitError, match="samples_per_period"):
        measured_spectrum(model, samples_per_period=1)


@pytest.mark.parametrize("dims", [1, 2])
def test_plot_is_written_as_png(tmp_path, dims):
    """The figure lands at the path (a PNG, two panels for d = 2) and no staging file is left behind."""
    torch.manual_seed(0)
    model = IntegerSineNet(dims, 1, TunerParams(inputs=5, width=8, band_limit=6))
    path = tmp_path / "spectrum.png"
    plot_sine_spectrum(model, path, trained=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["spectrum.png"]
    width, height = Image.open(path).size
    assert (width > 1.5 * height) == (dims == 2)
    assert not math.isnan(width)
