"""Images: PNG, JPEG, TIFF and ``.npy`` arrays, 8- or 16-bit, grey, grey+alpha, RGB or RGBA.

Values are mapped to [0, 1] by the integer type's maximum (255 or 65535). Float arrays already in
[0, 1] are kept; other float arrays are rescaled by their minimum and maximum, and the mapping is
kept so that reconstructions can be written back in the original units.

Size: the width and height are read from the header (PNG IHDR, TIFF tags, Pillow's lazy open,
the ``.npy`` header) and checked against ``max_samples`` before any pixel is decoded.

Alpha rule: an alpha channel is fitted as one more channel (straight, not premultiplied alpha) and
written back, so an RGBA image is a 4-channel signal and its reconstruction is RGBA.
"""

from __future__ import annotations

import logging
import struct
import warnings
from pathlib import Path

import numpy as np
import png
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from specfit.errors import SpecfitError
from specfit.signals.base import Signal
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, check_size, load_npy, npy_header

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
MIN_SIDE = 4


def _png_header(path: Path) -> tuple[int, int, int]:
    """``(width, height, bit_depth)`` from the IHDR chunk, which follows the PNG signature."""
    with path.open("rb") as handle:
        header = handle.read(25)
    if len(header) < 25 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise SpecfitError(f"{path} is not a PNG file")
    width, height, bit_depth = struct.unpack(">IIB", header[16:25])
    return width, height, bit_depth


def _read_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return array.reshape(height, width, info["planes"])


def _read_tiff(path: Path, limit: int) -> np.ndarray:
    """The first series (what ``tifffile.imread`` reads), once its pixel count passes the limit.

    Samples per pixel (axis ``S``) are channels and not counted; tifffile's complaints about
    damaged tags are kept off stderr (the error raised says what matters).
    """
    log = logging.getLogger("tifffile")
    was_disabled, log.disabled = log.disabled, True
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise SpecfitError(f"{path} is not a readable image (a TIFF without pages)")
            series = tif.series[0]
            grid = tuple(n for n, axis in zip(series.shape, series.axes, strict=True) if axis != "S")
            check_size(path, "pixels", grid, limit)
            return np.asarray(series.asarray())
    except SpecfitError:
        raise
    except Exception as exc:  # tifffile raises many types on damaged files (struct, zlib, index...)
        raise SpecfitError(f"{path} is not a readable TIFF ({type(exc).__name__}: {exc})") from exc
    finally:
        log.disabled = was_disabled


def _read_pil(path: Path, limit: int) -> np.ndarray:
    """Decode with Pillow once the size from its lazy open passes the limit.

    Pillow's decompression-bomb warning is silenced here (this limit replaces it); its error,
    raised by ``Image.open`` beyond twice its own limit, is turned into a :class:`SpecfitError`
    by the caller.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            check_size(path, "pixels", (image.height, image.width), limit)
            image.load()
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode == "1":
                image = image.convert("L")
            elif image.mode == "CMYK":
                image = image.convert("RGB")
            return np.asarray(image)


def _read_pixels(path: Path, limit: int) -> np.ndarray:
    """Raw pixel array ``(H, W)`` or ``(H, W, C)`` of integer or float type.

    Raises a :class:`SpecfitError` before decoding when the header claims more than ``limit``
    pixels.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            return _read_tiff(path, limit)
        if suffix == ".png":
            width, height, bit_depth = _png_header(path)
            check_size(path, "pixels", (height, width), limit)
            if bit_depth == 16:
                return _read_png16(path)
        return _read_pil(path, limit)
    except SpecfitError:
        raise
    except Image.DecompressionBombError as exc:
        raise SpecfitError(f"{path} is too large for Pillow to decode ({exc})") from exc
    except (UnidentifiedImageError, png.FormatError, tifffile.TiffFileError) as exc:
        raise SpecfitError(f"{path} is not a readable image ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise SpecfitError(f"{path} could not be decoded, the file may be truncated ({exc})") from exc


def _to_unit_range(array: np.ndarray, path: Path) -> tuple[np.ndarray, int, float, float]:
    """Map raw pixels to float32 in [0, 1]; returns (values, bit_depth, offset, scale)."""
    if array.size == 0:
        raise SpecfitError(f"{path} holds an empty array")
    if array.dtype == np.bool_:
        return array.astype(np.float32), 8, 0.0, 1.0
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype.itemsize == 1:
            return array.astype(np.float32) / 255.0, 8, 0.0, 1.0
        if array.dtype.itemsize == 2:
            return array.astype(np.float32) / 65535.0, 16, 0.0, 1.0
        top = float(np.iinfo(array.dtype).max)
        return (array.astype(np.float64) / top).astype(np.float32), 32, 0.0, 1.0
    if not np.issubdtype(array.dtype, np.floating):
        raise SpecfitError(f"{path}: unsupported array type {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise SpecfitError(f"{path} contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low >= 0.0 and high <= 1.0:
        return array.astype(np.float32), 32, 0.0, 1.0
    scale = high - low if high > low else 1.0
    return ((array - low) / scale).astype(np.float32), 32, low, scale


def image_from_array(array: np.ndarray, name: str, path: Path | None = None) -> Signal:
    """Build an image signal from ``(H, W)`` or ``(H, W, C)`` pixels, ``C`` in 1..4."""
    where = path if path is not None else Path(name)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in MODES:
        raise SpecfitError(
            f"{where}: expected an image array of shape (H, W) or (H, W, C) with C in 1-4, "
            f"got {tuple(array.shape)}"
        )
    height, width, channels = array.shape
    if min(height, width) < MIN_SIDE:
        raise SpecfitError(f"{where} is {height} x {width}: need at least {MIN_SIDE} pixels a side")
    values, bit_depth, offset, scale = _to_unit_range(array, where)
    tensor = torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))
    return Signal(
        values=tensor,
        name=name,
        kind="image",
        mode=MODES[channels],
        bit_depth=bit_depth,
        value_offset=offset,
        value_scale=scale,
        source=str(path) if path is not None else None,
    )


