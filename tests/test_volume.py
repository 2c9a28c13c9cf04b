"""Volumes: NIfTI and NumPy loading (axis order, value mapping), writing, resizing, slices, bad files."""

from __future__ import annotations

import gzip
import logging
import struct
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from helpers import tree

from specfit.errors import SpecfitError
from specfit.signals.volume import (
    VOLUME_SUFFIXES,
    load_volume,
    resize_volume,
    volume_from_array,
    volume_slices,
    write_volume,
)

AFFINE = np.array([[2.0, 0, 0, -10], [0, 3.0, 0, -20], [0, 0, 4.0, -30], [0, 0, 0, 1]])


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nibabel.save(nibabel.Nifti1Image(data, affine), path)
    return path


def _ramp(shape: tuple[int, ...]) -> np.ndarray:
    """Every voxel distinct: value = its flat index."""
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)


def test_suffixes():
    assert VOLUME_SUFFIXES == (".nii", ".nii.gz")


def test_uint8_array_keeps_axis_order_and_divides_by_255():
    voxels = np.random.default_rng(0).integers(0, 256, (8, 9, 10), dtype=np.uint8)
    signal = volume_from_array(voxels, "vol")
    assert signal.kind == "volume"
    assert signal.values.shape == (1, 8, 9, 10)
    assert signal.values.dtype == torch.float32
    assert (signal.mode, signal.bit_depth) == ("L", 8)
    assert (signal.value_offset, signal.value_scale) == (0.0, 255.0)
    assert signal.meta == {"spacing": [1.0, 1.0, 1.0]}
    np.testing.assert_allclose(signal.values[0].numpy(), voxels / 255.0, atol=1e-7)
    assert float(signal.values[0, 7, 1, 2]) == pytest.approx(voxels[7, 1, 2] / 255.0)


def test_four_d_array_last_axis_is_channels():
    voxels = np.random.default_rng(1).random((6, 7, 8, 3))
    signal = volume_from_array(voxels, "rgbvol")
    assert signal.values.shape == (3, 6, 7, 8)
    assert signal.mode == "3ch"
    original = signal.values.double() * signal.value_scale + signal.value_offset
    for channel in range(3):
        np.testing.assert_allclose(original[channel].numpy(), voxels[..., channel], atol=1e-6)


def test_bool_array_is_zero_or_one():
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[2:5, 3:6, 1:7] = True
    signal = volume_from_array(mask, "mask")
    assert signal.bit_depth == 8
    np.testing.assert_array_equal(signal.values[0].numpy(), mask.astype(np.float32))


@pytest.mark.parametrize(
    "dtype, low", [(np.uint16, 500), (np.int16, -500), (np.float32, -500), (np.float64, 0.25)]
)
def test_other_types_are_min_max_scaled(dtype, low):
    """uint16 / int16 / float: min -> 0, max -> 1, with offset = min and scale = max - min."""
    voxels = (_ramp((8, 10, 12)) * 3 + low).astype(dtype)
    signal = volume_from_array(voxels, "ct")
    assert signal.bit_depth == 32
    assert signal.value_offset == pytest.approx(low)
    assert signal.value_scale == pytest.approx(float(voxels.max()) - low)
    assert float(signal.values.min()) == 0.0
    assert float(signal.values.max()) == 1.0
    original = signal.values[0].double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original.numpy(), voxels, rtol=1e-6, atol=1e-3)


def test_constant_volume_is_allowed_with_a_note():
    signal = volume_from_array(np.full((8, 8, 8), 7.5, dtype=np.float32), "flat")
    assert float(signal.values.abs().max()) == 0.0
    assert signal.value_offset == 7.5
    assert signal.value_scale == 1.0
    assert any("constant" in note for note in signal.notes)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((0,)), "shape"),
        (np.zeros((8, 0, 8)), "empty"),
        (np.zeros((8, 8, 8, 0)), "empty"),
        (np.zeros((8, 8)), "shape"),
        (np.zeros((2, 2, 2, 2, 2)), "shape"),
        (np.full((8, 8, 8), None, dtype=object), "unsupported"),
        (np.zeros((8, 8, 8), dtype=np.complex64), "unsupported"),
    ],
)
def test_bad_arrays(array, match):
    with pytest.raises(SpecfitError, match=match) as info:
        volume_from_array(array, "bad", Path("bad.npy"))
    assert "bad.npy" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_volume(bad):
    voxels = np.zeros((8, 8, 8), dtype=np.float32)
    voxels[3, 4, 5] = bad
    with pytest.raises(SpecfitError, match="NaN or infinite"):
        volume_from_array(voxels, "nan")


