"""What a kernel on a regular grid looks like: its eigenvalues, its profile through the centre, how
far it is from stationary, and the spectrum of that profile.

Kernels here are ``(N, N)`` matrices on a grid of ``size`` points per axis over ``dims`` axes, the
points in row-major order (:func:`specfit.signals.sampling.grid_coordinates`, coordinates in
[-1, 1] with both ends included, so the grid spacing is ``2 / (size - 1)``).
"""

from __future__ import annotations

import numpy as np


def eigenvalues(kernel: np.ndarray) -> np.ndarray:
    """The eigenvalues of a symmetric kernel, largest first (float64)."""
    matrix = np.asarray(kernel, dtype=np.float64)
    return np.linalg.eigvalsh(0.5 * (matrix + matrix.T))[::-1].copy()


def _offsets(size: int, dims: int) -> np.ndarray:
    """``(N, N)`` integer key of the grid offset ``v_j - v_i`` of every pair (one key per offset vector)."""
    index = np.indices((size,) * dims).reshape(dims, -1)  # (dims, N)
    key = np.zeros((index.shape[1],) * 2, dtype=np.int64)
    for axis in range(dims):  # each offset in [0, 2 size - 2] after the shift
        key = key * (2 * size - 1) + (index[axis][None, :] - index[axis][:, None] + (size - 1))
    return key


def stationarity(kernel: np.ndarray, size: int, dims: int) -> float:
    """How far ``k(v1, v2)`` is from a function of ``v1 - v2``: ``||K - S||_F / ||K||_F``, where
    ``S[i, j]`` is the mean of ``K`` over all pairs of the grid with the same offset ``v_j - v_i``.

    0 for a kernel that is exactly a function of the offset (on the grid), up to 1 for a kernel that
    averages to nothing along every offset.
    """
    matrix = np.asarray(kernel, dtype=np.float64)
    key = _offsets(size, dims).ravel()
    sums = np.bincount(key, weights=matrix.ravel())
    counts = np.bincount(key)
    mean = (sums / np.maximum(counts, 1))[key].reshape(matrix.shape)
    norm = np.linalg.norm(matrix)
    return float(np.linalg.norm(matrix - mean) / norm) if norm > 0 else 0.0


def centre_index(size: int, dims: int) -> int:
    """The row-major index of the grid point at the centre (``size // 2`` along every axis)."""
    return int(np.ravel_multi_index((size // 2,) * dims, (size,) * dims))


def profile(kernel: np.ndarray, size: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel along the line through the centre on the first axis: ``k(v_c, v_c + d e_1)``
    against the offsets ``d`` (in coordinate units), both ``(size,)``."""
    matrix = np.asarray(kernel, dtype=np.float64)
    centre = size // 2
    row = matrix[centre_index(size, dims)].reshape((size,) * dims)
    line = row[(slice(None),) + (centre,) * (dims - 1)]
    offsets = (np.arange(size) - centre) * (2.0 / (size - 1))
    return offsets, line.copy()


def profile_spectrum(line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The magnitude of the DFT of a profile ``(size,)``, normalised to a maximum of 1, against the
    frequency in cycles over the span [-1, 1] (``0 .. size // 2``)."""
    magnitude = np.abs(np.fft.rfft(np.asarray(line, dtype=np.float64)))
    top = magnitude.max()
    return np.arange(magnitude.size, dtype=np.float64), magnitude / top if top > 0 else magnitude


def bandwidth(spectrum: np.ndarray, fraction: float = 0.99) -> float:
    """The frequency (index into ``spectrum``, from 1) up to which ``fraction`` of its energy (sum
    of squares) beyond the constant term lies: a one-number summary of how wide a kernel's
    spectrum is (0 when it has nothing but a constant)."""
    energy = np.cumsum(np.asarray(spectrum, dtype=np.float64)[1:] ** 2)
    if energy.size == 0 or energy[-1] <= 0:
        return 0.0
    return float(np.searchsorted(energy, fraction * energy[-1]) + 1)
