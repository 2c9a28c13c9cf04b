"""Parallel-beam CT: a differentiable Radon transform in PyTorch and the filtered back-projection baseline.

Conventions follow ``skimage.transform.radon(image, theta, circle=True)``, so that the two agree on
images that are zero outside the inscribed circle:

- pixel ``(row, col)`` has its centre at integer coordinates, and the rotation axis is the pixel
  ``(N // 2, N // 2)`` (for even ``N`` half a pixel off the geometric centre);
- for the angle ``theta`` (degrees) the image is resampled bilinearly at
  ``p' = R(theta) (p - c) + c`` with ``p = (col, row)`` and ``R = [[cos, sin], [-sin, cos]]``
  (zeros outside the image), then summed over rows: detector bin ``j`` is the column ``j``;
- our sinograms are ``(A, N)`` (angle, detector bin), the transpose of skimage's ``(N, A)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import iradon

from specfit.errors import SpecfitError

# Elements of one grid_sample output (angles x batch x channels x N x N); more angles are chunked.
_CHUNK_ELEMENTS = 1 << 24


def projection_angles(count: int) -> torch.Tensor:
    """``count`` angles in degrees, evenly spaced over [0, 180) (180 excluded); float64 ``(count,)``."""
    if count < 1:
        raise SpecfitError(f"the number of projection angles must be at least 1, got {count}")
    return torch.arange(count, dtype=torch.float64) * (180.0 / count)


def _rotation_matrices(angles: torch.Tensor, size: int) -> torch.Tensor:
    """``(A, 2, 3)`` float64 ``affine_grid`` matrices (``align_corners=False``) for ``angles`` in degrees.

    In normalised coordinates ``u = (2 p + 1) / N - 1`` the rotation centre ``N // 2`` sits at
    ``d = (2 (N // 2) + 1) / N - 1`` on both axes, and ``p' = R (p - c) + c`` becomes
    ``u' = R u + (I - R) d``.
    """
    radians = torch.deg2rad(angles.to(torch.float64))
    cos, sin = radians.cos(), radians.sin()
    centre = (2 * (size // 2) + 1) / size - 1
    first = torch.stack([cos, sin, (1 - cos - sin) * centre], dim=-1)
    second = torch.stack([-sin, cos, (1 + sin - cos) * centre], dim=-1)
    return torch.stack([first, second], dim=-2)


def project(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Parallel-beam projections (sinograms) of square images; differentiable w.r.t. ``images``.

    Args:
        images: ``(B, C, N, N)`` floating-point images. Matching skimage holds for any image, but the
            projections are only complete for images that are zero outside the inscribed circle
            (see :func:`circle_mask`): anything outside leaves the field of view at some angles.
        angles: ``(A,)`` projection angles in degrees (any device or dtype; moved to the images').

    Returns:
        ``(B, C, A, N)`` sinograms with the images' dtype and device: ``[b, c, a]`` equals
        ``skimage.transform.radon(images[b, c], theta=angles, circle=True)[:, a]``.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise SpecfitError(f"project needs square images of shape (B, C, N, N), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise SpecfitError(f"project needs floating-point images, got {images.dtype}")
    if angles.ndim != 1 or angles.numel() == 0:
        raise SpecfitError(f"project needs a non-empty 1-D tensor of angles, got shape {tuple(angles.shape)}")
    batch, channels, size, _ = images.shape
    stacked = images.reshape(1, batch * channels, size, size)
    matrices = _rotation_matrices(angles.to(images.device), size).to(images.dtype)
    chunk = max(1, _CHUNK_ELEMENTS // (batch * channels * size * size))
    sums = []
    for part in matrices.split(chunk):
        grid = F.affine_grid(part, [len(part), batch * channels, size, size], align_corners=False)
        repeated = stacked.expand(len(part), -1, -1, -1)
        rotated = F.grid_sample(repeated, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        sums.append(rotated.sum(dim=-2))
    return torch.cat(sums).permute(1, 0, 2).reshape(batch, channels, len(angles), size)


def filtered_back_projection(sinogram: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Classical reconstruction: ramp-filtered back-projection by ``skimage.transform.iradon``.

    Args:
        sinogram: ``(A, N)`` sinogram in this module's layout (angle, detector bin).
        angles: ``(A,)`` projection angles in degrees.

    Returns:
        ``(N, N)`` image (float32 for a float32 sinogram, else float64), zero outside the inscribed
        circle.
    """
    sinogram = np.asarray(sinogram)
    angles = np.asarray(angles)
    if sinogram.ndim != 2 or angles.shape != (sinogram.shape[0],):
        raise SpecfitError(
            f"filtered_back_projection needs an (A, N) sinogram and (A,) angles, got {sinogram.shape} "
            f"and {angles.shape}"
        )
    return iradon(sinogram.T, theta=angles, filter_name="ramp", circle=True)


def circle_mask(size: int) -> torch.Tensor:
    """``(N, N)`` bool: pixels within ``N // 2`` of the centre pixel ``(N // 2, N // 2)``, as skimage's
    ``radon(circle=True)`` tests them (boundary included)."""
    if size < 1:
        raise SpecfitError(f"circle_mask needs a positive size, got {size}")
    offsets = torch.arange(size) - size // 2
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (size // 2) ** 2
