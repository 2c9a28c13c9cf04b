"""Spectrum vectors and the Wasserstein distance between them.

A signal is a tensor of shape ``(C, *spatial)`` with 1 to 3 spatial axes; a batch of signals is
``(B, C, *spatial)``. The spectrum vector has ``n`` bins: bin ``m`` (1-based) sums the magnitude of
the unshifted, unnormalised DFT, summed over channels, over all non-negative frequency indices
``i_1 + ... + i_d = m``. The mean (bin 0) is dropped and the vector is normalised to sum to 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specfit.errors import SpecfitError

DEFAULT_BINS = 64
MAX_SIDE = 1024
_RESAMPLE_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def spectrum_side(spatial_shape: tuple[int, ...]) -> int:
    """Side ``s`` of the hyper-cube a signal is resampled to before its DFT."""
    if len(spatial_shape) == 1:
        return spatial_shape[0]
    return min(*spatial_shape, MAX_SIDE)


def resolve_bins(spatial_shape: tuple[int, ...], bins: int | None) -> tuple[int, str | None]:
    """Number of bins to use and, when the default had to shrink, a note saying so.

    ``bins=None`` asks for the default (64), shrunk to ``floor(s / 2)`` for a small signal; an
    explicit request above ``s / 2`` is an error.
    """
    half = spectrum_side(spatial_shape) // 2
    if bins is None:
        if half < 1:
            raise SpecfitError(f"signal of shape {spatial_shape} is too small to have a spectrum")
        if half < DEFAULT_BINS:
            return half, f"spectrum size reduced from {DEFAULT_BINS} to {half} bins (signal side {2 * half})"
        return DEFAULT_BINS, None
    if bins < 1:
        raise SpecfitError(f"--bins must be at least 1, got {bins}")
    if bins > half:
        raise SpecfitError(
            f"{bins} bins need a signal side of at least {2 * bins}; this one allows at most {half}"
        )
    return bins, None


def _to_cube(batch: torch.Tensor) -> torch.Tensor:
    """Resample ``(B, C, *spatial)`` to a hyper-cube when its axes differ or exceed 1024."""
    spatial = tuple(batch.shape[2:])
    if len(spatial) == 1:
        return batch
    side = spectrum_side(spatial)
    if all(n == side for n in spatial):
        return batch
    mode = _RESAMPLE_MODES[len(spatial)]
    antialias = len(spatial) == 2  # torch antialiases only (bi)linear and bicubic in 2-D
    return F.interpolate(
        batch, size=(side,) * len(spatial), mode=mode, antialias=antialias, align_corners=False
    )


def diamond_bins(magnitude: torch.Tensor, bins: int) -> torch.Tensor:
    """Sum ``magnitude`` of shape ``(B, *spatial)`` over diamonds ``i_1 + ... + i_d = m``.

    Only non-negative indices are used. Returns ``(B, bins)`` for ``m = 1 .. bins``.
    """
    ndim = magnitude.dim() - 1
    corner = magnitude[(slice(None),) + (slice(0, bins + 1),) * ndim]
    radius = torch.zeros(corner.shape[1:], dtype=torch.long, device=magnitude.device)
    for axis, size in enumerate(corner.shape[1:]):
        shape = [1] * ndim
        shape[axis] = size
        radius = radius + torch.arange(size, device=magnitude.device).view(shape)
    flat_radius = radius.flatten()
    keep = (flat_radius >= 1) & (flat_radius <= bins)
    out = torch.zeros(corner.shape[0], bins, dtype=corner.dtype, device=corner.device)
    return out.index_add_(1, flat_radius[keep] - 1, corner.flatten(1)[:, keep])


def _bin_sums(batch: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised bin sums ``(B, bins)`` and DC magnitudes ``(B,)`` of ``(B, C, *spatial)``."""
    if batch.dim() < 3 or batch.dim() > 5:
        raise SpecfitError(f"expected (B, C, *spatial) with 1-3 spatial axes, got {tuple(batch.shape)}")
    cube = _to_cube(batch.to(torch.float64))
    magnitude = torch.fft.fftn(cube, dim=tuple(range(2, cube.dim()))).abs().sum(dim=1)
    return diamond_bins(magnitude, bins), magnitude.flatten(1)[:, 0]


