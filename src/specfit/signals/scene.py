"""Multi-view scenes for NeRF: posed RGB(A) images of one object, with the camera's focal length.

The file format is the one of the Fourier-features NeRF experiment (Tancik et al. 2020): an
``.npz`` with ``images`` ``(V, H, W, 3 or 4)`` (uint8, or floats in [0, 1]), ``poses``
``(V, 4, 4)`` camera-to-world matrices and ``focal`` (pixels; ``camera_angle_x``, the horizontal
field of view in radians, is used when ``focal`` is absent). Poses follow the Blender / OpenGL
convention of the NeRF synthetic scenes (Mildenhall et al. 2020): the camera looks down its -z
axis with +y up and +x to the right; the principal point is the image centre.

RGBA images are composited on a white background, ``rgb * a + (1 - a)``, as NeRF does for the
synthetic scenes. The last ``held_out`` views are the test views.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, check_size

DEFAULT_HELD_OUT = 10
MIN_SIDE = 4


@dataclass
class Scene:
    """Posed views of one object.

    Attributes:
        images: ``(V, 3, H, W)`` float32 RGB in [0, 1], alpha already composited on white.
        poses: ``(V, 4, 4)`` float32 camera-to-world matrices (camera looks down -z, y up).
        focal: focal length in pixels (the same horizontally and vertically).
        near, far: depth range of the rays, in world units along the camera's -z axis.
        held_out: how many views, the last ones, are kept for testing.
        name: short name (the file stem).
        source: the path it was read from, if any.
        notes: what loading did (compositing, resizing, fewer views).
        kind: ``"nerf"`` (a class attribute, as :attr:`specfit.signals.base.Signal.kind`).
    """

    images: torch.Tensor
    poses: torch.Tensor
    focal: float
    name: str
    near: float = 2.0
    far: float = 6.0
    held_out: int = DEFAULT_HELD_OUT
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "nerf"

    @property
    def views(self) -> int:
        """The number of views ``V``."""
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of every view."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def train_views(self) -> range:
        """Indices of the training views: all but the last ``held_out``."""
        return range(0, self.views - self.held_out)

    @property
    def test_views(self) -> range:
        """Indices of the test views: the last ``held_out``."""
        return range(self.views - self.held_out, self.views)

    def camera(self, view: int) -> tuple[int, int, float, torch.Tensor]:
        """``(H, W, focal, pose (4, 4))`` of ``view``, as :func:`specfit.operators.rendering.render_view`
        takes it."""
        height, width = self.size
        return height, width, self.focal, self.poses[view]


def _is_number(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer))


def _to_rgb(images: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    """``(V, H, W, C)`` uint8 or float pixels -> float32 ``(V, H, W, 3)`` in [0, 1], on white."""
    if images.dtype == np.uint8:
        values = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        values = images.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise SpecfitError(f"{where}: images contain NaN or infinite values")
        if values.min() < 0.0 or values.max() > 1.0:
            raise SpecfitError(f"{where}: float images must be in [0, 1], got "
                               f"[{values.min():.4g}, {values.max():.4g}]")
    else:
        raise SpecfitError(f"{where}: images must be uint8 or float, got {images.dtype}")
    if values.shape[-1] == 3:
        return values, []
    alpha = values[..., 3:]
    return values[..., :3] * alpha + (1.0 - alpha), ["RGBA composited on a white background"]


def _resize(images: torch.Tensor, focal: float, short_side: int) -> tuple[torch.Tensor, float, list[str]]:
    """Downscale ``(V, 3, H, W)`` so the shorter side is ``short_side`` (antialiased bilinear, never
    upscaling); the focal length scales with the width."""
    height, width = int(images.shape[2]), int(images.shape[3])
    if short_side < MIN_SIDE:
        raise SpecfitError(f"resize must be at least {MIN_SIDE}, got {short_side}")
    if min(height, width) <= short_side:
        return images, focal, []
    factor = short_side / min(height, width)
    size = (max(MIN_SIDE, round(height * factor)), max(MIN_SIDE, round(width * factor)))
    resized = torch.nn.functional.interpolate(
        images, size=size, mode="bilinear", antialias=True, align_corners=False
    ).clamp(0.0, 1.0)
    return resized, focal * size[1] / width, [f"resized from {height} x {width} to {size[0]} x {size[1]}"]


def scene_from_arrays(
    images: np.ndarray,
    poses: np.ndarray,
    focal: float,
    name: str,
    *,
    near: float = 2.0,
    far: float = 6.0,
    held_out: int = DEFAULT_HELD_OUT,
    max_views: int | None = None,
    resize: int | None = None,
    source: str | None = None,
) -> Scene:
    """Build a :class:`Scene` from ``images`` ``(V, H, W, 3 or 4)`` (uint8 or floats in [0, 1]) and
    ``poses`` ``(V, 4, 4)`` camera-to-world matrices.

    ``max_views`` keeps the first views only; the test views are then the last ``held_out`` of
    those (``held_out`` is lowered to ``V // 2``, with a note, when it is more than that).
    ``resize`` downscales to that shorter side, scaling ``focal`` with it.
    """
    where = source or name
    images, poses = np.asarray(images), np.asarray(poses)
    if images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise SpecfitError(f"{where}: images must have shape (V, H, W, 3 or 4), got {tuple(images.shape)}")
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise SpecfitError(f"{where}: poses must have shape (V, 4, 4), got {tuple(poses.shape)}")
    if poses.shape[0] != images.shape[0]:
        raise SpecfitError(f"{where}: {images.shape[0]} images but {poses.shape[0]} poses")
    if not _is_number(poses.dtype):
        raise SpecfitError(f"{where}: poses must be numbers, got {poses.dtype}")
    trimmed = 0
    if max_views is not None:
        if max_views < 2:
            raise SpecfitError(f"max_views must be at least 2, got {max_views}")
        if images.shape[0] > max_views:
            trimmed = images.shape[0]
            images, poses = images[:max_views], poses[:max_views]
    views, height, width = images.shape[:3]
    if views < 2:
        raise SpecfitError(f"{where}: a scene needs at least 2 views, got {views}")
    if min(height, width) < MIN_SIDE:
        raise SpecfitError(f"{where}: views of (H, W) = ({height}, {width}) are too small "
                           f"(at least {MIN_SIDE} pixels a side)")
    poses = poses.astype(np.float32)
    if not np.all(np.isfinite(poses)):
        raise SpecfitError(f"{where}: poses contain NaN or infinite values")
    if not np.allclose(poses[:, 3], [0.0, 0.0, 0.0, 1.0], atol=1e-4):
        raise SpecfitError(f"{where}: poses must be camera-to-world matrices whose last row is [0, 0, 0, 1]")
    focal = float(focal)
    if not math.isfinite(focal) or focal <= 0.0:
        raise SpecfitError(f"{where}: the focal length must be a positive number of pixels, got {focal}")
    if not 0.0 < near < far or not math.isfinite(far):
        raise SpecfitError(f"{where}: need 0 < near < far, got near {near}, far {far}")
    if held_out < 1:
        raise SpecfitError(f"held_out must be at least 1, got {held_out}")
    rgb, notes = _to_rgb(images, where)
    if trimmed:
        notes.append(f"kept the first {views} of {trimmed} views")
    values = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
    if resize is not None:
        values, focal, resized = _resize(values, focal, resize)
        notes += resized
    if held_out > views // 2:
        notes.append(f"{views} views: {max(1, views // 2)} held out instead of {held_out}")
        held_out = max(1, views // 2)
    return Scene(images=values, poses=torch.from_numpy(poses), focal=focal, name=name, near=near, far=far,
                 held_out=held_out, source=source, notes=notes)


def _member_shape(archive: zipfile.ZipFile, key: str, where: Path) -> tuple[int, ...]:
    """The shape that the header of ``key.npy`` in an ``.npz`` claims (reads the header only);
    refuses arrays of Python objects, which only unpickling could read."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with archive.open(f"{key}.npy") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in readers:
                raise SpecfitError(f"{where}: {key} has an unsupported .npy format version")
            shape, _, dtype = readers[version](handle)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise SpecfitError(f"{where}: {key} is not a readable array ({' '.join(str(exc).split())})") from exc
    if dtype.hasobject:
        raise SpecfitError(f"{where}: {key} holds Python objects (only numbers are read: no unpickling)")
    return tuple(shape)


def _read(archive: np.lib.npyio.NpzFile, key: str, where: Path) -> np.ndarray:
    """``archive[key]`` once its header passes :func:`_member_shape`."""
    _member_shape(archive.zip, key, where)
    try:
        return np.asarray(archive[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise SpecfitError(f"{where}: {key} is not a readable array ({' '.join(str(exc).split())})") from exc


def load_scene(
    path: Path | str,
    max_views: int | None = None,
    resize: int | None = None,
    *,
    held_out: int = DEFAULT_HELD_OUT,
    near: float = 2.0,
    far: float = 6.0,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> Scene:
    """Read a NeRF scene from an ``.npz`` (see the module docstring for its keys).

    Never unpickles: an archive holding object arrays is refused. The pixel count ``V x H x W``
    that the header of ``images`` claims is checked against ``max_samples`` before reading.
    ``max_views``, ``resize``, ``held_out``, ``near`` and ``far`` are as in
    :func:`scene_from_arrays`.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecfitError(f"{path}: no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpecfitError(f"{path} is not a readable .npz archive ({' '.join(str(exc).split())})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise SpecfitError(f"{path} is a single array, not an .npz archive with images, poses and focal")
    with archive:
        for key in ("images", "poses"):
            if key not in archive.files:
                held = ", ".join(archive.files) or "nothing"
                raise SpecfitError(f"{path} has no {key!r} array (it holds {held})")
        if "focal" not in archive.files and "camera_angle_x" not in archive.files:
            raise SpecfitError(f"{path} has neither 'focal' nor 'camera_angle_x'")
        shape = _member_shape(archive.zip, "images", path)
        if len(shape) != 4:
            raise SpecfitError(f"{path}: images must have shape (V, H, W, 3 or 4), got {shape}")
        check_size(path, "pixels", shape[:3], max_samples)
        focal_key = "focal" if "focal" in archive.files else "camera_angle_x"
        images, poses, lens = (_read(archive, key, path) for key in ("images", "poses", focal_key))
    if lens.size != 1 or not _is_number(lens.dtype):
        raise SpecfitError(f"{path}: {focal_key} must be one number, got shape {lens.shape} of {lens.dtype}")
    focal = float(lens.reshape(()))
    if focal_key == "camera_angle_x":
        if not 0.0 < focal < math.pi:
            raise SpecfitError(f"{path}: camera_angle_x must be in (0, pi) radians, got {focal}")
        focal = 0.5 * shape[2] / math.tan(0.5 * focal)
    name = path.name[: -len(".npz")] if path.name.lower().endswith(".npz") else path.stem
    return scene_from_arrays(images, poses, focal, name, near=near, far=far, held_out=held_out,
                             max_views=max_views, resize=resize, source=str(path))
