"""3-D shapes from meshes: occupancy (cross-entropy on logits) or signed distance (L1).

Training points are a fixed pool, half uniform in [-1, 1]^3 and half near the surface, from which
random mini-batches of 32^3 points are drawn. The score during training is the
IoU of the predicted inside (logit > 0, or distance < 0) on the pool and on small held-out sets;
at the end IoU is measured on 64^3 uniform and 64^3 boundary points, the surface is extracted by
marching cubes and compared with the mesh by Chamfer distance. Everything is in the shape's
normalised frame (``specfit.signals.shape``) except the written mesh and the Chamfer distance,
which are in the file's original units.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from specfit.metrics import chamfer_distance, iou
from specfit.render import grid_values
from specfit.report import figure_uri, subplots
from specfit.signals.sampling import Sampling
from specfit.signals.shape import (
    Shape,
    boundary_test_points,
    evaluation_sets,
    extract_mesh,
    grid_points,
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
from specfit.tasks.base import Outcome, Task, TrainingData
from specfit.training import predict

TRAIN_POINTS = 2**18  # training pool, half uniform and half near the surface
MONITOR_POINTS = 2**14  # held-out points per set scored during training
TEST_POINTS = 64**3  # per set (uniform, boundary) for the final IoU
SPECTRUM_RESOLUTION = {"occupancy": 64, "sdf": 48}
MESH_RESOLUTION = 128
CHAMFER_POINTS = 2**16
BATCH_SIZE = 32**3


def surface_level(value_range: str) -> float:
    """The model output at the surface: 0 for raw outputs (logits, distances), 0.5 for models with a
    sigmoid output (``"unit"``), whose probabilities (occupancy) or ``(sdf + 1) / 2`` (distance) it
    predicts."""
    return 0.0 if value_range == "signed" else 0.5


def _inside(output: torch.Tensor, target: str, value_range: str) -> torch.Tensor:
    """Predicted inside: output above the level (occupancy) or below it (distance)."""
    level = surface_level(value_range)
    return output > level if target == "occupancy" else output < level


def surface_from_model(
    model: nn.Module, target: str, value_range: str, resolution: int
) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of the model's output on a ``resolution^3`` grid (normalised frame).

    The grid is :func:`grid_points`' (axes x, y, z, row-major), evaluated block by block, so only
    the ``resolution^3`` outputs are held.
    """
    grid = (resolution, resolution, resolution)
    values = grid_values(model, grid)[:, 0].reshape(grid)
    inside = "above" if target == "occupancy" else "below"
    return extract_mesh(values, surface_level(value_range), inside)


def render_shape(model: nn.Module, config: dict, resolution: int, out: Path) -> int:
    """Write the surface of a saved shape model at ``resolution^3`` to ``out`` (original units)."""
    signal = config["signal"]
    vertices, faces = surface_from_model(model, signal.get("target", "occupancy"), config["value_range"],
                                         resolution)
    shape = Shape(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), signal["name"],
                  center=np.asarray(signal["center"]), scale=float(signal["scale"]))
    write_mesh(out, to_original_frame(shape, vertices), faces)
    return len(faces)


def slices_figure(model: nn.Module, shape: Shape, level: float, resolution: int = 128) -> str:
    """Central x, y and z slices: true inside (grey) with the predicted boundary drawn over it."""
    axis = np.linspace(-1.0, 1.0, resolution)
    device = next(model.parameters()).device
    figure, axes = subplots(1, 3, figsize=(13, 4.5))
    for index, name in enumerate("xyz"):
        a, b = np.meshgrid(axis, axis, indexing="ij")
        planes = [a, b]
        planes.insert(index, np.zeros_like(a))
        points = np.stack([p.reshape(-1) for p in planes], axis=1).astype(np.float32)
        truth = occupancy(shape, points).reshape(resolution, resolution)
        out = predict(model, torch.from_numpy(points).to(device)).float().cpu().numpy()
        out = out.reshape(resolution, resolution)
        axes[index].imshow(truth.T, origin="lower", cmap="Greys", extent=(-1, 1, -1, 1), vmin=0, vmax=1.6)
        if out.min() < level < out.max():
            axes[index].contour(axis, axis, out.T, levels=[level], colors="C3", linewidths=1.2)
        others = [c for c in "xyz" if c != name]
        axes[index].set_title(f"{name} = 0: true inside (grey), predicted surface (red)")
        axes[index].set_xlabel(others[0])
        axes[index].set_ylabel(others[1])
    figure.tight_layout()
    return figure_uri(figure)


def mesh_figure(vertices: np.ndarray, faces: np.ndarray, max_faces: int = 20000) -> str:
    """Two views of the extracted surface (a random subset of faces when there are many)."""
    figure = Figure(figsize=(12, 5.5))
    if len(faces) > max_faces:
        faces = faces[np.random.default_rng(0).choice(len(faces), max_faces, replace=False)]
    for index, (elevation, azimuth) in enumerate(((20, -60), (20, 120))):
        axis = figure.add_subplot(1, 2, index + 1, projection="3d")
        if len(faces):
            axis.plot_trisurf(vertices[:, 0], vertices[:, 1], vertices[:, 2], triangles=faces,
                              color="0.75", linewidth=0, shade=True)
        axis.view_init(elevation, azimuth)
        axis.set_box_aspect((1, 1, 1))
        axis.set_axis_off()
    return figure_uri(figure)