def spectrum_vectors(batch: torch.Tensor, bins: int) -> torch.Tensor:
    """Normalised spectrum vectors of a batch of signals.

    Args:
        batch: ``(B, C, *spatial)`` real values, 1 to 3 spatial axes.
        bins: number of bins ``n``; the caller checks it against the signal side.

    Returns:
        ``(B, n)`` float64 tensor, each row summing to 1. Rows of a constant signal are NaN; use
        :func:`spectrum_vector` for a single signal to get an error instead.
    """
    sums, _ = _bin_sums(batch, bins)
    return sums / sums.sum(dim=1, keepdim=True)


def spectrum_vector(signal: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Normalised spectrum vector ``p`` of one signal of shape ``(C, *spatial)``.

    Raises:
        SpecfitError: if the signal is constant (no spectrum) or ``bins`` is too large.
    """
    n, _ = resolve_bins(tuple(signal.shape[1:]), bins)
    sums, dc = _bin_sums(signal.unsqueeze(0), n)
    total = sums[0].sum()
    if not torch.isfinite(total):
        raise SpecfitError("signal contains NaN or infinite values")
    if total <= 1e-12 * max(float(dc[0]), 1.0):
        raise SpecfitError("signal is constant: it has no spectrum to match")
    return sums[0] / total


def wasserstein(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein-1 distance between normalised spectra with unit bin spacing.

    ``p`` and ``q`` broadcast over leading axes; the last axis holds the ``n`` bins. Returns
    ``sum_k |P_k - Q_k|`` with ``P, Q`` the cumulative sums.
    """
    return (torch.cumsum(p, dim=-1) - torch.cumsum(q, dim=-1)).abs().sum(dim=-1)


def frame_spectrum_vectors(batch: torch.Tensor, bins: int) -> torch.Tensor:
    """Mean of the per-frame spectrum vectors of a batch of clips (the published video protocol).

    Args:
        batch: ``(B, C, T, *spatial)``: the first axis after the channels is time; each frame has
            1 or 2 spatial axes.

    Returns:
        ``(B, n)``: for every clip, the mean over its ``T`` frames of the frames' normalised spectra
        (a constant frame counts as a flat spectrum).
    """
    b, c, t = batch.shape[:3]
    frames = batch.transpose(1, 2).reshape(b * t, c, *batch.shape[3:])
    spectra = torch.nan_to_num(spectrum_vectors(frames, bins), nan=1.0 / bins)
    return spectra.reshape(b, t, bins).mean(dim=1)


def frame_spectrum_vector(signal: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Mean per-frame spectrum ``(n,)`` of one clip ``(C, T, *spatial)``.

    Raises:
        SpecfitError: the clip holds NaN or infinite values, or every frame is constant.
    """
    if not torch.isfinite(signal).all():
        raise SpecfitError("signal contains NaN or infinite values")
    frames = signal.transpose(0, 1).flatten(2)
    if bool((frames.amax(dim=2) == frames.amin(dim=2)).all()):
        raise SpecfitError("every frame is constant: there is no spectrum to match")
    n, _ = resolve_bins(tuple(signal.shape[2:]), bins)
    return frame_spectrum_vectors(signal.unsqueeze(0), n)[0]


def signal_spectrum(
    values: torch.Tensor, bins: int | None = None, per_frame: bool = False
) -> tuple[int, torch.Tensor]:
    """The spectrum FreSh matches: ``(n, p)`` with ``n`` the resolved bin count.

    ``values`` is ``(C, *spatial)``; with ``per_frame`` it is a clip ``(C, T, *frame)`` and ``p`` the
    mean spectrum of its frames (:func:`frame_spectrum_vector`), otherwise :func:`spectrum_vector`.
    """
    if per_frame:
        if values.dim() < 3:
            raise SpecfitError("per-frame spectra need a signal with a time axis and frames")
        n, _ = resolve_bins(tuple(values.shape[2:]), bins)
        return n, frame_spectrum_vector(values, n)
    n, _ = resolve_bins(tuple(values.shape[1:]), bins)
    return n, spectrum_vector(values, n)


def output_spectra(outputs: torch.Tensor, bins: int, per_frame: bool = False) -> torch.Tensor:
    """Spectra ``(R, bins)`` of untrained outputs ``(R, C, *spatial)``, matching :func:`signal_spectrum`;
    a constant output counts as a flat spectrum."""
    if per_frame:
        return frame_spectrum_vectors(outputs, bins)
    return torch.nan_to_num(spectrum_vectors(outputs, bins), nan=1.0 / bins)