def test_npy_volume_through_load_volume(tmp_path):
    voxels = np.random.default_rng(2).integers(0, 256, (16, 12, 10), dtype=np.uint8)
    np.save(tmp_path / "scan.npy", voxels)
    signal = load_volume(tmp_path / "scan.npy")
    assert signal.name == "scan"
    assert signal.source == str(tmp_path / "scan.npy")
    np.testing.assert_allclose(signal.values[0].numpy(), voxels / 255.0, atol=1e-7)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "scan.npy").read_bytes()[:300])
    with pytest.raises(SpecfitError, match=r"cut\.npy"):
        load_volume(tmp_path / "cut.npy")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_uint8_nifti_keeps_ijk_order_spacing_and_affine(tmp_path, suffix):
    voxels = np.random.default_rng(3).integers(0, 256, (8, 9, 10), dtype=np.uint8)
    signal = load_volume(_save_nifti(tmp_path / f"brain{suffix}", voxels))
    assert signal.name == "brain"
    assert signal.values.shape == (1, 8, 9, 10)
    assert (signal.mode, signal.bit_depth, signal.value_scale) == ("L", 8, 255.0)
    np.testing.assert_allclose(signal.values[0].numpy(), voxels / 255.0, atol=1e-7)
    assert signal.meta["spacing"] == [2.0, 3.0, 4.0]
    np.testing.assert_allclose(signal.meta["affine"], AFFINE)


def test_int16_nifti_is_min_max_scaled(tmp_path):
    voxels = (_ramp((9, 8, 7)) - 100).astype(np.int16)
    signal = load_volume(_save_nifti(tmp_path / "ct.nii.gz", voxels))
    assert signal.bit_depth == 32
    assert (signal.value_offset, signal.value_scale) == (-100.0, float(voxels.max()) + 100.0)
    original = signal.values[0].double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original.numpy(), voxels, atol=1e-3)


def test_nifti_header_scaling_is_applied(tmp_path):
    """uint8 stored with scl_slope 2 and scl_inter 10 is read in scaled units (not / 255)."""
    voxels = np.random.default_rng(4).integers(0, 256, (8, 8, 8), dtype=np.uint8)
    image = nibabel.Nifti1Image(voxels, AFFINE)
    image.header.set_slope_inter(2.0, 10.0)
    path = tmp_path / "scaled.nii"
    nibabel.save(image, path)
    signal = load_volume(path)
    assert signal.bit_depth == 32
    original = signal.values[0].double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original.numpy(), voxels * 2.0 + 10.0, atol=1e-3)


def test_four_d_nifti_is_multichannel(tmp_path):
    voxels = np.random.default_rng(5).random((6, 7, 8, 2)).astype(np.float32)
    signal = load_volume(_save_nifti(tmp_path / "two.nii.gz", voxels))
    assert signal.values.shape == (2, 6, 7, 8)
    assert signal.mode == "2ch"
    assert signal.meta["spacing"] == [2.0, 3.0, 4.0]
    original = signal.values.double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original.numpy(), np.moveaxis(voxels, -1, 0), atol=1e-6)


def _nifti_bytes(tmp_path: Path, gz: bool) -> bytes:
    voxels = np.random.default_rng(6).normal(size=(16, 16, 16)).astype(np.float32)
    return _save_nifti(tmp_path / ("src.nii.gz" if gz else "src.nii"), voxels).read_bytes()


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


BAD_NIFTI = {
    "gz cut at 70 %": (".nii.gz", lambda tmp: _cut(_nifti_bytes(tmp, True), 0.7)),
    "gz cut at 10 %": (".nii.gz", lambda tmp: _cut(_nifti_bytes(tmp, True), 0.1)),
    "gz without its checksum": (".nii.gz", lambda tmp: _nifti_bytes(tmp, True)[:-8]),
    "gz header only": (".nii.gz", lambda tmp: gzip.compress(_nifti_bytes(tmp, False)[:352])),
    "gz corrupt stream": (
        ".nii.gz",
        lambda tmp: (lambda b: b[:2000] + b"\xff" * 64 + b[2064:])(_nifti_bytes(tmp, True)),
    ),
    "nii cut mid-data": (".nii", lambda tmp: _nifti_bytes(tmp, False)[:5000]),
    "nii cut in header": (".nii", lambda tmp: _nifti_bytes(tmp, False)[:200]),
    "empty gz": (".nii.gz", lambda tmp: b""),
    "empty nii": (".nii", lambda tmp: b""),
    "plain bytes named .nii.gz": (".nii.gz", lambda tmp: _nifti_bytes(tmp, False)),
    "gzip named .nii": (".nii", lambda tmp: _nifti_bytes(tmp, True)),
    "a PNG": (".nii.gz", lambda tmp: b"\x89PNG\r\n\x1a\n" + b"\x00" * 400),
}