class ShapeTask(Task):
    """A mesh fitted as occupancy or signed distance on points in [-1, 1]^3 (coordinates x, y, z)."""

    kind = "shape"
    score_name = "iou"
    default_batch_size = BATCH_SIZE

    sample_count = TRAIN_POINTS

    def __init__(self, shape: Shape, target: str = "occupancy") -> None:
        self.shape = shape
        self.target = target
        self._spectrum: torch.Tensor | None = None

    @property
    def name(self) -> str:
        return self.shape.name

    @property
    def notes(self) -> list[str]:
        return self.shape.notes

    @property
    def in_features(self) -> int:
        return 3

    @property
    def out_features(self) -> int:
        return 1

    def describe(self) -> dict:
        return {**self.shape.describe(), "target": self.target}

    def headline(self) -> str:
        mesh = self.shape
        return f"{mesh.name} (shape, {len(mesh.vertices)} vertices, {len(mesh.faces)} faces; {self.target})"

    def spectrum_target(
        self, value_range: str, device: torch.device, split: str = "all", holdout: float = 0.1, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The target is the mesh's own grid; the held-out test points are never part of it.
        resolution = SPECTRUM_RESOLUTION[self.target]
        if self._spectrum is None:
            grid = occupancy_grid if self.target == "occupancy" else sdf_grid
            self._spectrum = grid(self.shape, resolution)
        coords = torch.from_numpy(grid_points(resolution).astype(np.float32))
        return self._spectrum.to(device), coords.to(device)

    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        pool = sample_points(self.shape, TRAIN_POINTS // 2, TRAIN_POINTS // 2, seed=seed,
                             with_sdf=self.target == "sdf")
        monitor = [uniform_test_points(MONITOR_POINTS, seed + 1),
                   boundary_test_points(self.shape, MONITOR_POINTS, seed + 1)]
        monitor_points = np.concatenate(monitor)
        if self.target == "occupancy":
            labels = np.concatenate([pool.occupancy, occupancy(self.shape, monitor_points)])
        else:
            labels = np.concatenate([pool.sdf, signed_distance(self.shape, monitor_points)])
        coords = torch.from_numpy(np.concatenate([pool.points, monitor_points]).astype(np.float32))
        n = len(pool)
        sampling = Sampling(coords.to(device), torch.arange(n, device=device),
                            torch.arange(n, len(coords), device=device), "signed", "points")
        labels = labels.astype(np.float32)
        if self.target == "sdf" and value_range == "unit":  # sigmoid outputs predict (sdf + 1) / 2
            labels = (np.clip(labels, -1.0, 1.0) + 1.0) / 2.0
        targets = torch.from_numpy(labels).reshape(-1, 1).to(device)
        return TrainingData(sampling, targets)

    def loss_for(self, value_range: str) -> str:
        """Occupancy: cross-entropy on logits, or on probabilities for sigmoid-output models; distance: L1."""
        if self.target == "sdf":
            return "l1"
        return "bce" if value_range == "signed" else "bce_prob"

    def check_split(self, split: str) -> None:
        """Shapes always train on sampled points and test on separate point sets; ``--split`` is ignored."""

    def score(self, value_range: str) -> Callable[[torch.Tensor, torch.Tensor], float]:
        level = surface_level(value_range)
        target_inside = (lambda t: t > 0.5) if self.target == "occupancy" else (lambda t: t < level)

        def score(prediction: torch.Tensor, target: torch.Tensor) -> float:
            return iou(_inside(prediction, self.target, value_range).cpu(), target_inside(target).cpu())

        return score

    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        shape = self.shape
        metrics: dict = {"psnr": None, "psnr_train": None, "psnr_test": None, "ssim": None}
        for name, samples in evaluation_sets(shape, TEST_POINTS, seed=12345).items():
            out = predict(model, torch.from_numpy(samples.points).to(device), chunk=2**15)
            inside = _inside(out[:, 0], self.target, value_range).cpu()
            metrics[f"iou_{name}"] = iou(inside, samples.occupancy)
        vertices, faces = surface_from_model(model, self.target, value_range, MESH_RESOLUTION)
        if len(faces):
            original = to_original_frame(shape, vertices)
            reference = to_original_frame(shape, surface_samples(shape, CHAMFER_POINTS, seed=0))
            fitted = sample_surface(original, faces, CHAMFER_POINTS, 0)
            metrics["chamfer"] = chamfer_distance(fitted, reference)
        else:
            metrics["chamfer"] = None
        outcome = Outcome(metrics, summary=f"IoU {metrics['iou_boundary']:.4f} on boundary points, "
                          f"{metrics['iou_uniform']:.4f} on uniform points")
        if metrics["chamfer"] is not None:
            outcome.summary += f", Chamfer {metrics['chamfer']:.3g}"
            outcome.files["reconstruction.ply"] = lambda path: write_mesh(path, original, faces)
        else:
            outcome.summary += " (no surface: the prediction is empty or full)"
        outcome.views.append(("Slices", slices_figure(model, shape, surface_level(value_range))))
        outcome.views.append(("Extracted surface", mesh_figure(vertices, faces)))
        return outcome
