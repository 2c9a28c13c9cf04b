"""Volume rendering of radiance fields: NeRF (Mildenhall et al. 2020) as simplified in the
Fourier-features NeRF experiment (Tancik et al. 2020), with an occupancy grid to skip empty space
(Müller et al. 2022, Instant-NGP).

Conventions:

- Cameras follow the Blender / OpenGL convention of the NeRF synthetic scenes: a ``(4, 4)``
  camera-to-world pose whose camera looks down its -z axis with +y up and +x right, and a
  principal point at the image centre.
- Ray directions are **not** normalised: in camera space a pixel's direction is
  ``((x - W/2) / f, -(y - H/2) / f, -1)`` for pixel centres ``x = col + 0.5``, ``y = row + 0.5``,
  as NeRF does. A depth ``t`` along a ray is therefore the distance along the camera's viewing
  axis (``near`` and ``far`` are planes), and the point is ``origin + t * direction``; the
  Euclidean length of a step ``dt`` is ``dt * |direction|``, which :func:`composite` accounts
  for through ``ray_scale``.
- Rays are ``(R, 3)`` origins and directions, samples ``(R, S)`` depths sorted along each ray.
- Everything is batched torch and follows the device of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from specfit.errors import SpecfitError

DEFAULT_BOUND = 1.5  # half the side of the box around the object, in world units
# Density of the radiance field at model output w (in [-1, 1]): INIT_DENSITY * (MAX_DENSITY /
# INIT_DENSITY) ** w, i.e. INIT_DENSITY at w = 0, MAX_DENSITY at w = 1 (see RadianceField).
INIT_DENSITY = 0.02
MAX_DENSITY = 1000.0
PDF_EPSILON = 1e-5  # added to the coarse weights so that every bin of the pdf can be sampled
EMA_DECAY = 0.95  # Instant-NGP's decay of the occupancy grid's densities per update


@dataclass
class RenderOptions:
    """How :func:`render_rays` samples each ray.

    Attributes:
        coarse: stratified samples per ray (evaluated without gradient when ``fine > 0``).
        fine: samples per ray drawn from the coarse weights (0: render the coarse samples only).
        white_background: composite on white (1) rather than black (0).
        chunk: most points per network evaluation.
        far_delta: length of the last sample's interval, in depth units. The default 0 leaves
            whatever the samples let through to the background, the right model for a known
            background such as the synthetic scenes' white. NeRF's 1e10 makes the last sample
            opaque wherever its density is not zero, which would hide the background behind a
            field whose density is never exactly zero, as :class:`RadianceField`'s.
    """

    coarse: int = 64
    fine: int = 64
    white_background: bool = True
    chunk: int = 65536
    far_delta: float = 0.0


def camera_rays(
    height: int, width: int, focal: float, pose: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through the pixel centres of one camera, row-major.

    Args:
        height, width: image size in pixels.
        focal: focal length in pixels.
        pose: ``(4, 4)`` (or ``(3, 4)``) camera-to-world matrix, Blender convention.

    Returns:
        ``origins (H*W, 3)`` (all the camera's centre) and ``directions (H*W, 3)``, not normalised
        (unit depth along the viewing axis: camera-space z is -1), in ``pose``'s dtype and device.
    """
    if pose.ndim != 2 or pose.shape[1] != 4 or pose.shape[0] not in (3, 4):
        raise SpecfitError(f"a camera pose must be a (4, 4) matrix, got {tuple(pose.shape)}")
    if height < 1 or width < 1 or not focal > 0.0:
        raise SpecfitError(f"need a positive image size and focal length, got {height} x {width}, f {focal}")
    rows = torch.arange(height, dtype=pose.dtype, device=pose.device) + 0.5
    cols = torch.arange(width, dtype=pose.dtype, device=pose.device) + 0.5
    y, x = torch.meshgrid(rows, cols, indexing="ij")
    camera = torch.stack([(x - 0.5 * width) / focal, (0.5 * height - y) / focal, -torch.ones_like(x)], dim=-1)
    directions = camera.reshape(-1, 3) @ pose[:3, :3].T
    origins = pose[:3, 3].expand(height * width, 3)
    return origins, directions


