"""Shapes from meshes: loading and normalisation, inside/outside, signed distance, samples, marching
cubes, mesh output, IoU and Chamfer distance (methods.md 2.2)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("point_cloud_utils")

from specfit.errors import SpecfitError  # noqa: E402
from specfit.metrics import chamfer_distance, iou  # noqa: E402
from specfit.signals.shape import (  # noqa: E402
    MARGIN,
    MISSING,
    Shape,
    boundary_test_points,
    evaluation_sets,
    extract_mesh,
    grid_points,
    load_mesh,
    occupancy,
    occupancy_grid,
    sample_points,
    sample_surface,
    sdf_grid,
    signed_distance,
    surface_samples,
    to_original_frame,
    uniform_test_points,
    write_mesh,
)

RADIUS = 0.9  # a sphere's radius after normalisation: its longest half-extent maps to MARGIN


def _write(mesh, path: Path) -> Path:
    mesh.export(path)
    return path


@pytest.fixture(scope="module")
def sphere(tmp_path_factory: pytest.TempPathFactory) -> Shape:
    """An icosphere (2562 vertices) of radius 2 centred at (1, 2, 3), read back from an .obj."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=2.0)
    mesh.apply_translation([1.0, 2.0, 3.0])
    return load_mesh(_write(mesh, tmp_path_factory.mktemp("sphere") / "sphere.obj"))


def _random_points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 3))


def test_sphere_occupancy_matches_analytic_ball(sphere):
    """Away from the surface the winding-number inside test agrees with |x| < r (> 99.5 %)."""
    points = _random_points(20000, seed=1)
    radius = np.linalg.norm(points, axis=1)
    away = np.abs(radius - RADIUS) > 0.01
    inside = occupancy(sphere, points)
    assert inside.dtype == np.bool_ and inside.shape == (20000,)
    agreement = np.mean(inside[away] == (radius[away] < RADIUS))
    assert agreement > 0.995, agreement
    assert 0.2 < inside.mean() < 0.5  # the ball fills 4/3 pi 0.9^3 / 8 = 38 % of the cube


def test_sphere_signed_distance_matches_analytic(sphere):
    """sdf = |x| - r up to the tessellation (flat faces sit < 1e-3 inside the true sphere), negative
    inside, float32."""
    points = _random_points(5000, seed=2)
    sdf = signed_distance(sphere, points)
    assert sdf.dtype == np.float32 and sdf.shape == (5000,)
    exact = np.linalg.norm(points, axis=1) - RADIUS
    assert np.max(np.abs(sdf - exact)) < 2e-3
    away = np.abs(exact) > 0.01
    assert np.all((sdf[away] < 0) == (exact[away] < 0))


