"""Volume rendering (NeRF) and multi-view scenes: quadrature against a closed form, rays, hierarchical
sampling, occupancy-grid skipping, the radiance field's ranges, loading the Lego scene and bad files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from specfit.errors import SpecfitError
from specfit.models.radiance import RadianceField
from specfit.operators.rendering import (
    OccupancyGrid,
    RenderOptions,
    camera_rays,
    composite,
    hierarchical_depths,
    render_rays,
    render_view,
    stratified_depths,
    turntable_poses,
)
from specfit.signals.scene import load_scene, scene_from_arrays

LEGO = Path("nerf") / "lego_train_100x100.npz"
SLAB_COLOUR = torch.tensor([0.2, 0.4, 0.6])


class Slab(torch.nn.Module):
    """Constant density ``sigma`` and colour where the camera-space depth ``-z`` is in [a, b] (camera
    at the origin looking down -z), zero density elsewhere."""

    def __init__(self, sigma: float, a: float, b: float) -> None:
        super().__init__()
        self.sigma, self.a, self.b = sigma, a, b

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inside = (-points[:, 2] >= self.a) & (-points[:, 2] <= self.b)
        return SLAB_COLOUR.expand(len(points), 3), self.sigma * inside.float()


class Ball(torch.nn.Module):
    """Density 4 inside the ball of radius 0.5 about (0.2, 0, 0), zero outside; colour varies with
    position. Counts the points it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.points = 0

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.points += len(points)
        centre = torch.tensor([0.2, 0.0, 0.0])
        inside = (points - centre).norm(dim=1) < 0.5
        return torch.sigmoid(points * 3.0), 4.0 * inside.float()


