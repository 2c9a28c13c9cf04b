"""Spectrum vector and Wasserstein distance (methods.md 1.1-1.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numpy_spectrum, powerlaw_image, save_png8, save_png16
from scipy.stats import wasserstein_distance

from specfit.errors import SpecfitError
from specfit.fresh.spectra import resolve_bins, spectrum_vector, wasserstein


def test_cli_spectrum_json_has_requested_bins_summing_to_one(cli, tmp_path):
    """`spectrum IMG --bins 64 --spectrum published --json` prints 64 numbers summing to 1, equal to
    an independent NumPy implementation of the published definition."""
    pixels = powerlaw_image(128, 2.0, seed=3)
    path = save_png8(tmp_path / "img.png", pixels)
    result = cli("spectrum", path, "--bins", 64, "--spectrum", "published", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert set(data) == {"bins", "band", "spectrum"}
    assert data["bins"] == 64
    assert len(data["spectrum"]) == 64
    assert all(v >= 0 for v in data["spectrum"])
    assert sum(data["spectrum"]) == pytest.approx(1.0, abs=1e-9)
    expected = numpy_spectrum(pixels[None].astype(np.float64) / 255.0, 64)
    np.testing.assert_allclose(data["spectrum"], expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("channels, side, bins", [(1, 32, 16), (3, 48, 24), (3, 48, 5), (2, 33, 16)])
def test_spectrum_vector_matches_independent_numpy(channels, side, bins):
    """On a square signal, spectrum_vector equals a loop-based NumPy fft2 implementation to 1e-10."""
    rng = np.random.default_rng(side + channels)
    values = rng.random((channels, side, side))
    ours = spectrum_vector(torch.from_numpy(values), bins).numpy()
    np.testing.assert_allclose(ours, numpy_spectrum(values, bins), rtol=0, atol=1e-10)


@pytest.mark.parametrize("height, width", [(40, 24), (24, 40)])
def test_non_square_signal_is_resampled_to_min_side(height, width):
    """A non-square signal is resampled (bilinear, antialiased) to an s x s square, s = min side."""
    rng = np.random.default_rng(1)
    values = torch.from_numpy(rng.random((3, height, width)))
    side = min(height, width)
    square = F.interpolate(
        values[None], size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )[0]
    expected = numpy_spectrum(square.numpy(), side // 2)
    ours = spectrum_vector(values).numpy()
    assert ours.shape == (side // 2,)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    # The resampling matters: the spectrum of a crop differs from the resampled one.
    assert not np.allclose(ours, numpy_spectrum(values[:, :side, :side].numpy(), side // 2), atol=1e-4)


def test_signal_larger_than_1024_is_resampled_to_1024():
    """A square signal above 1024 px a side is resampled to 1024 x 1024 before the DFT."""
    rng = np.random.default_rng(2)
    values = torch.from_numpy(rng.random((1, 1040, 1040)))
    square = F.interpolate(
        values[None], size=(1024, 1024), mode="bilinear", antialias=True, align_corners=False
    )[0]
    np.testing.assert_allclose(
        spectrum_vector(values, 64).numpy(), numpy_spectrum(square.numpy(), 64), rtol=0, atol=1e-10
    )


def test_16bit_png_spectrum_equals_float_values(cli, tmp_path):
    """A 16-bit PNG is read at full precision: its spectrum equals that of pixels / 65535."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 65536, (32, 32), dtype=np.uint16)
    path = save_png16(tmp_path / "img16.png", pixels)
    result = cli("spectrum", path, "--json")
    assert result.code == 0, result.err
    expected = numpy_spectrum(pixels[None].astype(np.float64) / 65535.0, 16)
    np.testing.assert_allclose(result.json()["spectrum"], expected, rtol=0, atol=1e-7)
    # An 8-bit quantisation of the same image would be measurably different.
    coarse = numpy_spectrum(np.round(pixels[None] / 257.0) / 255.0, 16)
    assert np.abs(coarse - expected).max() > 1e-6


@pytest.mark.parametrize("a, b", [(3, 0), (0, 5), (2, 7), (6, 6), (1, 1)])
def test_pure_cosine_puts_its_mass_in_bin_a_plus_b(a, b):
    """cos(2 pi (a i / N + b j / N)) has (essentially) all its spectrum in bin a + b."""
    n = 32
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    values = np.cos(2 * np.pi * (a * i / n + b * j / n))[None]
    p = spectrum_vector(torch.from_numpy(values), 16).numpy()
    assert p[a + b - 1] > 1 - 1e-9
    assert p.argmax() == a + b - 1


def test_spectrum_ignores_value_scale_and_offset():
    """Spectra drop the mean and normalise, so affine changes of the values do not change them."""
    rng = np.random.default_rng(5)
    values = torch.from_numpy(rng.random((3, 32, 32)))
    np.testing.assert_allclose(
        spectrum_vector(values).numpy(), spectrum_vector(7.5 * values - 3.0).numpy(), atol=1e-12
    )