@pytest.mark.parametrize("case", sorted(BAD_NIFTI))
def test_malformed_nifti_raises_one_line_error(tmp_path, capfd, case):
    suffix, make = BAD_NIFTI[case]
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(make(tmp_path))
    with pytest.raises(SpecfitError) as info:
        load_volume(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert capfd.readouterr().err == ""


def test_nan_nifti(tmp_path):
    voxels = np.zeros((8, 8, 8), dtype=np.float32)
    voxels[1, 2, 3] = np.nan
    with pytest.raises(SpecfitError, match="NaN"):
        load_volume(_save_nifti(tmp_path / "nan.nii.gz", voxels))


def test_repaired_header_logs_nothing(tmp_path, caplog):
    """nibabel logs header fixes to stderr; the loader keeps them quiet (the CLI prints one line)."""
    raw = bytearray(_nifti_bytes(tmp_path, False))
    raw[252:254] = struct.pack("<h", 99)  # invalid qform_code: nibabel resets it and logs
    path = tmp_path / "odd.nii"
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.DEBUG):
        signal = load_volume(path)
        assert signal.values.shape == (1, 16, 16, 16)
        assert [r.getMessage() for r in caplog.records if r.name.startswith("nibabel")] == []
        nibabel.load(path)  # the same file read directly does log: the check above can fail
        assert any("qform_code" in r.getMessage() for r in caplog.records)