def stratified_depths(
    count_rays: int,
    near: float,
    far: float,
    samples: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(count_rays, samples)`` depths: [near, far] split into ``samples`` equal bins with one
    uniform random depth per bin (NeRF's stratified sampling), or the bins' midpoints when
    ``generator`` is ``None``. Random numbers are drawn on the generator's device."""
    if samples < 1:
        raise SpecfitError(f"need at least 1 sample per ray, got {samples}")
    edges = torch.linspace(near, far, samples + 1, device=device)
    lower, width = edges[:-1], edges[1:] - edges[:-1]
    if generator is None:
        return (lower + 0.5 * width).expand(count_rays, samples).contiguous()
    offsets = torch.rand(count_rays, samples, generator=generator, device=generator.device).to(edges.device)
    return lower + offsets * width


def composite(
    rgb: torch.Tensor,
    density: torch.Tensor,
    depths: torch.Tensor,
    white_background: bool = True,
    far_delta: float = 1e10,
    ray_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha-composite samples along rays (the NeRF quadrature).

    ``delta_i = (t_{i+1} - t_i) * |d|`` (the last one ``far_delta * |d|``), ``alpha_i = 1 -
    exp(-sigma_i delta_i)``, ``T_i = prod_{j<i} (1 - alpha_j)`` (computed as ``exp(-sum_{j<i}
    sigma_j delta_j)``), ``w_i = T_i alpha_i``, colour ``= sum_i w_i c_i + (1 - opacity) *
    background`` with opacity ``= sum_i w_i``.

    Args:
        rgb: ``(R, S, 3)`` colours in [0, 1].
        density: ``(R, S)`` densities >= 0 (per world unit).
        depths: ``(R, S)`` sorted depths.
        white_background: background 1 (white) or 0 (black).
        far_delta: length of the last interval, in depth units.
        ray_scale: ``(R,)`` norms ``|d|`` of the rays' directions (``None``: unit directions).

    Returns:
        ``colour (R, 3)``, ``weights (R, S)``, ``opacity (R,)``.
    """
    steps = depths[:, 1:] - depths[:, :-1]
    deltas = torch.cat([steps, torch.full_like(depths[:, :1], far_delta)], dim=1)
    if ray_scale is not None:
        deltas = deltas * ray_scale[:, None]
    thickness = density * deltas
    alpha = -torch.expm1(-thickness)
    before = torch.cumsum(thickness, dim=1) - thickness  # optical depth in front of each sample
    weights = torch.exp(-before) * alpha
    opacity = weights.sum(dim=1)
    colour = (weights[..., None] * rgb).sum(dim=1)
    if white_background:
        colour = colour + (1.0 - opacity)[:, None]
    return colour, weights, opacity


def hierarchical_depths(
    depths: torch.Tensor,
    weights: torch.Tensor,
    samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(R, samples)`` sorted depths drawn from the coarse weights (NeRF's hierarchical sampling).

    Sample ``i`` of ``depths (R, S)`` (``S >= 2``) stands for the interval between the midpoints to
    its neighbours, the first and last intervals reaching as far beyond their sample as they reach
    inside (for the midpoints of :func:`stratified_depths` these are its bins, [near, far] in
    all). The pdf is piecewise constant with mass ``weights_i + 1e-5`` (normalised) on interval
    ``i``, and the cdf is inverted at sorted uniform ``u`` (evenly spaced ``(k + 0.5) / samples``
    when ``generator`` is ``None``). The result is detached: no gradient flows into the sampling.
    """
    depths, weights = depths.detach(), weights.detach()
    count, bins = depths.shape
    if bins < 2:
        raise SpecfitError(f"hierarchical sampling needs at least 2 coarse samples per ray, got {bins}")
    middles = 0.5 * (depths[:, 1:] + depths[:, :-1])
    first, last = 2.0 * depths[:, :1] - middles[:, :1], 2.0 * depths[:, -1:] - middles[:, -1:]
    edges = torch.cat([first, middles, last], dim=1)
    pdf = weights + PDF_EPSILON
    pdf = pdf / pdf.sum(dim=1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=1).clamp(max=1.0)], dim=1)
    if generator is None:
        u = (torch.arange(samples, dtype=depths.dtype, device=depths.device) + 0.5) / samples
        u = u.expand(count, samples).contiguous()
    else:
        u = torch.rand(count, samples, generator=generator, device=generator.device).to(depths)
        u = torch.sort(u, dim=1).values
    upper = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, bins)
    lower = upper - 1
    cdf_low, cdf_high = cdf.gather(1, lower), cdf.gather(1, upper)
    edge_low, edge_high = edges.gather(1, lower), edges.gather(1, upper)
    span = cdf_high - cdf_low
    fraction = ((u - cdf_low) / torch.where(span > 0, span, torch.ones_like(span))).clamp(0.0, 1.0)
    return edge_low + fraction * (edge_high - edge_low)