def test_torus_occupancy_from_ply(tmp_path):
    """A torus (a hole through the middle) from a .ply: inside iff (rho - R)^2 + z^2 < r^2."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=64, minor_sections=32)
    shape = load_mesh(_write(mesh, tmp_path / "torus.ply"))
    scale = MARGIN / 1.3
    assert shape.scale == pytest.approx(scale)
    points = _random_points(20000, seed=3)
    tube = np.sqrt((np.hypot(points[:, 0], points[:, 1]) - scale) ** 2 + points[:, 2] ** 2)
    away = np.abs(tube - 0.3 * scale) > 0.01
    inside = occupancy(shape, points)
    assert np.mean(inside[away] == (tube[away] < 0.3 * scale)) > 0.995
    assert not occupancy(shape, np.zeros((1, 3)))[0]  # the centre is in the hole


def test_normalisation_maps_bbox_into_margin_and_back(tmp_path):
    """A 2 x 4 x 6 box centred at (10, -3, 5): bbox becomes [-0.3, 0.3] x [-0.6, 0.6] x [-0.9, 0.9]."""
    box = trimesh.creation.box(extents=[2.0, 4.0, 6.0])
    box.apply_translation([10.0, -3.0, 5.0])
    shape = load_mesh(_write(box, tmp_path / "box.obj"))
    np.testing.assert_allclose(shape.center, [10.0, -3.0, 5.0], atol=1e-12)
    assert shape.scale == pytest.approx(0.3)
    np.testing.assert_allclose(shape.vertices.max(axis=0), [0.3, 0.6, 0.9], atol=1e-12)
    np.testing.assert_allclose(shape.vertices.min(axis=0), [-0.3, -0.6, -0.9], atol=1e-12)
    original = to_original_frame(shape, shape.vertices)
    np.testing.assert_allclose(np.sort(original, axis=0), np.sort(box.vertices, axis=0), atol=1e-12)
    assert shape.vertices.dtype == np.float64 and shape.faces.dtype == np.int64
    assert shape.faces.shape == (12, 3) and shape.notes == [] and shape.watertight
    description = json.loads(json.dumps(shape.describe()))
    assert description["kind"] == "shape" and description["name"] == "box"
    assert description["vertices"] == 8 and description["faces"] == 12 and description["watertight"] is True
    assert description["scale"] == pytest.approx(0.3)


def test_inside_out_mesh_is_flipped_with_note(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.invert()
    shape = load_mesh(_write(mesh, tmp_path / "inverted.obj"))
    assert any("inside out" in note for note in shape.notes)
    assert occupancy(shape, np.zeros((1, 3)))[0]
    assert signed_distance(shape, np.zeros((1, 3)))[0] < -0.8


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("vertices_only.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n", "no faces"),
        ("empty.obj", b"", "is empty"),
        ("empty.ply", b"", "is empty"),
        ("garbage.obj", bytes(range(256)) * 4, "not a readable mesh"),
        ("garbage.ply", bytes(range(255, -1, -1)) * 4, "not a readable mesh"),
        ("garbage.glb", b"\x00\xff" * 300, "not a readable mesh"),
        ("text.stl", b"solid nothing\nendsolid nothing\n", "text.stl"),
    ],
)
def test_malformed_files_raise_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SpecfitError) as info:
        load_mesh(path)
    text = str(info.value)
    assert message in text and name in text and "\n" not in text


def test_point_cloud_ply_is_not_a_mesh(tmp_path):
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((20, 3))).export(path)
    with pytest.raises(SpecfitError, match="20 vertices but no faces"):
        load_mesh(path)


def test_degenerate_and_flat_meshes_raise(tmp_path):
    point = tmp_path / "point.obj"
    point.write_text("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n")
    with pytest.raises(SpecfitError, match="degenerate"):
        load_mesh(point)
    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(SpecfitError, match="flat"):
        load_mesh(flat, allow_open=True)


def test_open_mesh_needs_allow_open_then_gets_a_note(tmp_path):
    """An icosphere with 10 faces removed: refused by default; with allow_open it loads with a warning
    note and the winding number still tells inside from outside away from the hole."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    open_mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[10:])
    assert not open_mesh.is_watertight
    path = _write(open_mesh, tmp_path / "holey.obj")
    with pytest.raises(SpecfitError, match=r"not watertight.*allow_open"):
        load_mesh(path)
    shape = load_mesh(path, allow_open=True)
    assert not shape.watertight and not shape.describe()["watertight"]
    assert len(shape.notes) == 1 and shape.notes[0].startswith("warning:") and "holey.obj" in shape.notes[0]
    points = _random_points(5000, seed=4)
    radius = np.linalg.norm(points, axis=1)
    away = np.abs(radius - RADIUS) > 0.05
    assert np.mean(occupancy(shape, points)[away] == (radius[away] < RADIUS)) > 0.99


def test_missing_optional_dependencies_raise_install_hint(tmp_path, monkeypatch, sphere):
    monkeypatch.setitem(sys.modules, "point_cloud_utils", None)
    with pytest.raises(SpecfitError) as info:
        load_mesh(tmp_path / "any.obj")
    assert str(info.value) == MISSING and "specfit[shapes]" in MISSING
    with pytest.raises(SpecfitError, match="specfit"):
        occupancy(sphere, np.zeros((1, 3)))


def test_sample_points_layout_labels_and_determinism(sphere):
    samples = sample_points(sphere, n_uniform=3000, n_surface=2000, surface_sigma=0.01, seed=5)
    points, inside, sdf = samples
    assert points.shape == (5000, 3) and points.dtype == np.float32
    assert inside.shape == (5000,) and inside.dtype == np.bool_
    assert sdf.shape == (5000,) and sdf.dtype == np.float32 and samples.n_uniform == 3000
    assert np.all(inside == (sdf < 0))
    uniform, near = points[:3000], points[3000:]
    assert np.all(np.abs(uniform) <= 1.0)
    near_radius = np.linalg.norm(near, axis=1)
    assert np.std(near_radius - RADIUS) == pytest.approx(0.01, rel=0.15)  # the noise, seen radially
    assert np.abs(np.mean(near_radius - RADIUS)) < 2e-3
    assert np.abs(inside[3000:].mean() - 0.5) < 0.05  # half the perturbed surface points are inside
    again = sample_points(sphere, 3000, 2000, 0.01, seed=5)
    other = sample_points(sphere, 3000, 2000, 0.01, seed=6)
    assert np.array_equal(again.points, points) and np.array_equal(again.sdf, sdf)
    assert not np.array_equal(other.points, points)
    light = sample_points(sphere, 3000, 2000, 0.01, seed=5, with_sdf=False)
    assert light.sdf is None and np.array_equal(light.occupancy, inside)
    with pytest.raises(SpecfitError):
        sample_points(sphere, 0, 0, seed=0)


