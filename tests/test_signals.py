"""Signals: image loading (formats, bit depths, channel layouts) and sampling / splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from helpers import read_png, save_png8, save_png16, smooth_rgb, to_uint8
from PIL import Image

from specfit.errors import SpecfitError
from specfit.kinds.load import load_signal
from specfit.signals import make_sampling
from specfit.signals.image import resize_image

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _pixels(height: int, width: int, channels: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, top + 1, shape, dtype=dtype)


def _as_chw(pixels: np.ndarray) -> np.ndarray:
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels).transpose(2, 0, 1)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_8bit_png_every_channel_layout(tmp_path, channels):
    """8-bit PNG grey, grey+alpha, RGB, RGBA load as 1-4 channels of pixels / 255, with the mode."""
    pixels = _pixels(20, 12, channels, seed=channels)
    signal = load_signal(save_png8(tmp_path / "img.png", pixels))
    assert signal.mode == MODES[channels]
    assert signal.channels == channels
    assert signal.spatial_shape == (20, 12)
    assert signal.bit_depth == 8
    assert signal.values.dtype == torch.float32
    np.testing.assert_allclose(signal.values.numpy(), _as_chw(pixels) / 255.0, atol=1e-7)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_every_channel_layout(tmp_path, channels):
    """16-bit PNG (pypng) loads at full precision: values are pixels / 65535 and bit_depth is 16."""
    pixels = _pixels(12, 20, channels, dtype=np.uint16, seed=channels)
    signal = load_signal(save_png16(tmp_path / "img16.png", pixels))
    assert signal.mode == MODES[channels]
    assert signal.bit_depth == 16
    assert signal.spatial_shape == (12, 20)
    np.testing.assert_allclose(signal.values.numpy(), _as_chw(pixels) / 65535.0, atol=1e-7)


def test_rgba_is_a_four_channel_signal(tmp_path):
    """RGBA keeps its alpha as a 4th channel (mode 'RGBA'), not dropped or premultiplied."""
    pixels = _pixels(16, 16, 4)
    pixels[:, :, 3] = 0  # fully transparent: colour must survive unpremultiplied
    signal = load_signal(save_png8(tmp_path / "rgba.png", pixels))
    assert signal.mode == "RGBA"
    assert signal.values.shape == (4, 16, 16)
    colour = pixels[:, :, :3].transpose(2, 0, 1) / 255
    np.testing.assert_allclose(signal.values[:3].numpy(), colour, atol=1e-7)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".npy"])
def test_portrait_image_keeps_its_orientation(tmp_path, suffix):
    """A taller-than-wide image stays (C, H, W) with H > W, pixel (i, j) in place, in every format."""
    pixels = to_uint8(smooth_rgb(40, 24))
    path = tmp_path / f"portrait{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, pixels)
    elif suffix == ".npy":
        np.save(path, pixels)
    elif suffix == ".jpg":
        Image.fromarray(pixels).save(path, quality=95)
    else:
        save_png8(path, pixels)
    signal = load_signal(path)
    assert signal.spatial_shape == (40, 24)
    assert signal.mode == "RGB"
    tolerance = 0.05 if suffix == ".jpg" else 1e-7  # JPEG is lossy
    assert np.abs(signal.values.numpy() - pixels.transpose(2, 0, 1) / 255.0).mean() < tolerance


def test_jpeg_grey_and_rgb(tmp_path):
    """JPEG loads as 8-bit 'L' or 'RGB', values close to the encoded ones and within [0, 1]."""
    rgb = to_uint8(smooth_rgb(32, 32))
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.jpeg", quality=95)
    colour, grey = load_signal(tmp_path / "c.jpg"), load_signal(tmp_path / "g.jpeg")
    assert (colour.mode, colour.channels, grey.mode, grey.channels) == ("RGB", 3, "L", 1)
    for signal, reference in ((colour, rgb.transpose(2, 0, 1)), (grey, rgb[None, :, :, 0])):
        assert signal.bit_depth == 8
        assert float(signal.values.min()) >= 0.0 and float(signal.values.max()) <= 1.0
        assert np.abs(signal.values.numpy() - reference / 255.0).mean() < 0.02


@pytest.mark.parametrize(
    "dtype, depth, top", [(np.uint8, 8, 255.0), (np.uint16, 16, 65535.0)]
)
def test_tiff_integer_types(tmp_path, dtype, depth, top):
    """TIFF (tifffile) 8- and 16-bit load as pixels / max with the matching bit depth."""
    pixels = _pixels(16, 24, 3, dtype=dtype)
    tifffile.imwrite(tmp_path / "img.tiff", pixels)
    signal = load_signal(tmp_path / "img.tiff")
    assert signal.bit_depth == depth
    assert signal.mode == "RGB"
    np.testing.assert_allclose(signal.values.numpy(), pixels.transpose(2, 0, 1) / top, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_npy_integer_arrays(tmp_path, dtype):
    """Integer .npy arrays are scaled by their type's maximum like image files."""
    pixels = _pixels(16, 16, 2, dtype=dtype)
    np.save(tmp_path / "a.npy", pixels)
    signal = load_signal(tmp_path / "a.npy")
    assert signal.mode == "LA"
    np.testing.assert_allclose(
        signal.values.numpy(), pixels.transpose(2, 0, 1) / np.iinfo(dtype).max, atol=1e-7
    )


