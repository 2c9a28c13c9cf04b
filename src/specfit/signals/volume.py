"""Volumes: NIfTI files (``.nii``, ``.nii.gz``; needs ``nibabel``) and 3-D / 4-D NumPy arrays.

A volume is the signal ``values`` of shape ``(C, D, H, W)``. For NIfTI, ``(D, H, W)`` is
nibabel's array axis order ``(i, j, k)``, unchanged (no reorientation): for the usual RAS+ files
``i`` runs left to right, ``j`` posterior to anterior and ``k`` inferior to superior. A 4-D file or
array ``(D, H, W, C)`` has its last axis as channels.

Value mapping: ``bool`` is 0 or 1 and ``uint8`` is divided by 255 (``bit_depth`` 8, offset 0,
scale 1). Every other type is min-max scaled to [0, 1] over all channels, with
``value_offset = min`` and ``value_scale = max - min`` (``bit_depth`` 32), so original =
``values * value_scale + value_offset``. A constant volume maps to 0 (a note says so).

Size: the voxel count ``D x H x W`` (channels not counted) in the NIfTI or ``.npy`` header is
checked against ``max_samples`` before any voxel is read.

``meta`` holds ``spacing`` (voxel size per axis, from the NIfTI zooms; 1.0 for arrays) and, for
NIfTI, ``affine`` (the 4 x 4 voxel-to-world matrix as nested lists).
"""

from __future__ import annotations

import gzip
import logging
import struct
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.signals.base import Signal
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, check_size, load_npy
from specfit.util.files import staged_file

VOLUME_SUFFIXES = (".nii", ".nii.gz")
MIN_RESIZE = 4


def _volume_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".npy"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(VOLUME_SUFFIXES)


def _mode(channels: int) -> str:
    return "L" if channels == 1 else f"{channels}ch"