def _identity_rays(size: int = 5, focal: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    return camera_rays(size, size, focal, torch.eye(4))


# Quadrature


@pytest.mark.parametrize("white", [True, False])
def test_slab_opacity_matches_closed_form(white):
    """With many samples the opacity through a slab of density sigma and thickness b - a (along the
    viewing axis) is 1 - exp(-sigma (b - a) |d|) within 2e-3, and the background fills the rest."""
    sigma, a, b = 0.7, 3.0, 4.0
    origins, directions = _identity_rays()
    out = render_rays(Slab(sigma, a, b), origins, directions, 2.0, 6.0, RenderOptions(coarse=2000, fine=0,
                      white_background=white))
    expected = 1.0 - torch.exp(-sigma * (b - a) * directions.norm(dim=1))
    assert float(expected.min()) > 0.4 and float(expected.max()) < 0.6  # partial: background visible
    torch.testing.assert_close(out["opacity"], expected, atol=2e-3, rtol=0)
    background = 1.0 if white else 0.0
    colour = SLAB_COLOUR * expected[:, None] + background * (1.0 - expected[:, None])
    torch.testing.assert_close(out["colour"], colour, atol=2e-3, rtol=0)
    # expected depth: the slab's weighted mean depth, un-normalised (times the opacity)
    assert torch.all(out["depth"] / out["opacity"] > a) and torch.all(out["depth"] / out["opacity"] < b)


def test_slab_with_default_sampling():
    """The default 64 coarse + 64 fine samples get the slab's opacity within 0.03."""
    origins, directions = _identity_rays()
    generator = torch.Generator().manual_seed(0)
    out = render_rays(Slab(0.7, 3.0, 4.0), origins, directions, 2.0, 6.0, generator=generator)
    expected = 1.0 - torch.exp(-0.7 * directions.norm(dim=1))
    torch.testing.assert_close(out["opacity"], expected, atol=0.03, rtol=0)


def test_composite_opaque_and_empty():
    """A very dense first sample takes all the weight; an empty ray shows the background."""
    depths = torch.tensor([[2.0, 3.0, 4.0], [2.0, 3.0, 4.0]])
    density = torch.tensor([[1e4, 1.0, 1.0], [0.0, 0.0, 0.0]])
    rgb = torch.rand(2, 3, 3)
    colour, weights, opacity = composite(rgb, density, depths)
    torch.testing.assert_close(weights[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(colour, torch.stack([rgb[0, 0], torch.ones(3)]))
    torch.testing.assert_close(opacity, torch.tensor([1.0, 0.0]))
    # NeRF's 1e10 last interval: the last sample is opaque wherever its density is positive
    _, _, opacity = composite(rgb, torch.tensor([[0.0, 0.0, 1e-3]] * 2), depths, far_delta=1e10)
    torch.testing.assert_close(opacity, torch.ones(2))


def test_stratified_depths():
    """One depth per bin; midpoints without a generator."""
    depths = stratified_depths(7, 2.0, 6.0, 4, torch.Generator().manual_seed(1))
    assert depths.shape == (7, 4)
    bins = torch.floor((depths - 2.0) / 1.0)
    assert torch.equal(bins, torch.arange(4.0).expand(7, 4))
    torch.testing.assert_close(stratified_depths(2, 2.0, 6.0, 4)[0], torch.tensor([2.5, 3.5, 4.5, 5.5]))


# Rays


def test_camera_rays_shapes_and_convention():
    """H*W rays, row-major from the top-left pixel; camera space z = -1, y up, x right."""
    focal = 10.0
    origins, directions = camera_rays(3, 4, focal, torch.eye(4))
    assert origins.shape == directions.shape == (12, 3)
    torch.testing.assert_close(directions[0], torch.tensor([-1.5 / focal, 1.0 / focal, -1.0]))
    torch.testing.assert_close(directions[-1], torch.tensor([1.5 / focal, -1.0 / focal, -1.0]))
    assert torch.all(origins == 0)
    with pytest.raises(SpecfitError, match="4, 4"):
        camera_rays(3, 4, focal, torch.eye(3))


def test_centre_ray_points_at_the_origin():
    """For a camera looking at the origin, the centre pixel's ray passes through the origin."""
    pose = turntable_poses(3, radius=4.0, elevation_deg=30.0)[1]
    origins, directions = camera_rays(5, 7, 20.0, pose)
    centre = 2 * 7 + 3
    torch.testing.assert_close(origins[centre], pose[:3, 3])
    torch.testing.assert_close(directions[centre].norm(), torch.tensor(1.0))
    torch.testing.assert_close(origins[centre] + 4.0 * directions[centre], torch.zeros(3), atol=1e-5, rtol=0)


def test_turntable_poses():
    """Rotations are orthonormal and right-handed, cameras sit at the radius and elevation, look at
    the origin with the world's +z up, and the first sits on the +y axis."""
    poses = turntable_poses(8, radius=3.0, elevation_deg=20.0)
    assert poses.shape == (8, 4, 4) and poses.dtype == torch.float32
    rotations = poses[:, :3, :3]
    torch.testing.assert_close(rotations.transpose(1, 2) @ rotations, torch.eye(3).expand(8, 3, 3), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(8))
    centres = poses[:, :3, 3]
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 3.0))
    torch.testing.assert_close(centres[:, 2], torch.full((8,), 3.0 * math.sin(math.radians(20.0))))
    torch.testing.assert_close(-rotations[:, :, 2], -centres / 3.0)  # viewing axis -z towards the origin
    assert torch.all(rotations[:, 2, 1] > 0)  # camera up has a positive world z
    assert float(centres[0, 1]) > 0 and abs(float(centres[0, 0])) < 1e-6


# Hierarchical sampling


def test_hierarchical_sampling_follows_a_weight_spike():
    """With all the weight on one sample, most fine samples fall in its interval."""
    depths = stratified_depths(3, 2.0, 6.0, 32)
    weights = torch.zeros(3, 32)
    weights[:, 10] = 1.0
    low, high = 0.5 * (depths[0, 9] + depths[0, 10]), 0.5 * (depths[0, 10] + depths[0, 11])
    for generator in (None, torch.Generator().manual_seed(0)):
        fine = hierarchical_depths(depths, weights, 64, generator)
        assert fine.shape == (3, 64)
        assert torch.all(fine[:, 1:] >= fine[:, :-1])
        assert torch.all((fine >= 2.0 - 1e-6) & (fine <= 6.0 + 1e-6))
        within = ((fine >= low) & (fine <= high)).float().mean()
        assert within > 0.95


def test_hierarchical_sampling_is_detached_and_uniform_for_zero_weights():
    depths = stratified_depths(2, 2.0, 6.0, 8).requires_grad_()
    fine = hierarchical_depths(depths, torch.zeros(2, 8, requires_grad=True), 16)
    assert not fine.requires_grad
    # zero weights: the pdf is uniform over the coarse bins, [near, far]
    torch.testing.assert_close(fine[0], 2.0 + (torch.arange(16.0) + 0.5) / 16 * 4.0)


# Occupancy grid


def test_occupancy_grid_update_and_lookup():
    """Cells where the density exceeds the threshold are occupied; the estimate decays by 0.95 per
    update and keeps the maximum; points outside the cube are empty."""
    grid = OccupancyGrid(8, bound=1.0)
    assert grid.fraction == 1.0
    corner = torch.tensor([[0.9, 0.9, 0.9], [-0.9, -0.9, -0.9], [0.0, 0.0, 1.5]])
    assert grid.occupied(corner).tolist() == [True, True, False]

    def dense_corner(points: torch.Tensor) -> torch.Tensor:
        return 10.0 * (points > 0.5).all(dim=1).float()

    grid.update(dense_corner, threshold=1.0)
    assert grid.fraction == pytest.approx(8 / 512)  # the 2 x 2 x 2 cells above 0.5
    assert grid.occupied(corner).tolist() == [True, False, False]
    grid.update(lambda points: torch.zeros(len(points)), threshold=1.0)
    assert float(grid.density.max()) == pytest.approx(9.5)
    assert grid.occupied(corner).tolist() == [True, False, False]


def test_occupancy_grid_keeps_the_field_while_it_is_faint():
    """Below the threshold everywhere, cells above the mean density stay occupied."""
    grid = OccupancyGrid(4, bound=1.0)
    grid.update(lambda points: 0.01 * (points[:, 0] > 0).float(), threshold=1.0, generator=torch.Generator())
    assert grid.fraction == pytest.approx(0.5)


def test_grid_skips_empty_space_without_changing_the_image():
    """A grid that is empty except around the ball renders what the full evaluation renders, and
    evaluates far fewer points."""
    ball = Ball()
    pose = turntable_poses(1, radius=4.0, elevation_deg=10.0)[0]
    origins, directions = camera_rays(12, 12, 14.0, pose)
    options = RenderOptions(coarse=32, fine=32)
    full = render_rays(ball, origins, directions, 2.0, 6.0, options)
    full_points, ball.points = ball.points, 0
    grid = OccupancyGrid(16, bound=1.5)
    centres = (torch.arange(16.0) + 0.5) / 16 * 3.0 - 1.5
    x, y, z = torch.meshgrid(centres, centres, centres, indexing="ij")
    reach = 0.5 + 1.5 / 16  # the ball's radius plus half a cell
    grid.mask = ((x - 0.2).abs() < reach) & (y.abs() < reach) & (z.abs() < reach)
    skipped = render_rays(ball, origins, directions, 2.0, 6.0, options, grid)
    assert float(full["opacity"].max()) > 0.9 and float(full["opacity"].min()) < 0.01  # the ball is in view
    for key in ("colour", "depth", "opacity"):
        torch.testing.assert_close(skipped[key], full[key], atol=1e-5, rtol=0)
    assert ball.points < 0.2 * full_points


def test_grid_rendering_has_gradients():
    """Gradients reach the field's parameters through the points that the grid lets through."""
    torch.manual_seed(0)
    field = RadianceField.build("relu", {"width": 16, "hidden_layers": 1})
    grid = OccupancyGrid(8)
    grid.mask[:4] = False
    origins, directions = camera_rays(4, 4, 5.0, turntable_poses(1)[0])
    out = render_rays(field, origins, directions, 2.0, 6.0, RenderOptions(coarse=8, fine=8), grid,
                      torch.Generator().manual_seed(0))
    out["colour"].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in field.parameters())