class OccupancyGrid:
    """Which cells of a ``resolution^3`` grid over the cube ``[-bound, bound]^3`` may hold density.

    Each cell keeps a density estimate; :meth:`update` decays it and takes the maximum with the
    field's density at one jittered point per cell, as Instant-NGP does (Müller et al. 2022:
    decay 0.95 per update, a cell is occupied when its estimate is above
    ``min(threshold, mean estimate)``, the mean guarding against emptying the grid while the field
    is still faint). The grid starts all occupied; points outside the cube are always empty.

    A field trained with a grid has only been trained where the grid was occupied: render it with
    the same grid. With the default decay, a dense early fog takes about 14 updates to halve its
    estimate; short runs clear it sooner with a smaller ``decay`` (e.g. 0.8).
    """

    def __init__(
        self, resolution: int = 64, bound: float = DEFAULT_BOUND, device: torch.device | str | None = None
    ) -> None:
        if resolution < 1 or not bound > 0.0:
            raise SpecfitError(f"occupancy grid needs resolution >= 1 and bound > 0: {resolution}, {bound}")
        self.resolution = int(resolution)
        self.bound = float(bound)
        self.density = torch.zeros((self.resolution,) * 3, device=device)
        self.mask = torch.ones((self.resolution,) * 3, dtype=torch.bool, device=device)

    @property
    def fraction(self) -> float:
        """The fraction of cells that are occupied."""
        return float(self.mask.float().mean())

    def cells(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inside (P,) bool, cell index (P, 3) long)`` of world ``points (P, 3)``; indices of
        points outside the cube are clamped and meaningless."""
        unit = (points + self.bound) / (2.0 * self.bound)
        inside = ((unit >= 0.0) & (unit <= 1.0)).all(dim=1)
        index = (unit * self.resolution).long().clamp(0, self.resolution - 1)
        return inside, index

    def occupied(self, points: torch.Tensor) -> torch.Tensor:
        """``(P,)`` bool: whether each world point ``(P, 3)`` lies in an occupied cell."""
        inside, index = self.cells(points)
        return inside & self.mask[index[:, 0], index[:, 1], index[:, 2]]

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        threshold: float,
        *,
        decay: float = EMA_DECAY,
        chunk: int = 65536,
        generator: torch.Generator | None = None,
    ) -> None:
        """Re-estimate every cell's density and mark the occupied cells.

        ``density_fn`` maps world points ``(P, 3)`` to densities ``(P,)``; it is called without
        gradient on at most ``chunk`` points at a time, one point per cell, uniformly jittered
        within the cell (the cell centres when ``generator`` is ``None``).
        """
        device = self.density.device
        axis = torch.arange(self.resolution, device=device, dtype=torch.float32)
        index = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        if generator is None:
            jitter = torch.full_like(index, 0.5)
        else:
            jitter = torch.rand(index.shape, generator=generator, device=generator.device).to(device)
        points = (index + jitter) * (2.0 * self.bound / self.resolution) - self.bound
        values = torch.cat([density_fn(points[i : i + chunk]).reshape(-1)
                            for i in range(0, len(points), chunk)])
        self.density = torch.maximum(self.density * decay, values.reshape(self.density.shape).float())
        self.mask = self.density > min(float(threshold), float(self.density.mean()))


def _evaluate(
    field: nn.Module, points: torch.Tensor, grid: OccupancyGrid | None, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb (P, 3)`` and ``density (P,)`` at ``points (P, 3)``; with a grid only the points in
    occupied cells go through ``field`` (the others get density 0 and colour 0)."""
    if grid is None:
        parts = [field(points[i : i + chunk]) for i in range(0, len(points), chunk)]
        if not parts:
            return points.new_zeros(0, 3), points.new_zeros(0)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    index = torch.nonzero(grid.occupied(points)).squeeze(1)
    rgb, density = _evaluate(field, points[index], None, chunk)
    return (points.new_zeros(len(points), 3).index_copy(0, index, rgb.to(points.dtype)),
            points.new_zeros(len(points)).index_copy(0, index, density.to(points.dtype)))