def test_evaluation_sets_are_labelled_and_differ_from_training(sphere):
    train = sample_points(sphere, n_uniform=500, n_surface=0, seed=0, with_sdf=False)
    uniform = uniform_test_points(500, seed=0)
    assert uniform.shape == (500, 3) and uniform.dtype == np.float32
    assert not np.array_equal(uniform, train.points)
    assert np.array_equal(uniform, uniform_test_points(500, seed=0))
    boundary = boundary_test_points(sphere, 400, seed=0, sigma=0.02)
    assert np.std(np.linalg.norm(boundary, axis=1) - RADIUS) == pytest.approx(0.02, rel=0.2)
    sets = evaluation_sets(sphere, n=400, seed=0)
    assert set(sets) == {"uniform", "boundary"}
    for samples in sets.values():
        assert samples.points.shape == (400, 3) and samples.sdf is None
        truth = np.linalg.norm(samples.points, axis=1) < RADIUS
        assert np.mean(samples.occupancy == truth) > 0.97


def test_surface_samples_lie_on_the_surface(sphere):
    points = surface_samples(sphere, 3000, seed=0)
    assert points.shape == (3000, 3) and points.dtype == np.float32
    assert np.max(np.abs(signed_distance(sphere, points))) < 1e-5
    assert np.abs(points.mean(axis=0)).max() < 0.05  # spread evenly over the sphere
    assert np.array_equal(points, surface_samples(sphere, 3000, seed=0))


def test_occupancy_and_sdf_grids(sphere):
    grid = occupancy_grid(sphere, 17)
    assert grid.shape == (1, 17, 17, 17) and grid.dtype == torch.float32
    assert set(torch.unique(grid).tolist()) == {0.0, 1.0}
    assert grid[0, 8, 8, 8] == 1.0 and grid[0, 0, 0, 0] == 0.0  # centre (0, 0, 0), corner (-1, -1, -1)
    assert grid[0, 16, 8, 8] == 0.0 and grid[0, 15, 8, 8] == 1.0  # x = 1 outside, x = 0.875 inside
    sdf = sdf_grid(sphere, 9)
    assert sdf.shape == (1, 9, 9, 9)
    exact = np.linalg.norm(grid_points(9), axis=1).reshape(9, 9, 9) - RADIUS
    np.testing.assert_allclose(sdf[0].numpy(), exact, atol=2e-3)
    with pytest.raises(SpecfitError):
        occupancy_grid(sphere, 1)


def test_iou_on_hand_computed_sets():
    predicted = np.array([True, True, False, False, True])
    target = np.array([True, False, True, False, True])
    assert iou(predicted, target) == pytest.approx(2 / 4)
    assert iou(torch.tensor(predicted), torch.tensor(target)) == pytest.approx(0.5)
    assert iou(target, target) == 1.0
    assert iou(~target, target) == 0.0
    assert iou(np.zeros(4, bool), np.zeros(4, bool)) == 1.0  # both empty: perfect agreement
    assert iou(np.zeros(4, bool), np.array([1, 0, 0, 0], bool)) == 0.0
    with pytest.raises(ValueError, match="boolean"):
        iou(np.ones(3), np.ones(3, bool))
    with pytest.raises(ValueError, match="same shape"):
        iou(np.ones(3, bool), np.ones(4, bool))


