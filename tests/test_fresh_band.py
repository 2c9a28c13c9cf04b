"""FreSh's spectrum band, its training-only target and its search (the signal band, held-out
samples, the bracket search, audio segments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_single_error, powerlaw_image, save_png8

import specfit
from specfit.errors import SpecfitError
from specfit.fresh.search import _unimodal, plan_selection
from specfit.fresh.spectra import SEGMENT, signal_band, signal_spectrum, wasserstein
from specfit.kinds.registry import task_for
from specfit.signals.sampling import fill_held_out, make_sampling, training_view


def _tones_1d(n: int, cycles: list[int], seed: int = 0) -> torch.Tensor:
    """A periodic sum of sines at whole numbers of cycles over the signal, sampled at ``n`` points."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / n
    x = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * k * t + rng.uniform(0, 2 * np.pi)) for k in cycles)
    return torch.from_numpy(x)[None]


def _tones_2d(n: int, seed: int = 0) -> torch.Tensor:
    """A periodic band-limited image (2-D cosines up to 6 cycles per axis), sampled at ``n`` x ``n``."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
    image = np.zeros((n, n))
    for _ in range(12):
        ky, kx = rng.integers(0, 7, size=2)
        image += rng.uniform(0.1, 1) * np.cos(2 * np.pi * (ky * y + kx * x) + rng.uniform(0, 2 * np.pi))
    return torch.from_numpy(image)[None]


@pytest.mark.parametrize("make, low, high", [
    (lambda n: _tones_1d(n, [3, 7, 20, 41]), 256, 1024),
    (lambda n: _tones_2d(n), 64, 128),
])
def test_band_limited_signal_at_two_rates_gives_the_same_vector(make, low, high):
    """A band-limited periodic signal sampled at two rates: same band edge and the same vector to
    1e-9 (the published vector is the same too, but covers a different fraction of each band)."""
    coarse, fine = make(low), make(high)
    band_coarse, _ = signal_band(coarse)
    band_fine, _ = signal_band(fine)
    assert band_coarse.bins == band_fine.bins and band_coarse.width == band_fine.width
    p, q = signal_spectrum(coarse, band_coarse), signal_spectrum(fine, band_fine)
    np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=0, atol=1e-9)
    assert float(wasserstein(p, q)) < 1e-9


def test_the_band_edge_follows_the_content():
    """The band ends at twice the frequency below which the power lies (the highest tone of a sum
    of tones), or at the Nyquist frequency."""
    band, notes = signal_band(_tones_1d(1024, [3, 7, 20, 41]))
    assert band.max_radius == 82 and band.bins == 64 and band.width == pytest.approx(82 / 64)
    assert not notes
    narrow, notes = signal_band(_tones_1d(1024, [3, 7, 11]))
    assert narrow.max_radius == 22 and narrow.bins == 22 and notes and "22" in notes[0]
    capped, _ = signal_band(_tones_1d(128, [3, 7, 41]))
    assert capped.max_radius == 64
    published, _ = signal_band(_tones_1d(1024, [3, 7, 20, 41]), "published")
    assert published.bins == 64 and published.width == 1.0


def test_long_audio_is_segmented_and_its_vector_does_not_depend_on_the_clip_length():
    """1 s and 3 s of the same steady tones at 16 kHz: segments of 4096 samples give vectors within
    W < 0.05 of each other, where the published vectors (lowest 64 DFT frequencies, i.e. 1-64 Hz
    against 0.3-21 Hz) differ by more than 5."""
    rate = 16000

    def clip(seconds: float) -> torch.Tensor:
        t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
        return (torch.sin(2 * math.pi * 440 * t) + 0.5 * torch.sin(2 * math.pi * 1250 * t + 1.0)
                + 0.25 * torch.sin(2 * math.pi * 3100 * t + 2.0))[None]

    short, long = clip(1.0), clip(3.0)
    band_s, _ = signal_band(short)
    band_l, _ = signal_band(long)
    assert band_s.segment == band_l.segment == SEGMENT
    assert band_s.bins == band_l.bins and band_s.width == pytest.approx(band_l.width)
    assert band_l.edge == pytest.approx(3 * band_s.edge)  # the edge in cycles over the clip
    w_signal = float(wasserstein(signal_spectrum(short, band_s), signal_spectrum(long, band_l)))
    pub_s, _ = signal_band(short, "published")
    pub_l, _ = signal_band(long, "published")
    w_published = float(wasserstein(signal_spectrum(short, pub_s), signal_spectrum(long, pub_l)))
    assert w_signal < 0.05
    assert w_published > 5.0


def test_selection_on_long_audio_evaluates_a_few_segments_only():
    """A 3 s clip at 16 kHz (48 000 samples) is evaluated on 4 segments of 4096 samples."""
    values = torch.randn(1, 48000).cumsum(dim=1)
    plan = plan_selection(values, "siren", {"width": 16, "hidden_layers": 1}, grid=[100.0, 1000.0])
    assert plan.samples is not None and len(plan.samples) == 4 * SEGMENT
    assert plan.output_shape == (1, 4 * SEGMENT)
    assert len(set((plan.samples // SEGMENT).tolist())) == 4  # whole, distinct segments


def test_the_audio_choice_moves_with_the_content_not_the_length():
    """Low tones get a smaller omega_0 than high tones; twice the clip length gives twice the
    omega_0 on the clip's [-1, 1] axis (the same per second), within one grid step."""
    rate = 8000

    def clip(seconds: float, freqs: tuple[float, ...]) -> np.ndarray:
        t = np.arange(int(rate * seconds)) / rate
        return sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs)).astype(np.float32) / len(freqs)

    grid = [float(v) for v in np.geomspace(100, 100000, 31).round()]
    steps = np.log(grid[1] / grid[0])

    def choose(seconds: float, freqs: tuple[float, ...]) -> float:
        signal = specfit.load_signal(clip(seconds, freqs), kind="audio", sample_rate=rate)
        return specfit.select(signal, "siren", grid=grid, inits=4, split="all", device="cpu",
                              width=32, hidden_layers=2).chosen

    low, high = choose(2.0, (150.0, 300.0)), choose(2.0, (1500.0, 3000.0))
    assert high > 3 * low
    longer = choose(4.0, (1500.0, 3000.0))
    assert abs(np.log(longer / (2 * high))) <= 1.01 * steps