# Radiance field


@pytest.mark.parametrize(("name", "params"), [
    ("ff-gaussian", {"width": 32, "hidden_layers": 1, "features": 32, "sigma": 6.0}),
    ("siren", {"width": 32, "hidden_layers": 1}),
])
def test_radiance_field_ranges(name, params):
    """Colours in [0, 1] and finite non-negative densities for a unit- and a signed-range model."""
    torch.manual_seed(0)
    field = RadianceField.build(name, params)
    points = (torch.rand(4096, 3) * 2 - 1) * 2.0  # also outside the box
    rgb, density = field(points)
    assert rgb.shape == (4096, 3) and density.shape == (4096,)
    assert torch.all((rgb >= 0) & (rgb <= 1))
    assert torch.all(density >= 0) and torch.all(torch.isfinite(density))
    assert field.value_range == ("unit" if name == "ff-gaussian" else "signed")


def test_unit_field_starts_nearly_transparent():
    """A unit-range model's output is near 0.5 at initialisation: the rendered view is nearly white."""
    torch.manual_seed(0)
    field = RadianceField.build("ff-gaussian", {"width": 32, "hidden_layers": 1, "features": 32})
    image = render_view(field, (6, 6, 8.0, turntable_poses(1)[0]), RenderOptions(coarse=16, fine=16))
    assert image.shape == (3, 6, 6)
    assert float(image.min()) > 0.8


