"""Test objects for CT and MRI: the Shepp-Logan phantom and random phantoms of ellipses or ellipsoids.

Every phantom is a deterministic float32 NumPy array with values in [0, 1]. Random phantoms are
rasterised analytically: a pixel (voxel) takes an ellipse's intensity when its centre satisfies the
ellipse inequality. Coordinates are normalised so that the inscribed circle (sphere) of
:func:`specfit.operators.projection.circle_mask` is the unit ball: index ``i`` on an axis of
``size`` is at ``(i - size // 2) / (size // 2)``. Every shape lies within radius 0.92 of it, so a
random phantom is zero outside the inscribed circle, as ``radon(circle=True)`` requires.
"""

from __future__ import annotations

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from specfit.errors import SpecfitError
from specfit.operators.projection import circle_mask

MIN_SIZE = 4
_SKULL_AXES = (0.72, 0.92)  # range of the outer ellipse's semi-axes (unit = inscribed radius)
_BRAIN_SCALE = (0.84, 0.9)  # inner ellipse = outer one scaled by this factor
_SKULL, _BRAIN = 1.0, 0.2  # intensities inside the outer and the inner ellipse
_FEATURE_AXES = (0.04, 0.22)  # range of the random ellipses' semi-axes
_FEATURE_INTENSITY = (-0.15, 0.5)  # added to what lies beneath, then clipped to [0, 1]
_FEATURE_COUNT = (8, 12)  # inclusive range of the number of random ellipses


def _check_size(size: int) -> None:
    if size < MIN_SIZE:
        raise SpecfitError(f"a phantom needs a size of at least {MIN_SIZE}, got {size}")


def shepp_logan(size: int) -> np.ndarray:
    """The Shepp-Logan phantom (skimage's 400 x 400 copy), resized with anti-aliasing.

    Below about 32 pixels the anti-aliasing blur spreads the skull past the inscribed circle; those
    pixels are set to zero (``circle_mask``), so the phantom is a valid ``radon(circle=True)`` input.

    Returns:
        ``(size, size)`` float32 in [0, 1], zero outside the inscribed circle.
    """
    _check_size(size)
    image = shepp_logan_phantom()
    if size != image.shape[0]:
        image = resize(image, (size, size), anti_aliasing=True)
    image = np.where(circle_mask(size).numpy(), np.clip(image, 0.0, 1.0), 0.0)
    return image.astype(np.float32)


def _coordinates(size: int, ndim: int) -> np.ndarray:
    """``(size,) * ndim + (ndim,)`` normalised pixel-centre coordinates (unit = inscribed radius)."""
    axis = (np.arange(size) - size // 2) / (size // 2)
    return np.stack(np.meshgrid(*([axis] * ndim), indexing="ij"), axis=-1)


def _random_rotation(rng: np.random.Generator, ndim: int) -> np.ndarray:
    """A random ``(ndim, ndim)`` rotation matrix (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _inside(coords: np.ndarray, centre: np.ndarray, axes: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Bool mask of the points of ``coords`` (``(..., ndim)``) inside the rotated ellipsoid.

    ``rotation``'s columns are the ellipsoid's axis directions, with semi-axes ``axes``.
    """
    local = (coords - centre) @ rotation
    return ((local / axes) ** 2).sum(axis=-1) <= 1.0


def _random_ellipsoid_phantom(size: int, seed: int, ndim: int) -> np.ndarray:
    """A skull (outer ellipsoid), a brain (inner one) and 8 to 12 random ellipsoids inside the brain."""
    _check_size(size)
    rng = np.random.default_rng(seed)
    coords = _coordinates(size, ndim)
    origin = np.zeros(ndim)
    skull_axes = rng.uniform(*_SKULL_AXES, size=ndim)
    skull_rotation = _random_rotation(rng, ndim)
    brain_axes = skull_axes * rng.uniform(*_BRAIN_SCALE)
    values = np.zeros((size,) * ndim)
    values[_inside(coords, origin, skull_axes, skull_rotation)] = _SKULL
    values[_inside(coords, origin, brain_axes, skull_rotation)] = _BRAIN
    # A feature stays inside the brain when its bounding ball (radius = longest semi-axis) lies in
    # the brain's inscribed ball (radius = the brain's shortest semi-axis).
    room = brain_axes.min()
    for _ in range(rng.integers(_FEATURE_COUNT[0], _FEATURE_COUNT[1] + 1)):
        axes = rng.uniform(*_FEATURE_AXES, size=ndim)
        direction = rng.standard_normal(ndim)
        direction /= np.linalg.norm(direction)
        centre = direction * (room - axes.max()) * rng.uniform() ** (1 / ndim)
        intensity = rng.uniform(*_FEATURE_INTENSITY)
        values[_inside(coords, centre, axes, _random_rotation(rng, ndim))] += intensity
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def random_phantom(size: int, seed: int) -> np.ndarray:
    """A random Shepp-Logan-style phantom: skull and brain ellipses plus 8 to 12 random ellipses.

    Returns:
        ``(size, size)`` float32 in [0, 1], zero outside the inscribed circle; the same for the same
        ``seed``.
    """
    return _random_ellipsoid_phantom(size, seed, 2)


def random_phantom_3d(size: int, seed: int) -> np.ndarray:
    """The 3-D counterpart of :func:`random_phantom`, with ellipsoids inside the inscribed sphere.

    Returns:
        ``(size, size, size)`` float32 in [0, 1], zero outside the inscribed sphere; the same for the
        same ``seed``.
    """
    return _random_ellipsoid_phantom(size, seed, 3)
