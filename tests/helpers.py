"""Test helpers: synthetic images, an independent NumPy spectrum, and CLI assertions.

Nothing here imports specfit, so the reference implementations stay independent of the code
under test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import png
from PIL import Image

# CLI options that keep a fit to a second or two on a CPU.
SMALL_SIREN = ["--set", "width=32", "--set", "hidden_layers=1", "--compile", "off", "--device", "cpu"]


def powerlaw_image(n: int, slope: float, seed: int) -> np.ndarray:
    """``n x n`` uint8 white noise whose Fourier amplitude is shaped to ``1 / f**slope``.

    ``slope = 1`` gives a rough, detailed image; ``slope = 3`` a smooth one.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(noise) / radius**slope
    spectrum[0, 0] = 0.0
    image = np.real(np.fft.ifft2(spectrum))
    image = (image - image.min()) / (image.max() - image.min())
    return np.round(image * 255).astype(np.uint8)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A smooth ``(height, width, 3)`` float image in [0.1, 0.9] (distinct per channel)."""
    yy, xx = np.mgrid[0:height, 0:width]
    y, x = yy / height, xx / width
    return np.stack(
        [
            0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.5 * y)),
            0.5 + 0.4 * np.cos(2 * np.pi * 1.5 * y),
            0.1 + 0.8 * x * y,
        ],
        axis=-1,
    )


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def save_png8(path: Path, pixels: np.ndarray) -> Path:
    """Write a uint8 ``(H, W)`` or ``(H, W, C)`` array with Pillow."""
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def save_png16(path: Path, pixels: np.ndarray) -> Path:
    """Write a uint16 ``(H, W)`` or ``(H, W, C)`` array as a 16-bit PNG with pypng."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    png.from_array(pixels.reshape(height, width * channels), f"{mode};16").save(str(path))
    return path


def read_png(path: Path) -> np.ndarray:
    """Pixels of a PNG as ``(H, W, C)`` in their stored integer type (8 or 16 bit)."""
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    dtype = np.uint16 if info["bitdepth"] > 8 else np.uint8
    array = np.vstack([np.asarray(row, dtype=dtype) for row in rows])
    return array.reshape(height, width, info["planes"])


def numpy_spectrum(values: np.ndarray, bins: int) -> np.ndarray:
    """Reference spectrum vector (methods.md 1.1) of a square ``(C, s, s)`` array.

    ``A = sum_c |fft2(Y_c)|``; ``S[m] = sum_{i + j = m, i, j >= 0} A[i, j]`` for ``m = 1..bins``;
    ``p = S / sum(S)``. Written with plain loops on purpose.
    """
    magnitude = np.abs(np.fft.fft2(np.asarray(values, dtype=np.float64), axes=(-2, -1))).sum(axis=0)
    sums = np.zeros(bins)
    for m in range(1, bins + 1):
        for i in range(m + 1):
            sums[m - 1] += magnitude[i, m - i]
    return sums / sums.sum()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_single_error(code: int, stdout: str, stderr: str) -> None:
    """The CLI error contract: exit 2, nothing on stdout, exactly one stderr line ``error: ...``."""
    lines = error_lines(stderr)
    assert code == 2, f"exit code {code}; stderr={stderr!r}"
    assert "Traceback" not in stderr
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith("error:"), f"stderr line does not start with 'error:': {lines[0]!r}"
    assert stdout == ""


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (hidden ones included), relative to it."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def logged_task(log: str, key: str, seconds: float = 0.0) -> dict:
    """An executor task for tests: appends ``key`` to the file ``log``, waits, returns a record."""
    import time

    with open(log, "a") as handle:
        handle.write(key + "\n")
    time.sleep(seconds)
    return {"key": key, "pid": os.getpid()}


def canned_task(log: str, key: str, record: dict) -> dict:
    """An executor task for tests: appends ``key`` to the file ``log`` and returns ``record``."""
    with open(log, "a") as handle:
        handle.write(key + "\n")
    return record