def test_radiance_field_rejects_bad_settings():
    with pytest.raises(SpecfitError, match="unknown model"):
        RadianceField.build("no-such-model")
    with pytest.raises(SpecfitError, match="value_range"):
        RadianceField(torch.nn.Linear(3, 4), "positive")


# Scenes


def _scene_arrays(views: int = 3, height: int = 6, width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (views, height, width, 4), dtype=np.uint8)
    poses = turntable_poses(views).numpy()
    return images, poses


@pytest.mark.shared_data
def test_lego_scene(shared_data):
    path = shared_data / LEGO
    if not path.is_file():
        pytest.skip(f"{path} not present")
    scene = load_scene(path)
    assert scene.images.shape == (100, 3, 100, 100) and scene.images.dtype == torch.float32
    assert scene.poses.shape == (100, 4, 4) and scene.kind == "nerf"
    assert scene.focal == pytest.approx(138.8889, rel=1e-5)
    assert scene.size == (100, 100)
    assert scene.train_views == range(0, 90) and scene.test_views == range(90, 100)
    assert torch.all(scene.images[:, :, 0, 0] == 1.0)  # white background in the corners
    assert float(scene.images.min()) >= 0.0 and float(scene.images.max()) <= 1.0
    raw = np.load(path)["images"][0, 50, 50].astype(np.float64) / 255
    expected = raw[:3] * raw[3] + 1 - raw[3]
    np.testing.assert_allclose(scene.images[0, :, 50, 50].numpy(), expected, atol=1e-6)
    # the middle ray of every camera passes close to the origin
    for view in (0, 50, 99):
        origins, directions = camera_rays(*scene.camera(view)[:3], scene.poses[view])
        origin, direction = origins[50 * 100 + 50], directions[50 * 100 + 50]
        closest = origin - (origin @ direction) / (direction @ direction) * direction
        assert float(closest.norm()) < 0.1
    small = load_scene(path, max_views=12, resize=25)
    assert small.images.shape == (12, 3, 25, 25) and small.focal == pytest.approx(138.8889 / 4, rel=1e-5)
    assert small.held_out == 6 and len(small.notes) == 4