def _to_unit_range(array: np.ndarray, where: Path) -> tuple[np.ndarray, int, float, float, list[str]]:
    """Map voxels to float32 in [0, 1]; returns (values, bit_depth, offset, scale, notes)."""
    if array.dtype == np.bool_:
        values, bit_depth, low, scale = array.astype(np.float32), 8, 0.0, 1.0
    elif array.dtype == np.uint8:
        values, bit_depth, low, scale = array.astype(np.float32) / 255.0, 8, 0.0, 255.0
    elif np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise SpecfitError(f"{where} contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        scale = high - low if high > low else 1.0
        values, bit_depth = ((array.astype(np.float64) - low) / scale).astype(np.float32), 32
    else:
        raise SpecfitError(f"{where}: unsupported volume data type {array.dtype}")
    notes = []
    if values.size and float(values.min()) == float(values.max()):
        notes.append("constant volume: every voxel has the same value")
    return values, bit_depth, low, scale, notes


def volume_from_array(array: np.ndarray, name: str, path: Path | None = None) -> Signal:
    """Build a volume signal from ``(D, H, W)`` or ``(D, H, W, C)`` voxels (axes kept as given).

    Returns values ``(C, D, H, W)``; ``meta["spacing"]`` is ``[1.0, 1.0, 1.0]``.
    """
    where = path if path is not None else Path(name)
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise SpecfitError(
            f"{where}: expected a volume of shape (D, H, W) or (D, H, W, C), got {tuple(array.shape)}"
        )
    if array.size == 0:
        raise SpecfitError(f"{where} holds an empty volume of shape {tuple(array.shape)}")
    values, bit_depth, offset, scale, notes = _to_unit_range(array, where)
    tensor = torch.from_numpy(np.ascontiguousarray(np.moveaxis(values, -1, 0)))
    return Signal(
        values=tensor,
        name=name,
        kind="volume",
        mode=_mode(tensor.shape[0]),
        bit_depth=bit_depth,
        value_offset=offset,
        value_scale=scale,
        source=str(path) if path is not None else None,
        notes=notes,
        meta={"spacing": [1.0, 1.0, 1.0]},
    )


def _check_gzip(path: Path) -> None:
    """Decompress the whole file once: nibabel stops after the voxels, so it never sees a bad
    checksum or a stream cut after the data; the gzip reader raises on both."""
    with gzip.open(path, "rb") as stream:
        while stream.read(1 << 22):
            pass


def _read_nifti(path: Path, limit: int) -> tuple[np.ndarray, list[float], list[list[float]] | None]:
    """``(voxels, spacing, affine)``; voxels in the stored type unless the header scales them.

    The header's first three axes are checked against ``limit`` before the file is decompressed
    or any voxel read.
    """
    try:
        import nibabel
        from nibabel.filebasedimages import ImageFileError
        from nibabel.spatialimages import HeaderDataError
    except ImportError as exc:
        raise SpecfitError("reading NIfTI needs nibabel: pip install 'specfit[nifti]'") from exc
    # nibabel logs header repairs of damaged files straight to stderr; keep the CLI's output clean.
    header_log = logging.getLogger("nibabel.global")
    was_disabled, header_log.disabled = header_log.disabled, True
    try:
        image = nibabel.load(path)
        check_size(path, "voxels", image.shape[:3], limit)
        if path.name.lower().endswith(".gz"):
            _check_gzip(path)
        slope, inter = image.header.get_slope_inter()
        if slope in (None, 1.0) and inter in (None, 0.0):
            data = np.asarray(image.dataobj)
        else:
            data = image.get_fdata()
        zooms = [float(z) for z in image.header.get_zooms()[:3]]
        affine = None if image.affine is None else np.asarray(image.affine, dtype=float).tolist()
    except SpecfitError:
        raise
    except FileNotFoundError as exc:
        raise SpecfitError(f"no such file: {path}") from exc
    except (ImageFileError, HeaderDataError) as exc:
        raise SpecfitError(f"{path} is not a readable NIfTI file ({exc})") from exc
    except (OSError, EOFError, ValueError, zlib.error, struct.error, ArithmeticError, MemoryError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecfitError(f"{path} is truncated or corrupt ({message})") from exc
    finally:
        header_log.disabled = was_disabled
    return data, zooms + [1.0] * (3 - len(zooms)), affine


def load_volume(path: Path, *, max_samples: int = DEFAULT_MAX_SAMPLES) -> Signal:
    """Read a NIfTI file (``.nii``/``.nii.gz``) or a volume ``.npy`` as ``(C, D, H, W)`` in [0, 1].

    NIfTI axes stay in nibabel's ``(i, j, k)`` order; a 4-D file's last axis becomes the channels.
    Data scaled by the header (``scl_slope``/``scl_inter``) is read in scaled units. A header
    claiming more than ``max_samples`` voxels (``D x H x W``) is refused before reading.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return volume_from_array(load_npy(path, "voxels", 3, max_samples), _volume_name(path), path)
    if not _is_nifti(path):
        raise SpecfitError(f"{path}: not a volume file (expected {', '.join(VOLUME_SUFFIXES)} or .npy)")
    data, spacing, affine = _read_nifti(path, max_samples)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (3, 4):
        raise SpecfitError(f"{path}: expected a 3-D or 4-D NIfTI volume, got shape {tuple(data.shape)}")
    signal = volume_from_array(data, _volume_name(path), path)
    signal.meta = {"spacing": spacing, **({"affine": affine} if affine is not None else {})}
    return signal


def voxel_dtype(path: Path, signal: Signal) -> np.dtype:
    """The voxel type :func:`write_volume_blocks` stores at ``path``: uint8 for a NIfTI file of an
    8-bit source (offset 0, scale 255), float32 otherwise."""
    eight_bit = signal.bit_depth == 8 and signal.value_offset == 0.0 and signal.value_scale == 255.0
    return np.dtype(np.uint8 if _is_nifti(path) and eight_bit else np.float32)


def _to_voxels(block: torch.Tensor, signal: Signal, dtype: np.dtype) -> np.ndarray:
    """``(n, C)`` values in [0, 1] to ``(n, C)`` voxels of ``dtype`` in the signal's original units
    (``values * value_scale + value_offset``; uint8 rounded and clipped to 0..255)."""
    unit = block.detach().double().clamp(0.0, 1.0).cpu().numpy()
    original = unit * signal.value_scale + signal.value_offset
    if dtype == np.uint8:
        return np.round(np.clip(original, 0.0, 255.0)).astype(np.uint8)
    return original.astype(dtype)


def _fill(voxels: np.ndarray, blocks: Iterable[torch.Tensor], signal: Signal) -> None:
    """Write consecutive ``(n, C)`` blocks into ``voxels`` (row-major, channels last), checking that
    they fill it exactly."""
    flat = voxels.reshape(-1, 1 if voxels.ndim == 3 else voxels.shape[-1])
    position = 0
    for block in blocks:
        end = position + len(block)
        if block.shape[1] != flat.shape[1] or end > len(flat):
            raise SpecfitError(f"volume blocks exceed {len(flat)} voxels of {flat.shape[1]} channels")
        flat[position:end] = _to_voxels(block, signal, voxels.dtype)
        position = end
    if position != len(flat):
        raise SpecfitError(f"volume blocks hold {position} voxels, not {len(flat)}")


def _import_nibabel() -> ModuleType:
    try:
        import nibabel
    except ImportError as exc:
        raise SpecfitError("writing NIfTI needs nibabel: pip install 'specfit[nifti]'") from exc
    return nibabel


def _write_nifti(path: Path, gz: bool, voxels: np.ndarray, signal: Signal, nibabel: ModuleType) -> None:
    """Write ``voxels`` (a memmap is read slice by slice) with ``meta["affine"]``, or the spacing on
    the diagonal, as a NIfTI-1 file, gzip-compressed when ``gz``."""
    if "affine" in signal.meta:
        affine = np.asarray(signal.meta["affine"], dtype=float)
    else:
        affine = np.diag([*signal.meta.get("spacing", [1.0, 1.0, 1.0]), 1.0])
    with gzip.open(path, "wb", compresslevel=6) if gz else path.open("wb") as handle:
        nibabel.Nifti1Image(voxels, affine).to_stream(handle)


def write_volume_blocks(
    path: Path, blocks: Iterable[torch.Tensor], shape: tuple[int, int, int], channels: int, signal: Signal
) -> None:
    """Write a ``shape = (D, H, W)`` volume of ``channels`` channels given as consecutive ``(n, C)``
    blocks of values in [0, 1], row-major over ``(D, H, W)``, in ``signal``'s original units.

    ``.npy``: ``(D, H, W)`` (one channel) or ``(D, H, W, C)`` float32, a memory-mapped file filled
    block by block. ``.nii``/``.nii.gz``: the same voxels (uint8 for an 8-bit source, see
    :func:`voxel_dtype`) gathered in an unnamed scratch file beside ``path``, then written with
    ``meta["affine"]``. Memory stays at about one block either way. The file is staged and renamed
    into place, so a failure leaves nothing behind.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy" and not _is_nifti(path):
        raise SpecfitError(f"{path}: volumes are written as .npy, .nii or .nii.gz")
    nibabel = None if path.suffix.lower() == ".npy" else _import_nibabel()
    dtype = voxel_dtype(path, signal)
    array_shape = tuple(shape) if channels == 1 else (*shape, channels)
    with staged_file(path) as temp:
        if nibabel is None:
            voxels = np.lib.format.open_memmap(temp, mode="w+", dtype=dtype, shape=array_shape)
            _fill(voxels, blocks, signal)
            voxels.flush()
            del voxels  # unmapped before the file is renamed
        else:
            with tempfile.TemporaryFile(dir=path.parent) as scratch:
                voxels = np.memmap(scratch, dtype=dtype, mode="w+", shape=array_shape)
                _fill(voxels, blocks, signal)
                _write_nifti(temp, path.name.lower().endswith(".gz"), voxels, signal, nibabel)


def write_volume(path: Path, values: torch.Tensor, signal: Signal) -> None:
    """Write ``(C, D, H, W)`` values in [0, 1] in ``signal``'s original units, format by suffix
    (see :func:`write_volume_blocks`): ``.npy`` float32 ``(D, H, W)`` or ``(D, H, W, C)``;
    ``.nii``/``.nii.gz`` with ``meta["affine"]`` (or the spacing on the diagonal)."""
    if values.ndim != 4:
        raise SpecfitError(f"volume values must have shape (C, D, H, W), got {tuple(values.shape)}")
    channels, depth, height, width = values.shape
    write_volume_blocks(path, [values.reshape(channels, -1).T], (depth, height, width), channels, signal)


def _resized_affine(affine: list[list[float]], factors: list[float]) -> list[list[float]]:
    """Voxel-to-world matrix after resampling each axis by ``old / new = factors`` (voxel centres)."""
    step = np.eye(4)
    step[:3, :3] = np.diag(factors)
    step[:3, 3] = [(f - 1.0) / 2.0 for f in factors]
    return (np.asarray(affine, dtype=float) @ step).tolist()


def resize_volume(signal: Signal, long_side: int, max_samples: int = DEFAULT_MAX_SAMPLES) -> Signal:
    """Resample so the longest spatial axis has ``long_side`` voxels (aspect ratio kept).

    Shrinking averages over each output voxel's footprint (``area``, i.e. adaptive average
    pooling, since 3-D interpolation has no antialiasing); enlarging is trilinear. ``spacing``
    and ``affine`` in ``meta`` are updated to match.
    """
    if long_side < MIN_RESIZE:
        raise SpecfitError(f"--resize must be at least {MIN_RESIZE}, got {long_side}")
    shape = signal.spatial_shape
    if max(shape) == long_side:
        return signal
    factor = long_side / max(shape)
    size = tuple(max(1, round(n * factor)) for n in shape)
    check_size(f"--resize {long_side} of {signal.name}", "voxels", size, max_samples, claim="would make")
    if factor < 1:
        values = torch.nn.functional.interpolate(signal.values[None], size=size, mode="area")[0]
    else:
        values = torch.nn.functional.interpolate(
            signal.values[None], size=size, mode="trilinear", align_corners=False
        )[0]
    ratios = [old / new for old, new in zip(shape, size, strict=True)]
    meta = dict(signal.meta)
    meta["spacing"] = [s * r for s, r in zip(meta.get("spacing", [1.0, 1.0, 1.0]), ratios, strict=True)]
    if "affine" in meta:
        meta["affine"] = _resized_affine(meta["affine"], ratios)
    resized = Signal(**{
        **signal.__dict__, "values": values.clamp(0.0, 1.0), "notes": list(signal.notes), "meta": meta
    })
    resized.notes.append(f"resized from {' x '.join(map(str, shape))} to {' x '.join(map(str, size))}")
    return resized


def volume_slices(values: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """The three central orthogonal slices of ``(C, D, H, W)`` values, for reports.

    Returns ``[("axial", ...), ("coronal", ...), ("sagittal", ...)]``, each ``(rows, cols)`` for one
    channel or ``(rows, cols, C)``, float32 clipped to [0, 1]. Axes are read as NIfTI ``(i, j, k)``
    in RAS+: axial fixes ``k`` (axis 3), coronal ``j`` (axis 2), sagittal ``i`` (axis 1). Each slice
    is rotated 90 degrees counter-clockwise (``np.rot90``) so that, for RAS+ data, superior or
    anterior is up: the rows run along the slice's second axis, reversed.
    """
    if values.ndim != 4:
        raise SpecfitError(f"volume values must have shape (C, D, H, W), got {tuple(values.shape)}")
    volume = values.detach().float().clamp(0.0, 1.0).cpu().numpy()
    _, depth, height, width = volume.shape
    cuts = {
        "axial": volume[:, :, :, width // 2],
        "coronal": volume[:, :, height // 2, :],
        "sagittal": volume[:, depth // 2, :, :],
    }
    slices = []
    for name, cut in cuts.items():
        image = np.rot90(np.moveaxis(cut, 0, -1), k=1, axes=(0, 1))
        image = image[..., 0] if image.shape[-1] == 1 else image
        slices.append((name, np.ascontiguousarray(image, dtype=np.float32)))
    return slices