def _shade(
    field: nn.Module,
    origins: torch.Tensor,
    directions: torch.Tensor,
    depths: torch.Tensor,
    options: RenderOptions,
    grid: OccupancyGrid | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Evaluate the field at ``depths (R, S)`` along the rays and composite: ``composite``'s output."""
    count, samples = depths.shape
    points = origins[:, None, :] + directions[:, None, :] * depths[..., None]
    rgb, density = _evaluate(field, points.reshape(-1, 3), grid, options.chunk)
    return composite(rgb.reshape(count, samples, 3), density.reshape(count, samples), depths,
                     options.white_background, options.far_delta, directions.norm(dim=1))


def render_rays(
    field: nn.Module,
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: float,
    far: float,
    options: RenderOptions | None = None,
    grid: OccupancyGrid | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Render rays ``origins (R, 3)``, ``directions (R, 3)`` (see the module conventions).

    A coarse pass at ``options.coarse`` stratified depths is evaluated without gradient; its
    weights give ``options.fine`` hierarchical depths, and the colour is rendered, with gradient,
    from the sorted union of coarse and fine depths. Unlike NeRF, which trains a separate coarse
    network, the same ``field`` serves both passes (it halves the work per step on a CPU). With
    ``fine = 0`` the coarse depths are rendered with gradient. With an occupancy ``grid``, points
    in its empty cells are never evaluated (density 0). ``generator`` draws the random depths
    (``None``: deterministic bin midpoints and evenly spaced fine samples).

    ``field`` maps ``(P, 3)`` world points to ``(rgb (P, 3), density (P,))``, e.g. a
    :class:`RadianceField`.

    Returns:
        ``{"colour": (R, 3), "depth": (R,) expected depth (weights-averaged, un-normalised),
        "opacity": (R,)}``.
    """
    options = options or RenderOptions()
    depths = stratified_depths(len(origins), near, far, options.coarse, generator, device=origins.device)
    if options.fine > 0:
        with torch.no_grad():
            _, weights, _ = _shade(field, origins, directions, depths, options, grid)
        fine = hierarchical_depths(depths, weights, options.fine, generator)
        depths = torch.sort(torch.cat([depths, fine], dim=1), dim=1).values
    colour, weights, opacity = _shade(field, origins, directions, depths, options, grid)
    return {"colour": colour, "depth": (weights * depths).sum(dim=1), "opacity": opacity}


@torch.no_grad()
def render_view(
    field: nn.Module,
    camera: tuple[int, int, float, torch.Tensor],
    options: RenderOptions | None = None,
    grid: OccupancyGrid | None = None,
    *,
    near: float = 2.0,
    far: float = 6.0,
    chunk: int = 4096,
) -> torch.Tensor:
    """The ``(3, H, W)`` image that ``field`` renders for ``camera = (H, W, focal, pose (4, 4))``
    (e.g. :meth:`specfit.signals.scene.Scene.camera`), without gradient, ``chunk`` rays at a time,
    with deterministic samples. The pose's device is used for the rays."""
    height, width, focal, pose = camera
    origins, directions = camera_rays(height, width, focal, pose)
    colours = []
    for start in range(0, len(origins), chunk):
        rays = slice(start, start + chunk)
        rendered = render_rays(field, origins[rays], directions[rays], near, far, options, grid)
        colours.append(rendered["colour"])
    return torch.cat(colours).T.reshape(3, height, width)


def turntable_poses(count: int, radius: float = 4.0, elevation_deg: float = 30.0) -> torch.Tensor:
    """``(count, 4, 4)`` float32 camera-to-world poses on a circle around the world's +z axis (up in
    the Blender scenes), ``elevation_deg`` above the xy plane at distance ``radius`` from the
    origin, each looking at the origin with +y up, starting on the +y axis (as the first training
    view of the Lego scene) and turning counter-clockwise seen from above."""
    if count < 1 or not radius > 0.0:
        raise SpecfitError(f"need count >= 1 and radius > 0, got {count}, {radius}")
    azimuth = torch.arange(count, dtype=torch.float64) * (2.0 * math.pi / count) + 0.5 * math.pi
    elevation = math.radians(elevation_deg)
    if abs(math.cos(elevation)) < 1e-6:
        raise SpecfitError("the elevation must not be +-90 degrees (the view direction would be vertical)")
    centre = radius * torch.stack([
        math.cos(elevation) * torch.cos(azimuth),
        math.cos(elevation) * torch.sin(azimuth),
        torch.full_like(azimuth, math.sin(elevation)),
    ], dim=1)
    backward = centre / radius  # the camera's +z axis points away from the origin
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(backward)
    right = torch.linalg.cross(up, backward)
    right = right / right.norm(dim=1, keepdim=True)
    camera_up = torch.linalg.cross(backward, right)
    poses = torch.eye(4, dtype=torch.float64).repeat(count, 1, 1)
    poses[:, :3, 0], poses[:, :3, 1], poses[:, :3, 2], poses[:, :3, 3] = right, camera_up, backward, centre
    return poses.float()