def test_float_npy_inside_unit_range_is_kept(tmp_path):
    """A float .npy already in [0, 1] is used as is (offset 0, scale 1)."""
    values = np.random.default_rng(0).random((16, 20)).astype(np.float32)
    np.save(tmp_path / "f.npy", values)
    signal = load_signal(tmp_path / "f.npy")
    assert (signal.value_offset, signal.value_scale) == (0.0, 1.0)
    np.testing.assert_array_equal(signal.values[0].numpy(), values)


def test_float_npy_outside_unit_range_is_rescaled_reversibly(tmp_path):
    """A float .npy outside [0, 1] is mapped to [0, 1]; values * scale + offset gives it back."""
    values = np.random.default_rng(1).uniform(-40.0, 160.0, (16, 20, 3))
    np.save(tmp_path / "f.npy", values)
    signal = load_signal(tmp_path / "f.npy")
    assert float(signal.values.min()) == 0.0 and float(signal.values.max()) == pytest.approx(1.0)
    restored = signal.values.double().numpy().transpose(1, 2, 0) * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(restored, values, atol=1e-4)


@pytest.mark.parametrize("suffix", [".npy", ".NPY"])
def test_fit_writes_reconstruction_npy_in_original_units(cli, tmp_path, suffix):
    """After a short fit of a float .npy outside [0, 1], reconstruction.npy is in the original units."""
    yy, xx = np.mgrid[0:24, 0:24] / 24.0
    values = -50.0 + 200.0 * (0.5 + 0.3 * np.sin(2 * np.pi * xx) * np.cos(np.pi * yy))
    with open(tmp_path / f"field{suffix}", "wb") as handle:  # np.save would append ".npy"
        np.save(handle, values)
    out = tmp_path / "run"
    result = cli(
        "fit", tmp_path / f"field{suffix}", "--set", "omega_0=20", "--set", "width=32",
        "--set", "hidden_layers=1", "--compile", "off", "--steps", "60", "--lr", "1e-3",
        "--split", "all", "--eval-every", "20", "--device", "cpu", "--out", out, "--json",
    )
    assert result.code == 0, result.err
    assert (out / "reconstruction.npy").is_file()
    recon = np.load(out / "reconstruction.npy")
    assert recon.shape == values.shape
    # Same units: its mean and range match the original's, not the [0, 1] version's.
    assert abs(recon.mean() - values.mean()) < 0.1 * np.ptp(values)
    assert np.abs(recon - values).mean() < 0.15 * np.ptp(values)
    # And it is the PNG reconstruction mapped back exactly (up to 8-bit rounding).
    config = json.loads((out / "config.json").read_text())["signal"]
    png_units = read_png(out / "reconstruction.png")[:, :, 0] / 255.0 * config["value_scale"]
    np.testing.assert_allclose(recon, png_units + config["value_offset"], atol=0.6 / 255 * np.ptp(values))


def test_default_signal_is_cameraman():
    """With no path the bundled 512 x 512 grey cameraman is used."""
    signal = load_signal(None)
    assert signal.name == "cameraman"
    assert signal.mode == "L"
    assert signal.spatial_shape == (512, 512)