def test_scene_from_arrays_non_square_and_resize():
    images, poses = _scene_arrays(4, 6, 8)
    scene = scene_from_arrays(images, poses, 10.0, "toy", held_out=1)
    assert scene.size == (6, 8) and scene.train_views == range(0, 3)
    alpha = images[1, 2, 3, 3] / 255
    expected = images[1, 2, 3, :3] / 255 * alpha + 1 - alpha
    np.testing.assert_allclose(scene.images[1, :, 2, 3].numpy(), expected, atol=1e-6)
    resized = scene_from_arrays(images, poses, 10.0, "toy", resize=4)
    assert resized.size == (4, 5) and resized.focal == pytest.approx(10.0 * 5 / 8)


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"poses": None}, "no 'poses'"),
    ({"focal": None}, "neither 'focal'"),
    ({"poses": np.zeros((3, 3, 4), np.float32)}, r"poses must have shape \(V, 4, 4\)"),
    ({"images": np.zeros((3, 6, 8), np.uint8)}, r"images must have shape \(V, H, W, 3 or 4\)"),
    ({"images": np.zeros((3, 6, 8, 2), np.uint8)}, r"images must have shape"),
    ({"focal": np.float64(-1.0)}, "positive"),
    ({"focal": np.zeros(2)}, "one number"),
    ({"images": np.zeros((3, 6, 8, 4), np.float32) + 2.0}, r"\[0, 1\]"),
    ({"images": np.zeros((1, 6, 8, 4), np.uint8), "poses": turntable_poses(1).numpy()}, "at least 2 views"),
    ({"poses": np.eye(4, dtype=np.float32)[None].repeat(2, 0)}, "3 images but 2 poses"),
    ({"poses": np.zeros((3, 4, 4), np.float32)}, r"last row is \[0, 0, 0, 1\]"),
])
def test_bad_scene_files(tmp_path, change, message):
    images, poses = _scene_arrays()
    arrays = {"images": images, "poses": poses, "focal": np.float64(10.0)}
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with pytest.raises(SpecfitError, match=message):
        load_scene(_save(tmp_path / "bad.npz", **arrays))


def test_nan_pose_is_refused(tmp_path):
    images, poses = _scene_arrays()
    poses[1, 0, 3] = np.nan
    with pytest.raises(SpecfitError, match="NaN"):
        load_scene(_save(tmp_path / "nan.npz", images=images, poses=poses, focal=np.float64(10.0)))


def test_camera_angle_replaces_a_missing_focal(tmp_path):
    images, poses = _scene_arrays()
    path = _save(tmp_path / "angle.npz", images=images, poses=poses, camera_angle_x=np.float64(1.0))
    scene = load_scene(path)
    assert scene.focal == pytest.approx(0.5 * 8 / math.tan(0.5))


class Trap:
    """Records it if it is ever unpickled."""

    unpickled = False

    def __setstate__(self, state: dict) -> None:
        Trap.unpickled = True


def test_object_arrays_are_not_unpickled(tmp_path):
    _, poses = _scene_arrays()
    images = np.empty(3, dtype=object)
    images[:] = [Trap(), Trap(), Trap()]
    path = _save(tmp_path / "pickled.npz", images=images.reshape(3, 1, 1, 1), poses=poses, focal=np.ones(()))
    with pytest.raises(SpecfitError, match="images holds Python objects"):
        load_scene(path)
    assert not Trap.unpickled


def test_not_an_archive(tmp_path):
    with pytest.raises(SpecfitError, match="no such file"):
        load_scene(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(SpecfitError, match="not a readable"):
        load_scene(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(SpecfitError, match="single array"):
        load_scene(tmp_path / "single.npy")
