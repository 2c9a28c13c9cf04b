"""Spectrum vectors and the Wasserstein distance between them.

A signal is a tensor of shape ``(C, *spatial)`` with 1 to 3 spatial axes; a batch of signals is
``(B, C, *spatial)``. A spectrum vector has ``n`` bins over the magnitude of the unshifted,
unnormalised DFT, summed over channels, at non-negative frequency indices binned by their "diamond"
radius ``m = i_1 + ... + i_d``; the mean (``m = 0``) is dropped and the vector sums to 1. Signals
whose axes differ, or exceed 1024 samples (2-D, 3-D), are first resampled to a hyper-cube.

Two definitions of the band, a :class:`Band` each:

- ``"published"`` (the default for video, volumes and shapes): bin ``m`` holds radius ``m`` for
  ``m = 1 .. n`` (``n = 64``, at most half the side). The lowest ``n`` frequencies, whatever the
  signal's resolution: a quarter of the band of a 512 px image, and 0.08-5 Hz of a 12 s clip at
  44.1 kHz.
- ``"signal"`` (the default for audio and images): the band runs from the lowest frequency up to
  the **band edge** ``F = min(s / 2, 2 F_p)``, twice the smallest radius ``F_p`` below which a fraction of the
  signal's power lies (0.99 for the ``fit`` objective, 0.9 for ``generalize``:
  ``specfit.fresh.options.BAND_POWER``), and its ``n = min(64, F)`` bins pool radii evenly,
  ``F / n`` each. The margin above the content is where an untrained network with too high a
  frequency puts energy the signal does not have; without it such networks would not be told
  apart. The band follows the signal's content, so one band-limited signal sampled at two rates,
  or a clip and a longer clip of the same sound, give nearly the same vector. Long 1-D signals are
  cut into segments of :data:`SEGMENT` samples whose Hann-windowed magnitude spectra are averaged
  (Welch's method without overlap): the vector then depends on the sound, not on the clip's
  length, and an untrained network is evaluated on a few segments instead of the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specfit.errors import SpecfitError
from specfit.fresh.options import BAND_POWER, OBJECTIVES, SPECTRA

DEFAULT_BINS = 64
MAX_SIDE = 1024
SEGMENT = 4096
BAND_MARGIN = 2  # the band reaches this many times the radius holding the signal's power
_RESAMPLE_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass(frozen=True)
class Band:
    """Which DFT frequencies a spectrum vector holds and how they are pooled.

    Bin ``k`` (1-based) of ``bins`` holds the diamond radii ``m`` with
    ``(k - 1) * width < m <= k * width``; radii are DFT indices of the whole signal, or of one
    segment when ``segment`` is set (1-D signals only).

    Attributes:
        bins: ``n``.
        width: radii per bin (1 for the published definition).
        segment: samples per segment of a 1-D signal (``None``: the whole signal in one DFT).
        edge: the band edge ``F`` in cycles over the whole signal (``bins * width`` scaled from
            segments to the whole signal), for reports.
    """

    bins: int
    width: float = 1.0
    segment: int | None = None
    edge: float | None = None

    @property
    def max_radius(self) -> int:
        return math.floor(self.bins * self.width + 1e-9)

    def to_json(self) -> dict:
        return {"bins": self.bins, "width": self.width, "segment": self.segment, "edge": self.edge}


def spectrum_side(spatial_shape: tuple[int, ...]) -> int:
    """Side ``s`` of the hyper-cube a signal is resampled to before its DFT."""
    if len(spatial_shape) == 1:
        return spatial_shape[0]
    return min(*spatial_shape, MAX_SIDE)


def resolve_bins(spatial_shape: tuple[int, ...], bins: int | None) -> tuple[int, str | None]:
    """Number of published bins to use and, when the default had to shrink, a note saying so.

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


