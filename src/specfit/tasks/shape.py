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

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from specfit.figures import View, figure_uri, subplots
from specfit.figures.mesh import (
    FIT_COLOUR,
    SPECK_SHARE,
    TARGET_COLOUR,
    decimate,
    frame_of,
    keep_large_components,
    mesh_payload,
    orientation,
    render_mesh,
    render_paints,
    rotation,
    viewer_html,
)
from specfit.metrics import chamfer_distance, iou
from specfit.models.evaluate import grid_values, predict
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


# Still views of the surfaces: (yaw, pitch) in degrees, the vertical axis being y.
RENDER_VIEWS = ((30.0, 15.0), (120.0, 10.0), (235.0, 35.0))


def _render_grid(rows: list[tuple[str, list[np.ndarray]]], colourbar: tuple[float, str] | None = None) -> str:
    """Rows of renders (one per view) with a title per row, as a data-URI PNG."""
    columns = max(len(images) for _, images in rows)
    figure, axes = subplots(len(rows), columns, squeeze=False, figsize=(3.6 * columns, 3.7 * len(rows)))
    for row, (title, images) in enumerate(rows):
        for column in range(columns):
            axis = axes[row, column]
            axis.axis("off")
            if column < len(images):
                axis.imshow(images[column])
                view = RENDER_VIEWS[column % len(RENDER_VIEWS)]
                axis.set_title(f"{title}\nturned {view[0]:g}°, seen {view[1]:g}° from above", fontsize=9.5)
    if colourbar is not None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        top, label = colourbar
        mappable = ScalarMappable(Normalize(0, top), cmap=ERROR_CMAP)
        figure.colorbar(mappable, ax=list(axes[-1]), fraction=0.025, pad=0.01, label=label)
    return figure_uri(figure, dpi=100)


ERROR_CMAP = "viridis"
RENDER_FACES = 40000  # surfaces with more faces are drawn simplified (vertex clustering)


def surface_views(shape: Shape, vertices: np.ndarray, faces: np.ndarray) -> list[View]:
    """Shaded renders of the target mesh and of the fitted surface (without floating specks), the
    fitted surface coloured by its distance to the target, and a 3-D view to turn.

    Surfaces of more than :data:`RENDER_FACES` faces (a noisy, barely trained network's) are drawn
    simplified, which keeps the views to a few seconds."""
    from matplotlib import colormaps

    target_v, target_f = decimate(shape.vertices, shape.faces, RENDER_FACES)
    centre, radius = frame_of(shape.vertices)
    clean_v, clean_f, pieces, dropped = keep_large_components(vertices, faces)
    facing = orientation(target_v, target_f)
    target = [render_mesh(target_v, target_f, rotation(*v), centre, radius, colour=TARGET_COLOUR,
                          facing=facing) for v in RENDER_VIEWS]
    notes = (f" {pieces} floating piece{'s' if pieces != 1 else ''} ({dropped} faces, each under "
             f"{SPECK_SHARE:.0%} of the largest piece) are hidden in these views; the metrics and "
             "reconstruction.ply keep them." if pieces else " No floating pieces were found.")
    if len(clean_f) == 0:
        figure = _render_grid([("target mesh", target)])
        guide = ("<b>How to read:</b> the target mesh, shaded, from three directions. The network's "
                 "prediction has no surface (empty or full everywhere): the fit failed.")
        return [View("Surfaces: target and fit", figure, guide)]
    draw_v, draw_f = decimate(clean_v, clean_f, RENDER_FACES)
    if len(draw_f) < len(clean_f):
        notes += f" The surface is drawn simplified to {len(draw_f)} of its {len(clean_f)} faces."
    distance = np.abs(signed_distance(shape, draw_v)).astype(np.float64) / shape.scale  # original units
    top = float(np.quantile(distance, 0.99)) or 1e-9
    colours = colormaps[ERROR_CMAP](np.clip(distance / top, 0, 1))[:, :3]
    facing = orientation(draw_v, draw_f)
    pairs = [render_paints(draw_v, draw_f, rotation(*v), centre, radius, [FIT_COLOUR, colours], facing=facing)
             for v in RENDER_VIEWS]
    fitted, errors = [plain for plain, _ in pairs], [coloured for _, coloured in pairs]
    figure = _render_grid([("target mesh", target), ("fitted surface (marching cubes)", fitted),
                           ("fitted surface: distance to the target", errors)],
                          (top, "distance to the target surface (original units)"))
    guide = ("<b>How to read:</b> each column is one direction; top row the target mesh, middle row the "
             f"surface extracted from the network at {MESH_RESOLUTION}^3 by marching cubes, bottom row "
             "that surface coloured by its distance to the target (dark: on it; yellow: the 99th "
             "percentile or more). Good: the middle row has the target's shape and detail (ears, feet, "
             "thin parts) with no blobs or holes, and the bottom row is dark nearly everywhere."
             + html.escape(notes))
    views = [View("Surfaces: target and fit", figure, guide)]
    payloads = []
    meshes = (((target_v, target_f), "target mesh", TARGET_COLOUR, len(shape.faces)),
              ((draw_v, draw_f), "fitted surface", FIT_COLOUR, len(clean_f)))
    for (v, f), label, colour, total in meshes:
        small_v, small_f = decimate(v, f)
        shown = f"{label}, {len(small_f)} faces" + (f" (simplified from {total})" if len(small_f) < total
                                                    else "")
        payloads.append({**mesh_payload(small_v, small_f, shown), "colour": list(colour)})
    viewer = viewer_html(payloads, centre=centre, radius=radius, view=RENDER_VIEWS[0])
    views.append(View(
        "Surfaces in 3-D (drag to turn)", None,
        "<b>How to read:</b> drag either picture to turn both surfaces together, use the mouse wheel to "
        "zoom and double-click to go back; the fitted surface is simplified for the page and has its "
        "floating pieces removed. Good: from every side the fit matches the target's shape.",
        extra=viewer, script=True))
    return views


class ShapeTask(Task):
    """A mesh fitted as occupancy or signed distance on points in [-1, 1]^3 (coordinates x, y, z)."""

    kind = "shape"
    frequency_label = "frequency (cycles per [-1, 1]^3 box, |k_x| + |k_y| + |k_z|)"
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
        outcome.views.append(View(
            "Slices", slices_figure(model, shape, surface_level(value_range)),
            "<b>How to read:</b> three cuts through the middle of the [-1, 1]^3 box, axes in the normalised "
            "frame; grey is where the target mesh is solid, the red line where the network puts the "
            "surface. Good: the red line traces the grey region's edge everywhere, with no red loops in "
            "the white (spurious pieces) or gaps along the edge."))
        outcome.views.extend(surface_views(shape, vertices, faces))
        return outcome
