"""MRI forward model: random sampling of the orthonormal discrete Fourier transform (k-space).

K-space is unshifted (``torch.fft.fftn`` layout: the DC coefficient at index 0 on every axis) and
orthonormal (``norm="ortho"``), so a full mask keeps the energy: ``sum |samples|^2 = sum volume^2``.
Samples are listed in the row-major order of the mask's True entries, ``kspace[..., mask]``.
"""

from __future__ import annotations

import torch

from specfit.errors import SpecfitError

MASK_DENSITIES = ("gaussian", "uniform")
DENSITY_WIDTH = 0.25  # the Gaussian density's standard deviation, as a fraction of each axis's length


def kspace_mask(
    shape: tuple[int, ...], fraction: float, seed: int, density: str = "gaussian"
) -> torch.Tensor:
    """Random k-space sampling mask that always keeps the DC coefficient.

    Args:
        shape: spatial shape of the volumes, e.g. ``(D, H, W)``.
        fraction: share of the coefficients to sample, in (0, 1].
        seed: seed of the ``torch.Generator`` that draws the coefficients, without replacement.
        density: ``"gaussian"`` (variable density, as MRI acquisitions sample: coefficient ``k`` is
            drawn with weight ``exp(-sum_i (k_i / (DENSITY_WIDTH n_i))^2 / 2)`` for its signed
            frequency ``k_i`` on an axis of ``n_i``, so low frequencies are sampled densely and high
            ones sparsely) or ``"uniform"`` (every coefficient equally likely).

    Returns:
        Bool mask of ``shape`` with ``max(1, round(fraction * numel))`` True entries, among them
        index ``(0, ..., 0)``.
    """
    if not 0.0 < fraction <= 1.0:
        raise SpecfitError(f"the k-space sampling fraction must be in (0, 1], got {fraction}")
    if len(shape) == 0 or any(side < 1 for side in shape):
        raise SpecfitError(f"the k-space mask needs a non-empty shape of positive sides, got {shape}")
    if density not in MASK_DENSITIES:
        raise SpecfitError(f"unknown k-space density {density!r}; choose from {', '.join(MASK_DENSITIES)}")
    numel = 1
    for side in shape:
        numel *= side
    count = max(1, round(fraction * numel))
    generator = torch.Generator().manual_seed(seed)
    if density == "uniform":
        weights = torch.ones(numel - 1, dtype=torch.float64)
    else:
        exponent = torch.zeros(shape, dtype=torch.float64)
        for axis, side in enumerate(shape):
            view = [1] * len(shape)
            view[axis] = side
            frequency = torch.fft.fftfreq(side, dtype=torch.float64) / DENSITY_WIDTH
            exponent = exponent + frequency.square().view(view)
        weights = torch.exp(-0.5 * exponent).flatten()[1:]
    others = (torch.multinomial(weights, count - 1, replacement=False, generator=generator) + 1
              if count > 1 else torch.zeros(0, dtype=torch.long))
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[0] = True
    mask[others] = True
    return mask.reshape(shape)


def _check_mask(mask: torch.Tensor) -> None:
    if mask.dtype != torch.bool or mask.ndim == 0:
        raise SpecfitError(
            f"the k-space mask must be a bool tensor with spatial axes, got {mask.dtype} {tuple(mask.shape)}"
        )


def sample_kspace(volumes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Measured k-space samples of volumes; differentiable w.r.t. ``volumes``.

    Args:
        volumes: ``(B, C, *spatial)`` real volumes (or images: any number of spatial axes).
        mask: bool tensor of shape ``spatial`` (see :func:`kspace_mask`), on any device.

    Returns:
        ``(B, C, M)`` complex samples, ``M = mask.sum()``: ``fftn(volumes, norm="ortho")`` over the
        spatial axes at the mask's True entries in row-major order.
    """
    _check_mask(mask)
    if tuple(volumes.shape[2:]) != tuple(mask.shape) or volumes.ndim != 2 + mask.ndim:
        raise SpecfitError(
            f"volumes of shape {tuple(volumes.shape)} do not match a k-space mask of shape "
            f"{tuple(mask.shape)}: expected (B, C, *mask.shape)"
        )
    spatial = tuple(range(2, volumes.ndim))
    spectrum = torch.fft.fftn(volumes, dim=spatial, norm="ortho")
    return spectrum[:, :, mask.to(volumes.device)]


def zero_filled(samples: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Classical reconstruction: missing coefficients set to zero, inverse orthonormal DFT, real part.

    Args:
        samples: ``(B, C, M)`` complex samples as returned by :func:`sample_kspace`.
        mask: the bool mask they were taken with, ``M = mask.sum()``.

    Returns:
        ``(B, C, *mask.shape)`` real volumes (exactly the input of :func:`sample_kspace` when the
        mask is full).
    """
    if samples.ndim != 3 or not samples.is_complex():
        raise SpecfitError(
            f"zero_filled needs (B, C, M) complex samples, got {samples.dtype} {tuple(samples.shape)}"
        )
    _check_mask(mask)
    flat_mask = mask.to(samples.device).flatten()
    indices = flat_mask.nonzero().squeeze(1)
    if len(indices) != samples.shape[-1]:
        raise SpecfitError(
            f"zero_filled got {samples.shape[-1]} samples for a mask with {len(indices)} True entries"
        )
    batch, channels, _ = samples.shape
    full = samples.new_zeros(batch, channels, flat_mask.numel()).index_copy(-1, indices, samples)
    spectrum = full.reshape(batch, channels, *mask.shape)
    return torch.fft.ifftn(spectrum, dim=tuple(range(2, spectrum.ndim)), norm="ortho").real


def as_real(samples: torch.Tensor) -> torch.Tensor:
    """``(B, C, M)`` complex samples as a ``(B, C, M, 2)`` real view (real, imaginary), e.g. for MSE."""
    return torch.view_as_real(samples)


def as_complex(pairs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`as_real`: ``(..., 2)`` real (real, imaginary) pairs to ``(...)`` complex."""
    return torch.view_as_complex(pairs.contiguous())