def _radius(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Diamond radius ``i_1 + ... + i_d`` of every index of a grid of ``shape``."""
    radius = torch.zeros(shape, dtype=torch.long, device=device)
    for axis, size in enumerate(shape):
        view = [1] * len(shape)
        view[axis] = size
        radius = radius + torch.arange(size, device=device).view(view)
    return radius


def pooled_bins(magnitude: torch.Tensor, band: Band) -> torch.Tensor:
    """Sum ``magnitude`` ``(B, *spatial)`` into the band's bins: ``(B, band.bins)``.

    Only non-negative indices up to the band's largest radius are used.
    """
    ndim = magnitude.dim() - 1
    limit = band.max_radius
    corner = magnitude[(slice(None),) + (slice(0, limit + 1),) * ndim]
    flat_radius = _radius(tuple(corner.shape[1:]), magnitude.device).flatten()
    keep = (flat_radius >= 1) & (flat_radius <= limit)
    index = torch.ceil(flat_radius[keep].double() / band.width - 1e-9).long() - 1
    out = torch.zeros(corner.shape[0], band.bins, dtype=corner.dtype, device=corner.device)
    return out.index_add_(1, index, corner.flatten(1)[:, keep])


def diamond_bins(magnitude: torch.Tensor, bins: int) -> torch.Tensor:
    """Sum ``magnitude`` ``(B, *spatial)`` over diamonds ``i_1 + ... + i_d = m``, ``m = 1 .. bins``."""
    return pooled_bins(magnitude, Band(bins))


def _check_batch(batch: torch.Tensor) -> None:
    if batch.dim() < 3 or batch.dim() > 5:
        raise SpecfitError(f"expected (B, C, *spatial) with 1-3 spatial axes, got {tuple(batch.shape)}")


def magnitudes(batch: torch.Tensor, segment: int | None = None) -> torch.Tensor:
    """DFT magnitudes summed over channels: ``(B, *cube)`` for ``(B, C, *spatial)``.

    With ``segment``, a 1-D batch ``(B, C, N)`` is cut into ``N // segment`` segments (a remainder
    is dropped) and the result ``(B, segment)`` is the mean of their magnitudes, each segment taken
    without its mean and through a Hann window (so that a tone's magnitude does not depend on its
    phase at the segment's edges).
    """
    _check_batch(batch)
    batch = batch.to(torch.float64)
    if segment is not None:
        if batch.dim() != 3:
            raise SpecfitError("segmented spectra are defined for 1-D signals only")
        count = batch.shape[2] // segment
        pieces = batch[..., : count * segment].reshape(*batch.shape[:2], count, segment)
        pieces = pieces - pieces.mean(dim=-1, keepdim=True)  # the window must not smear the mean
        window = torch.hann_window(segment, periodic=True, dtype=batch.dtype, device=batch.device)
        return torch.fft.fft(pieces * window, dim=-1).abs().sum(dim=1).mean(dim=1)
    cube = _to_cube(batch)
    return torch.fft.fftn(cube, dim=tuple(range(2, cube.dim()))).abs().sum(dim=1)


def band_vectors(magnitude: torch.Tensor, band: Band) -> torch.Tensor:
    """Normalised spectrum vectors ``(B, n)`` from magnitudes ``(B, *cube)``; a row with no energy
    in the band is flat (the spectrum of a constant output counts as flat)."""
    sums = pooled_bins(magnitude, band)
    return torch.nan_to_num(sums / sums.sum(dim=1, keepdim=True), nan=1.0 / band.bins)


def _bin_sums(batch: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised published bin sums ``(B, bins)`` and DC magnitudes ``(B,)``."""
    magnitude = magnitudes(batch)
    return diamond_bins(magnitude, bins), magnitude.flatten(1)[:, 0]


def spectrum_vectors(batch: torch.Tensor, bins: int) -> torch.Tensor:
    """Published spectrum vectors of a batch of signals.

    Args:
        batch: ``(B, C, *spatial)`` real values, 1 to 3 spatial axes.
        bins: number of bins ``n``; the caller checks it against the signal side.

    Returns:
        ``(B, n)`` float64 tensor, each row summing to 1. Rows of a constant signal are NaN; use
        :func:`spectrum_vector` for a single signal to get an error instead.
    """
    sums, _ = _bin_sums(batch, bins)
    return sums / sums.sum(dim=1, keepdim=True)


def _check_spectrum(values: torch.Tensor) -> None:
    """Raise for a signal with NaN, infinities or no variation (no spectrum to match)."""
    if not torch.isfinite(values).all():
        raise SpecfitError("signal contains NaN or infinite values")
    flat = values.flatten(1)
    # Variation below single precision's resolution (e.g. from filling held-out samples) is none.
    if bool((flat.amax(dim=1) - flat.amin(dim=1) <= 1e-6 * flat.abs().amax(dim=1).clamp_min(1.0)).all()):
        raise SpecfitError("signal is constant: it has no spectrum to match")


def spectrum_vector(signal: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Published spectrum vector ``p`` of one signal of shape ``(C, *spatial)``.

    Raises:
        SpecfitError: if the signal is constant (no spectrum) or ``bins`` is too large.
    """
    n, _ = resolve_bins(tuple(signal.shape[1:]), bins)
    _check_spectrum(signal)
    sums, _ = _bin_sums(signal.unsqueeze(0), n)
    return sums[0] / sums[0].sum()


def wasserstein(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein-1 distance between normalised spectra with unit bin spacing.

    ``p`` and ``q`` broadcast over leading axes; the last axis holds the ``n`` bins. Returns
    ``sum_k |P_k - Q_k|`` with ``P, Q`` the cumulative sums.
    """
    return (torch.cumsum(p, dim=-1) - torch.cumsum(q, dim=-1)).abs().sum(dim=-1)


def _frames(batch: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, *frame)`` -> ``(B * T, C, *frame)``."""
    b, c, t = batch.shape[:3]
    return batch.transpose(1, 2).reshape(b * t, c, *batch.shape[3:])


def band_edge(power: torch.Tensor, fraction: float) -> int:
    """Smallest radius ``F >= 1`` whose radii ``1 .. F`` hold ``fraction`` of ``power`` ``(R,)``
    (``power[m - 1]`` is the power at radius ``m``)."""
    cumulative = torch.cumsum(power, dim=0)
    reached = torch.nonzero(cumulative >= fraction * cumulative[-1])
    return int(reached[0]) + 1 if len(reached) else len(power)


def signal_band(
    values: torch.Tensor, spectrum: str = "signal", objective: str = "fit", bins: int | None = None,
    per_frame: bool = False,
) -> tuple[Band, list[str]]:
    """The band of ``values`` ``(C, *spatial)`` (a clip ``(C, T, *frame)`` with ``per_frame``) and
    notes for the user.

    Raises:
        SpecfitError: an unknown ``spectrum`` or ``objective``, ``bins`` out of range, or a constant
            signal.
    """
    if spectrum not in SPECTRA:
        raise SpecfitError(f"unknown spectrum {spectrum!r}; choose from {', '.join(SPECTRA)}")
    if objective not in OBJECTIVES:
        raise SpecfitError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    spatial = tuple(values.shape[2 if per_frame else 1 :])
    if per_frame and values.dim() < 3:
        raise SpecfitError("per-frame spectra need a signal with a time axis and frames")
    _check_spectrum(values)
    if per_frame and not bool((_frames(values.unsqueeze(0)).flatten(1).std(dim=1) > 0).any()):
        raise SpecfitError("every frame is constant: there is no spectrum to match")
    if spectrum == "published":
        if objective != "fit":
            raise SpecfitError("the published spectrum has no objective but fit (use the signal spectrum)")
        n, note = resolve_bins(spatial, bins)
        return Band(n, edge=float(n)), [note] if note else []
    segment = SEGMENT if len(spatial) == 1 and spatial[0] >= 2 * SEGMENT else None
    batch = _frames(values.unsqueeze(0)) if per_frame else values.unsqueeze(0)
    band, notes = content_band(magnitudes(batch, segment), objective, bins)
    if segment:
        band = Band(band.bins, band.width, segment, band.edge * spatial[0] / segment)
    return band, notes


def content_band(
    magnitude: torch.Tensor, objective: str = "fit", bins: int | None = None
) -> tuple[Band, list[str]]:
    """The signal band of DFT magnitudes ``(B, *cube)`` (summed over the batch): up to twice the
    radius holding ``BAND_POWER[objective]`` of the power, at most half the side; and notes."""
    half = magnitude.shape[-1] // 2
    resolve_bins((2 * half,), bins)  # the same limits as the published definition
    power = pooled_bins(magnitude.square(), Band(half)).sum(dim=0)
    if not bool(power.sum() > 0):
        raise SpecfitError("the measurements have no energy besides their mean: no spectrum to match")
    content = band_edge(power, BAND_POWER[objective])
    edge = min(half, BAND_MARGIN * content)
    n = min(bins or DEFAULT_BINS, edge)
    notes = []
    if n < (bins or DEFAULT_BINS):
        notes.append(f"spectrum size reduced to {n} bins: the signal's band ends at frequency {edge}")
    return Band(n, edge / n, None, float(edge)), notes


def spectra(batch: torch.Tensor, band: Band, per_frame: bool = False) -> torch.Tensor:
    """Normalised spectrum vectors ``(B, n)`` of ``(B, C, *spatial)`` in ``band``.

    With ``per_frame`` the batch holds clips ``(B, C, T, *frame)`` and each vector is the mean of
    its frames' vectors. With a segmented band the batch is ``(B, C, N)`` with ``N`` a multiple of
    the segment (whole segments, consecutive or not). A constant output counts as flat.
    """
    if per_frame:
        b, t = batch.shape[0], batch.shape[2]
        return spectra(_frames(batch), band).reshape(b, t, band.bins).mean(dim=1)
    return band_vectors(magnitudes(batch, band.segment), band)


def signal_spectrum(
    values: torch.Tensor, band: Band, per_frame: bool = False
) -> torch.Tensor:
    """The spectrum FreSh matches, ``(n,)``: of ``values`` ``(C, *spatial)`` in ``band``, or with
    ``per_frame`` the mean spectrum of the frames of a clip ``(C, T, *frame)``."""
    _check_spectrum(values)
    return spectra(values.unsqueeze(0), band, per_frame)[0]