def test_fill_held_out_keeps_known_samples_and_fills_holes_from_neighbours():
    values = torch.arange(25, dtype=torch.float64).reshape(1, 5, 5)
    known = torch.ones(5, 5, dtype=torch.bool)
    known[2, 2] = False
    known[0, 0] = False
    filled = fill_held_out(values, known)
    assert torch.equal(filled[0][known], values[0][known])
    assert float(filled[0, 2, 2]) == pytest.approx(12.0)  # mean of its 8 neighbours
    assert float(filled[0, 0, 0]) == pytest.approx((1 + 5 + 6) / 3)
    wide = torch.zeros(1, 9, 9, dtype=torch.float64)
    wide[0, 0, 0] = 1.0
    lonely = torch.zeros(9, 9, dtype=torch.bool)
    lonely[0, 0] = True
    assert torch.allclose(fill_held_out(wide, lonely), torch.ones(1, 9, 9, dtype=torch.float64))


def test_the_target_ignores_held_out_samples():
    """Changing the held-out pixels changes neither the target nor FreSh's target spectrum."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    sampling = make_sampling((48, 48), "holdout", 0.1, seed=0)
    spoiled = image.copy().reshape(-1, 3)
    spoiled[sampling.test.numpy()] = rng.integers(0, 256, (len(sampling.test), 3), dtype=np.uint8)
    spoiled = spoiled.reshape(48, 48, 3)
    targets = []
    for pixels in (image, spoiled):
        task = task_for(specfit.load_signal(pixels))
        values, _ = task.spectrum_target("signed", torch.device("cpu"), "holdout", 0.1, 0)
        targets.append(values)
    assert torch.equal(targets[0], targets[1])
    whole, _ = task_for(specfit.load_signal(image)).spectrum_target("signed", torch.device("cpu"), "all")
    assert torch.equal(whole, torch.from_numpy(image).permute(2, 0, 1).float() / 255 * 2 - 1)
    a = specfit.select(image, "siren", grid=[10.0, 30.0, 60.0], inits=2, width=16, hidden_layers=1)
    b = specfit.select(spoiled, "siren", grid=[10.0, 30.0, 60.0], inits=2, width=16, hidden_layers=1)
    assert a.target_spectrum == b.target_spectrum
    c = specfit.select(spoiled, "siren", grid=[10.0, 30.0, 60.0], inits=2, split="all", width=16,
                       hidden_layers=1)
    assert c.target_spectrum != b.target_spectrum  # with nothing held out, every pixel counts


def test_lattice_target_is_the_training_lattice():
    values = torch.arange(2 * 6 * 8, dtype=torch.float32).reshape(2, 6, 8)
    sampling = make_sampling((6, 8), "lattice")
    target, coords = training_view(values, sampling)
    assert target.shape == (2, 3, 4)
    assert torch.equal(target, values[:, ::2, ::2])
    assert torch.equal(coords, sampling.coords[sampling.train])


def test_unimodal_detects_a_second_dip():
    assert _unimodal([5.0, 3.0, 1.0, 2.0, 4.0])
    assert _unimodal([1.0, 2.0, 3.0])
    assert not _unimodal([5.0, 1.0, 3.0, 0.5, 4.0])


def test_bracket_search_matches_the_full_search_with_fewer_initialisations():
    """On a synthetic image the bracket picks the full search's value, or one whose mean W is
    within one standard error of it, with fewer initialisations."""
    image = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    image = torch.nn.functional.avg_pool2d(torch.from_numpy(image)[None, None], 5, 1, 2)[0, 0].numpy()
    kwargs = {"grid": [float(v) for v in range(10, 210, 10)], "inits": 6, "split": "all", "width": 32,
              "hidden_layers": 2}
    full = specfit.select(image, "siren", search="full", race=False, **kwargs)
    fast = specfit.select(image, "siren", **kwargs)
    rows = {row.value: row for row in full.table}
    best = rows[full.chosen]
    assert rows[fast.chosen].w_mean <= best.w_mean + best.w_stderr
    assert sum(r.inits for r in fast.table) < 0.5 * sum(r.inits for r in full.table)
    assert any(r.inits == 0 for r in fast.table)


def test_published_spectrum_has_only_the_fit_objective():
    with pytest.raises(SpecfitError, match="objective"):
        signal_band(_tones_1d(256, [3, 5]), "published", "generalize")
    with pytest.raises(SpecfitError, match="generalize"):
        specfit.fit_settings(None, specfit.FitSettings(spectrum="published", objective="generalize"))


def test_generalize_band_is_narrower_than_fit():
    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.random((1, 64, 64))).cumsum(1).cumsum(2)
    fit, _ = signal_band(image, objective="fit")
    general, _ = signal_band(image, objective="generalize")
    assert general.max_radius < fit.max_radius


def test_cli_select_rejects_unknown_spectrum(cli, tmp_path):
    path = save_png8(tmp_path / "img.png", powerlaw_image(32, 2.0, seed=0))
    result = cli("select", path, "--model", "siren", "--spectrum", "nope")
    assert_single_error(result.code, result.out, result.err)


def test_default_spectrum_depends_on_the_signal_type():
    """The signal band on audio and images, the published band elsewhere, unless set (generalize
    needs the signal band)."""
    for kind in ("audio", "image"):
        assert specfit.FitSettings().resolved_spectrum(kind) == "signal"
    for kind in ("video", "volume", "shape"):
        assert specfit.FitSettings().resolved_spectrum(kind) == "published"
        assert specfit.FitSettings(objective="generalize").resolved_spectrum(kind) == "signal"
    assert specfit.FitSettings(spectrum="published").resolved_spectrum("image") == "published"
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    assert specfit.select(image, "siren", grid=[10.0, 30.0], inits=2, width=8, hidden_layers=1).spectrum == (
        "signal")
