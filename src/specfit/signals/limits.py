"""One limit on the size of a signal, checked on what a file's header claims, before decoding.

Sizes are counted in samples: the grid points of the signal (pixels of an image, frames x pixels
of a video, voxels of a volume, frames of a waveform), channels not counted.

The default, :data:`DEFAULT_MAX_SAMPLES` = 2**27 (about 1.3e8), admits three times the largest
signal of the shared data (a 250-frame 272 x 640 video, 4.35e7 samples), a 512**3 volume, an
11585 x 11585 image or 50 minutes of 44.1 kHz audio, while its float32 values stay within
0.5 GiB a channel. It also sits below Pillow's own refusal threshold (2 x 89.5 M pixels), so
images are refused by this check, with their size, first.
"""

from __future__ import annotations

import math
import os
import tokenize
from pathlib import Path

import numpy as np

from specfit.errors import SpecfitError

DEFAULT_MAX_SAMPLES = 2**27


def _short(number: int) -> str:
    """``10**10`` -> ``"1.0e10"``: two significant digits, no plus sign or leading zeros."""
    mantissa, exponent = f"{number:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def check_size(
    path: Path | str, what: str, shape: tuple[int, ...], limit: int, claim: str = "claims"
) -> None:
    """Raise a :class:`SpecfitError` if the grid ``shape`` has more than ``limit`` samples.

    ``what`` names the grid points (``"pixels"``, ``"voxels"``, ...); the message quotes the shape
    as ``A x B x ...`` and the option that raises the limit. A limit equal to the size passes.
    ``claim`` words the size: what a file ``"claims"``, or what resampling ``"would make"``.
    """
    samples = math.prod(shape)
    if samples > limit:
        raise SpecfitError(
            f"{path} {claim} {' x '.join(map(str, shape))} {what} ({_short(samples)} samples), "
            f"more than the limit of {_short(limit)}; pass --max-samples to raise it"
        )


def npy_header(path: Path) -> tuple[tuple[int, ...], int, int]:
    """``(shape, data bytes the header claims, data bytes the file holds)`` of an ``.npy`` file.

    Reads the header only. Raises a :class:`SpecfitError` for a file that is not an ``.npy``
    array, or of a format version NumPy writes only for non-Latin-1 field names.
    """
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in readers:
                raise SpecfitError(f"{path}: unsupported .npy format version {version[0]}.{version[1]}")
            shape, _, dtype = readers[version](handle)
            held = os.fstat(handle.fileno()).st_size - handle.tell()
    except SpecfitError:
        raise
    except (ValueError, OSError, EOFError, tokenize.TokenError) as exc:  # a damaged header dict: TokenError
        raise SpecfitError(f"{path} is not a readable .npy array ({exc})") from exc
    return tuple(shape), math.prod(shape) * dtype.itemsize, held


def load_npy(path: Path, what: str, grid_axes: int, limit: int) -> np.ndarray:
    """Load an ``.npy`` array once its header passes :func:`check_size` and the file is whole.

    The grid is the first ``grid_axes`` axes (2 for images, 3 for volumes); a trailing channel
    axis is not counted. Memory stays bounded by the file's size, which must hold what the header
    claims.
    """
    shape, claimed, held = npy_header(path)
    check_size(path, what, shape[:grid_axes], limit)
    if held < claimed:
        raise SpecfitError(
            f"{path} is truncated: its header claims {' x '.join(map(str, shape))} values "
            f"({claimed} bytes), the file holds {held} bytes of data"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpecfitError(f"{path} is not a readable .npy array ({exc})") from exc