def test_resize_keeps_aspect_and_never_upscales(images):
    """resize_image scales the short side to N (portrait stays portrait) and never upscales."""
    signal = load_signal(images["portrait_rgb"])
    small = resize_image(signal, 16)
    assert small.spatial_shape == (20, 16)
    assert float(small.values.min()) >= 0.0 and float(small.values.max()) <= 1.0
    assert any("resized" in n for n in small.notes)
    assert resize_image(signal, 64).spatial_shape == (40, 32)


def test_unsupported_suffix_is_an_error(tmp_path):
    """A file with an unsupported suffix is refused with SpecfitError."""
    path = tmp_path / "img.bmp"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    with pytest.raises(SpecfitError, match="unsupported"):
        load_signal(path)


# ----------------------------------------------------------------------------------------------
# Sampling and splits


def test_signed_coordinates_are_row_major_with_endpoints():
    """Coordinates are (N, 2) row-major; pixel i of N maps to -1 + 2 i / (N - 1)."""
    coords = make_sampling((5, 7), "all").coords
    assert coords.shape == (35, 2)
    i, j = 3, 4
    assert coords[i * 7 + j].tolist() == pytest.approx([-1 + 2 * i / 4, -1 + 2 * j / 6])
    assert coords[0].tolist() == [-1.0, -1.0]
    assert coords[-1].tolist() == [1.0, 1.0]


def test_holdout_split_default_ten_percent_disjoint_and_covering():
    """--split holdout holds out 10 % of samples by default; train and test are disjoint and cover all."""
    sampling = make_sampling((30, 40))
    train, test = set(sampling.train.tolist()), set(sampling.test.tolist())
    assert len(test) == 120
    assert len(train) + len(test) == 1200
    assert train.isdisjoint(test)
    assert train | test == set(range(1200))
    assert sampling.describe()["test_samples"] == 120


def test_holdout_split_is_seeded():
    """The held-out set depends on the seed only: same seed same set, other seed other set."""
    a = make_sampling((30, 40), "holdout", 0.1, seed=3)
    b = make_sampling((30, 40), "holdout", 0.1, seed=3)
    c = make_sampling((30, 40), "holdout", 0.1, seed=4)
    assert torch.equal(a.test, b.test) and torch.equal(a.train, b.train)
    assert not torch.equal(a.test, c.test)
    assert len(make_sampling((30, 40), "holdout", 0.25).test) == 300


def test_all_split_holds_nothing_out():
    """--split all trains on every sample and has no test set."""
    sampling = make_sampling((6, 9), "all")
    assert sampling.test is None
    assert sorted(sampling.train.tolist()) == list(range(54))


def test_lattice_split_even_even_trains_odd_odd_tests_with_unit_coordinates():
    """Lattice: train on the even-even pixels, test on odd-odd, coordinates i / N in [0, 1)."""
    height, width = 8, 12
    sampling = make_sampling((height, width), "lattice")
    assert sampling.convention == "unit"
    train = {(int(k) // width, int(k) % width) for k in sampling.train}
    test = {(int(k) // width, int(k) % width) for k in sampling.test}
    assert train == {(i, j) for i in range(0, height, 2) for j in range(0, width, 2)}
    assert test == {(i, j) for i in range(1, height, 2) for j in range(1, width, 2)}
    coords = sampling.coords
    for i, j in [(0, 0), (3, 5), (7, 11)]:
        assert coords[i * width + j].tolist() == pytest.approx([i / height, j / width])
    train_rows = sorted({round(v, 6) for v in coords[sampling.train][:, 0].tolist()})
    assert train_rows == pytest.approx(np.linspace(0, 1, height // 2 + 1)[:-1].tolist(), abs=1e-6)
    test_cols = sorted({round(v, 6) for v in coords[sampling.test][:, 1].tolist()})
    assert test_cols == pytest.approx([(2 * k + 1) / width for k in range(width // 2)], abs=1e-6)


@pytest.mark.parametrize("split, holdout", [("nonsense", 0.1), ("holdout", 0.0), ("holdout", 1.0)])
def test_bad_split_options_are_errors(split, holdout):
    """Unknown splits and held-out fractions outside (0, 1) raise SpecfitError."""
    with pytest.raises(SpecfitError):
        make_sampling((8, 8), split, holdout)