def test_missing_nibabel_is_a_clear_error(tmp_path, monkeypatch):
    path = _save_nifti(tmp_path / "x.nii.gz", np.zeros((4, 4, 4), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(SpecfitError, match=r"pip install 'specfit\[nifti\]'"):
        load_volume(path)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(SpecfitError, match="no such file"):
        load_volume(tmp_path / "absent.nii.gz")
    (tmp_path / "vol.mha").write_bytes(b"x")
    with pytest.raises(SpecfitError, match="not a volume file"):
        load_volume(tmp_path / "vol.mha")


@pytest.mark.parametrize("shape", [(8, 10, 12), (9, 8, 7, 2)])
def test_write_npy_in_original_units(tmp_path, shape):
    voxels = (_ramp(shape) * 0.5 - 40).astype(np.float32)
    signal = volume_from_array(voxels, "v")
    out = tmp_path / "out" / "v.npy"
    out.parent.mkdir()
    write_volume(out, signal.values, signal)
    assert tree(out.parent) == {"v.npy"}
    written = np.load(out)
    assert written.dtype == np.float32
    assert written.shape == shape
    np.testing.assert_allclose(written, voxels, atol=1e-3)
    np.testing.assert_allclose(load_volume(out).values.numpy(), signal.values.numpy(), atol=1e-6)


def test_write_clamps_values(tmp_path):
    signal = volume_from_array(np.linspace(10, 20, 512).reshape(8, 8, 8), "v")
    values = torch.full((1, 8, 8, 8), 2.0)
    values[0, 0, 0, 0] = -1.0
    write_volume(tmp_path / "c.npy", values, signal)
    written = np.load(tmp_path / "c.npy")
    assert written[0, 0, 0] == pytest.approx(10.0)
    assert written[1, 1, 1] == pytest.approx(20.0)


def test_write_nifti_uint8_round_trip_keeps_affine(tmp_path):
    voxels = np.random.default_rng(7).integers(0, 256, (8, 9, 10), dtype=np.uint8)
    signal = load_volume(_save_nifti(tmp_path / "in.nii.gz", voxels))
    out = tmp_path / "out.nii.gz"
    write_volume(out, signal.values, signal)
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    image = nibabel.load(out)
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(image.dataobj), voxels)
    np.testing.assert_allclose(image.affine, AFFINE)
    assert [float(z) for z in image.header.get_zooms()] == [2.0, 3.0, 4.0]


def test_write_nifti_float_in_original_units(tmp_path):
    voxels = (_ramp((6, 7, 8, 2)) - 33).astype(np.float32)
    signal = volume_from_array(voxels, "f")
    out = tmp_path / "f.nii"
    write_volume(out, signal.values, signal)
    assert out.read_bytes()[:2] != b"\x1f\x8b"
    image = nibabel.load(out)
    assert image.shape == (6, 7, 8, 2)
    np.testing.assert_allclose(image.get_fdata(), voxels, atol=1e-3)
    np.testing.assert_allclose(image.affine, np.eye(4))


def test_write_rejects_other_suffixes(tmp_path):
    signal = volume_from_array(np.zeros((4, 4, 4), dtype=np.uint8), "v")
    with pytest.raises(SpecfitError, match=r"\.npy, \.nii or \.nii\.gz"):
        write_volume(tmp_path / "v.png", signal.values, signal)
    assert tree(tmp_path) == set()


def test_resize_shrinks_by_block_averaging_and_updates_geometry(tmp_path):
    """16 x 12 x 8 -> long side 8 halves each axis: each voxel is the mean of a 2 x 2 x 2 block."""
    voxels = np.random.default_rng(8).random((16, 12, 8)).astype(np.float32)
    signal = load_volume(_save_nifti(tmp_path / "big.nii.gz", voxels))
    small = resize_volume(signal, 8)
    assert small.values.shape == (1, 8, 6, 4)
    blocks = signal.values[0].numpy().reshape(8, 2, 6, 2, 4, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(small.values[0].numpy(), blocks, atol=1e-6)
    assert small.meta["spacing"] == [4.0, 6.0, 8.0]
    # the new voxel (0, 0, 0) sits at the world centre of old voxels 0..1 on every axis
    new_origin = np.asarray(small.meta["affine"]) @ [0, 0, 0, 1]
    old_centre = AFFINE @ [0.5, 0.5, 0.5, 1]
    np.testing.assert_allclose(new_origin, old_centre)
    assert any("16 x 12 x 8 to 8 x 6 x 4" in note for note in small.notes)
    assert signal.values.shape == (1, 16, 12, 8)  # input untouched


def test_resize_enlarges_trilinearly():
    voxels = np.linspace(0.0, 1.0, 4)[:, None, None] * np.ones((4, 4, 2))
    signal = volume_from_array(voxels.astype(np.float32), "ramp")
    big = resize_volume(signal, 8)
    assert big.values.shape == (1, 8, 8, 4)
    assert big.meta["spacing"] == [0.5, 0.5, 0.5]
    profile = big.values[0, :, 3, 1].numpy()
    assert np.all(np.diff(profile) >= 0)  # still a monotone ramp along axis 0
    np.testing.assert_allclose(big.values[0, :, 0, 0].numpy(), big.values[0, :, 7, 3].numpy(), atol=1e-6)


def test_resize_same_size_and_too_small():
    signal = volume_from_array(np.zeros((8, 6, 4), dtype=np.uint8), "v")
    assert resize_volume(signal, 8) is signal
    with pytest.raises(SpecfitError, match="at least"):
        resize_volume(signal, 2)


def test_central_slices_orientation():
    """axial fixes k, coronal fixes j, sagittal fixes i; each is rotated so the last index is on top."""
    values = torch.from_numpy(_ramp((1, 4, 5, 6)) / 119.0).float()
    slices = dict(volume_slices(values))
    assert list(slices) == ["axial", "coronal", "sagittal"]
    volume = values[0].numpy()
    assert slices["axial"].shape == (5, 4)
    assert slices["coronal"].shape == (6, 4)
    assert slices["sagittal"].shape == (6, 5)
    np.testing.assert_array_equal(slices["axial"], np.rot90(volume[:, :, 3]))
    np.testing.assert_array_equal(slices["coronal"], np.rot90(volume[:, 2, :]))
    np.testing.assert_array_equal(slices["sagittal"], np.rot90(volume[2, :, :]))
    # top-left of the axial slice: i = 0, j = last
    assert slices["axial"][0, 0] == pytest.approx(volume[0, 4, 3])


def test_central_slices_multichannel_are_clipped():
    values = torch.full((3, 6, 6, 6), 1.5)
    for name, image in volume_slices(values):
        assert image.shape == (6, 6, 3), name
        assert image.dtype == np.float32
        assert float(image.max()) == 1.0


@pytest.mark.shared_data
def test_mni_template(shared_data):
    """The shared MNI T1 template: uint8, 197 x 233 x 189 voxels of 1 mm, nibabel's (i, j, k) order."""
    path = shared_data / "volume" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    signal = load_volume(path)
    assert signal.values.shape == (1, 197, 233, 189)
    assert (signal.mode, signal.bit_depth, signal.value_scale) == ("L", 8, 255.0)
    assert signal.meta["spacing"] == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(np.asarray(signal.meta["affine"])[:3, 3], [-98.0, -134.0, -72.0])
    raw = np.asarray(nibabel.load(path).dataobj)
    for index in [(98, 116, 94), (10, 200, 150), (196, 232, 188)]:
        assert float(signal.values[(0, *index)]) == pytest.approx(raw[index] / 255.0)
    assert float(signal.values.max()) == 1.0