def test_one_dimensional_spectrum_is_dft_magnitude_at_1_to_n():
    """For a 1-D signal the spectrum is |DFT| at frequencies 1..n, summed over channels."""
    rng = np.random.default_rng(6)
    values = rng.random((2, 100))
    magnitude = np.abs(np.fft.fft(values, axis=-1)).sum(axis=0)[1:11]
    np.testing.assert_allclose(
        spectrum_vector(torch.from_numpy(values), 10).numpy(), magnitude / magnitude.sum(), atol=1e-12
    )


def test_three_dimensional_spectrum_bins_by_i_plus_j_plus_k():
    """For a volume, bin m sums |DFT| over i + j + k = m with non-negative indices."""
    rng = np.random.default_rng(8)
    values = rng.random((1, 12, 12, 12))
    magnitude = np.abs(np.fft.fftn(values[0]))
    sums = np.zeros(6)
    for i in range(7):
        for j in range(7):
            for k in range(7):
                if 1 <= i + j + k <= 6:
                    sums[i + j + k - 1] += magnitude[i, j, k]
    np.testing.assert_allclose(
        spectrum_vector(torch.from_numpy(values), 6).numpy(), sums / sums.sum(), atol=1e-12
    )


def test_wasserstein_equals_scipy():
    """W(p, q) = sum |P_k - Q_k| equals scipy.stats.wasserstein_distance on the bin indices."""
    rng = np.random.default_rng(9)
    for n in (2, 17, 64):
        p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n) * 0.3)
        expected = wasserstein_distance(np.arange(n), np.arange(n), p, q)
        ours = float(wasserstein(torch.from_numpy(p), torch.from_numpy(q)))
        assert ours == pytest.approx(expected, rel=1e-10)


def test_wasserstein_broadcasts_and_is_zero_on_identical_spectra():
    """wasserstein broadcasts over leading axes; identical spectra are at distance 0."""
    rng = np.random.default_rng(10)
    p = torch.from_numpy(rng.dirichlet(np.ones(16)))
    qs = torch.from_numpy(rng.dirichlet(np.ones(16), size=5))
    distances = wasserstein(p, qs)
    assert distances.shape == (5,)
    for k in range(5):
        expected = wasserstein_distance(np.arange(16), np.arange(16), p.numpy(), qs[k].numpy())
        assert float(distances[k]) == pytest.approx(expected, rel=1e-10)
    assert float(wasserstein(p, p)) == 0.0
    # A unit point mass moved by d bins costs exactly d.
    point = torch.zeros(16, dtype=torch.float64)
    moved = point.clone()
    point[2], moved[9] = 1.0, 1.0
    assert float(wasserstein(point, moved)) == pytest.approx(7.0)


def test_default_bins_shrink_for_small_signals():
    """Default bins are 64, shrunk to floor(s / 2) (with a note) when the signal is small."""
    assert resolve_bins((256, 300), None) == (64, None)
    assert resolve_bins((128, 128), None) == (64, None)
    bins, note = resolve_bins((50, 33), None)
    assert bins == 16
    assert note is not None and "16" in note


def test_cli_default_bins_shrink_and_note_goes_to_stderr(cli, images):
    """`spectrum` on a 32 px image uses 16 bins; the note is on stderr, never in --json output."""
    result = cli("spectrum", images["noise32"], "--json")
    assert result.code == 0
    assert result.json()["bins"] == 16
    assert len(result.json()["spectrum"]) == 16
    text = cli("spectrum", images["noise32"])
    assert text.code == 0
    assert "16" in text.err and "note" in text.err
    assert "16 bins" in text.out


def test_explicit_bins_above_half_side_is_an_error():
    """An explicit bins > s / 2 is an error; bins == s / 2 is allowed."""
    values = torch.rand(1, 32, 40)
    assert spectrum_vector(values, 16).shape == (16,)
    with pytest.raises(SpecfitError):
        spectrum_vector(values, 17)
    with pytest.raises(SpecfitError):
        resolve_bins((32, 40), 17)
    with pytest.raises(SpecfitError):
        resolve_bins((32, 40), 0)


@pytest.mark.parametrize("value", [0.0, 0.2, 1.0])
def test_constant_signal_has_no_spectrum(value):
    """A constant signal raises SpecfitError instead of returning NaN."""
    with pytest.raises(SpecfitError, match="constant"):
        spectrum_vector(torch.full((3, 32, 32), value))


def test_nan_signal_is_an_error():
    """A signal with NaN raises SpecfitError rather than returning a NaN spectrum."""
    values = torch.rand(1, 32, 32)
    values[0, 3, 4] = float("nan")
    with pytest.raises(SpecfitError):
        spectrum_vector(values)