def test_chamfer_distance_identity_and_shift():
    """Points on a unit lattice moved by 0.1: every nearest neighbour is the moved copy."""
    lattice = np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    assert chamfer_distance(lattice, lattice) == 0.0
    shift = np.array([0.06, 0.0, 0.08])  # length 0.1
    assert chamfer_distance(lattice, lattice + shift) == pytest.approx(0.1)
    assert chamfer_distance(torch.tensor(lattice), torch.tensor(lattice[:5] + shift)) > 0.1
    one = np.zeros((1, 3))
    # one -> set: 1 (to (0, 0, 1)); set -> one: (5 + 1) / 2 = 3; Chamfer (1 + 3) / 2
    assert chamfer_distance(one, np.array([[0.0, 3.0, 4.0], [0.0, 0.0, 1.0]])) == pytest.approx(2.0)
    assert chamfer_distance(one, np.zeros((0, 3))) == float("inf")


def test_marching_cubes_of_analytic_sphere(sphere, tmp_path):
    """The 0-level set of |x| - 0.9 on a 48^3 grid is within a small Chamfer distance of the mesh."""
    resolution = 48
    field = (np.linalg.norm(grid_points(resolution), axis=1) - RADIUS).reshape((resolution,) * 3)
    vertices, faces = extract_mesh(field, 0.0, inside="below")
    assert vertices.dtype == np.float64 and faces.dtype == np.int64 and len(faces) > 1000
    assert np.abs(np.linalg.norm(vertices, axis=1) - RADIUS).max() < 0.01
    surface = trimesh.Trimesh(vertices, faces)
    assert surface.is_watertight and surface.volume == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)
    assert np.abs(signed_distance(sphere, vertices)).mean() < 2e-3
    # Chamfer of 5000-point samples has a floor (~0.02, the sampling spacing): compare with two
    # samples of the true surface, and with a sphere 5 % too small
    truth = surface_samples(sphere, 5000, seed=1)
    floor = chamfer_distance(surface_samples(sphere, 5000, seed=0), truth)
    cd = chamfer_distance(sample_surface(vertices, faces, 5000, seed=0), truth)
    assert cd < floor + 0.003
    assert chamfer_distance(0.95 * sample_surface(vertices, faces, 5000, seed=0), truth) > floor + 0.02
    # an occupancy-like field (inside above the level) is also oriented outward
    vertices, faces = extract_mesh(torch.from_numpy(-field), 0.0, inside="above")
    assert trimesh.Trimesh(vertices, faces).volume > 0


def test_marching_cubes_level_not_crossed_gives_empty_mesh(tmp_path):
    for values in (np.zeros((8, 8, 8)), np.ones((8, 8, 8))):
        vertices, faces = extract_mesh(values, 0.5)
        assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    assert chamfer_distance(vertices, np.zeros((3, 3))) == float("inf")
    with pytest.raises(SpecfitError, match="empty"):
        write_mesh(tmp_path / "empty.ply", vertices, faces)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SpecfitError, match="non-finite"):
        extract_mesh(np.full((4, 4, 4), np.nan), 0.5)


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_write_mesh_round_trip(tmp_path, suffix, sphere):
    path = write_mesh(tmp_path / f"out{suffix}", sphere.vertices, sphere.faces)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]  # no staging leftovers
    back = trimesh.load(path, force="mesh")
    assert len(back.faces) == len(sphere.faces) and back.is_watertight
    np.testing.assert_allclose(np.sort(back.vertices, axis=0), np.sort(sphere.vertices, axis=0), atol=1e-6)
    with pytest.raises(SpecfitError, match=r"\.ply or \.obj"):
        write_mesh(tmp_path / "out.stl", sphere.vertices, sphere.faces)


@pytest.mark.shared_data
def test_real_meshes_load(shared_data, capsys):
    armadillo = load_mesh(shared_data / "meshes" / "armadillo.obj")
    assert armadillo.vertices.shape == (49990, 3) and armadillo.faces.shape == (99976, 3)
    assert armadillo.watertight and armadillo.notes == []
    assert np.abs(armadillo.vertices).max() == pytest.approx(MARGIN)
    start = time.perf_counter()
    samples = sample_points(armadillo, 50000, 50000, seed=0, with_sdf=False)
    seconds = time.perf_counter() - start
    assert 0.02 < samples.occupancy[:50000].mean() < 0.3
    bunny = load_mesh(shared_data / "meshes" / "bunny.ply")
    assert bunny.faces.shape == (5766, 3) and bunny.watertight
    fraction = float(occupancy_grid(bunny, 32).mean())
    assert 0.05 < fraction < 0.35, fraction
    with capsys.disabled():
        print(f"\narmadillo: sampling and labelling 1e5 points (occupancy only) took {seconds:.2f} s; "
              f"bunny fills {fraction:.1%} of a 32^3 grid")