def load_image(path: Path, *, max_samples: int = DEFAULT_MAX_SAMPLES) -> Signal:
    """Read an image file or an image-shaped ``.npy`` array.

    A file whose header claims more than ``max_samples`` pixels (height x width) is refused before
    decoding.
    """
    if path.suffix.lower() == ".npy":
        return image_from_array(load_npy(path, "pixels", 2, max_samples), path.stem, path)
    return image_from_array(_read_pixels(path, max_samples), path.stem, path)


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file or an image-shaped ``.npy`` array, from its header
    alone; ``None`` for anything else or a header that cannot be read."""
    try:
        if path.suffix.lower() == ".npy":
            shape = npy_header(path)[0]
            image_like = len(shape) == 2 or (len(shape) == 3 and shape[-1] <= 4)
            return (int(shape[0]), int(shape[1])) if image_like else None
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            return None
        with Image.open(path) as image:
            width, height = image.size
        return int(height), int(width)
    except (OSError, SpecfitError, UnidentifiedImageError, ValueError):
        return None


def image_to_array(values: torch.Tensor, bit_depth: int) -> np.ndarray:
    """``(C, H, W)`` values in [0, 1] to ``(H, W, C)`` uint8 or uint16 pixels (clamped)."""
    clamped = values.detach().float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    if bit_depth == 16:
        return np.round(clamped * 65535.0).astype(np.uint16)
    return np.round(clamped * 255.0).astype(np.uint8)


def write_pixels(path: Path, pixels: np.ndarray) -> None:
    """Write ``(H, W, C)`` uint8 or uint16 pixels as an 8- or 16-bit PNG (C in 1..4)."""
    height, width, channels = pixels.shape
    if pixels.dtype == np.uint16:
        png.from_array(pixels.reshape(height, width * channels), f"{MODES[channels]};16").save(str(path))
        return
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, MODES[channels])
    image.save(path, format="PNG")


def write_image(path: Path, values: torch.Tensor, bit_depth: int = 8) -> None:
    """Write ``(C, H, W)`` values in [0, 1] as PNG (16-bit PNG when ``bit_depth == 16``).

    Writes directly to ``path``; callers that need atomicity write into a staging folder.
    """
    write_pixels(path, image_to_array(values, 16 if bit_depth == 16 else 8))


def resize_image(signal: Signal, short_side: int) -> Signal:
    """Downscale so the shorter side is ``short_side`` (antialiased bilinear); never upscales."""
    height, width = signal.spatial_shape
    if short_side < MIN_SIDE:
        raise SpecfitError(f"--resize must be at least {MIN_SIDE}, got {short_side}")
    if min(height, width) <= short_side:
        return signal
    factor = short_side / min(height, width)
    size = (max(MIN_SIDE, round(height * factor)), max(MIN_SIDE, round(width * factor)))
    values = torch.nn.functional.interpolate(
        signal.values[None], size=size, mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0.0, 1.0)
    resized = Signal(**{**signal.__dict__, "values": values, "notes": list(signal.notes)})
    resized.notes.append(f"resized from {height} x {width} to {size[0]} x {size[1]}")
    return resized
