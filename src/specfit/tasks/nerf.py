"""NeRF: a radiance field fitted to camera views through volume rendering (Mildenhall et al. 2020;
the Fourier-features NeRF experiment of Tancik et al. 2020).

Any registered model becomes a radiance field (:class:`~specfit.models.radiance.RadianceField`:
three colour channels and a density from four outputs). A training sample is a ray (origin and
direction, 6 numbers) of a training view and its target the pixel's colour; a step renders a random
batch of rays (stratified plus hierarchical samples, one network for both passes) and compares the
colours; the first steps draw rays from the centre of the views only, as NeRF does. An occupancy
grid, refreshed from the field's density during training, lets rendering skip empty space. The
last ``held_out`` views are never trained on: they are the test (PSNR, SSIM). FreSh compares the
spectra of a few training views with those of the same views rendered from the untrained field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.figures import View, figure_uri, subplots
from specfit.fresh.measured import MeasuredSpectrum
from specfit.fresh.spectra import signal_band, spectra
from specfit.metrics import psnr, ssim
from specfit.models.radiance import RadianceField
from specfit.operators.rendering import (
    OccupancyGrid,
    RenderOptions,
    camera_rays,
    render_rays,
    render_view,
    turntable_poses,
)
from specfit.signals.sampling import Sampling
from specfit.signals.scene import Scene
from specfit.signals.video import write_video_frames
from specfit.tasks.base import Outcome, Task, TrainingData
from specfit.training.loop import Forward

BATCH_RAYS = 1024  # Tancik et al. 2020
EVAL_RAYS = 4096  # rays looked at by the periodic evaluation
GRID_WARMUP = 150  # training renders before the occupancy grid starts skipping
GRID_EVERY = 16  # training renders between occupancy-grid updates (Instant-NGP)
GRID_THRESHOLD = 0.5  # density (per world unit) below which a cell counts as empty
GRID_DECAY = 0.8  # per update; Instant-NGP's 0.95 left 62 % of the Lego's grid occupied after 240 s
CENTRE_STEPS = 100  # first steps draw rays from the centre of the views only, as NeRF does
CENTRE_FRACTION = 0.5  # ... the central half of each side
FRESH_VIEWS = 4  # training views FreSh compares
FRESH_SIDE = 50  # ... at this many pixels a side
TURNTABLE_FRAMES = 36
TURNTABLE_FPS = 12.0


def _downsample(images: torch.Tensor, side: int) -> torch.Tensor:
    """``(V, 3, H, W)`` -> ``(V, 3, side, side')`` by area averaging (aspect kept)."""
    height, width = images.shape[2:]
    scale = side / height
    return torch.nn.functional.interpolate(images, (side, max(1, round(width * scale))), mode="area")


class NerfTask(Task):
    """A :class:`~specfit.signals.scene.Scene`: rays of its views, rendered through a field."""

    kind = "nerf"
    frequency_label = "frequency (cycles per view, |k_y| + |k_x|)"
    compile_ok = False
    measured = True
    default_batch_size = BATCH_RAYS

    def __init__(self, scene: Scene, options: RenderOptions | None = None) -> None:
        self.scene = scene
        self.options = options or RenderOptions()
        rays = [camera_rays(*scene.size, scene.focal, pose) for pose in scene.poses]
        self.rays = torch.cat([torch.cat([o, d], dim=1) for o, d in rays])  # (V * H * W, 6)
        self.colours = scene.images.permute(0, 2, 3, 1).reshape(-1, 3)  # (V * H * W, 3)
        self.grid: OccupancyGrid | None = None
        self.points_per_sample = self.options.coarse + self.options.fine

    @property
    def name(self) -> str:
        return self.scene.name

    @property
    def notes(self) -> list[str]:
        return [*self.scene.notes, f"the last {self.scene.held_out} views are held out (the test views); "
                "--split does not apply"]

    @property
    def in_features(self) -> int:
        return 3

    @property
    def out_features(self) -> int:
        return 4

    @property
    def sample_count(self) -> int:
        return len(self.rays)

    def describe(self) -> dict:
        scene = self.scene
        return {"kind": "nerf", "name": scene.name, "shape": [3, scene.views, *scene.size],
                "focal": scene.focal, "near": scene.near, "far": scene.far, "held_out": scene.held_out,
                "radius": self.radius, "source": scene.source}

    @property
    def radius(self) -> float:
        """Mean distance of the cameras from the origin (the turntable's radius)."""
        return float(self.scene.poses[:, :3, 3].norm(dim=1).mean())

    def headline(self) -> str:
        height, width = self.scene.size
        return (f"{self.scene.name} (NeRF, {self.scene.views} views of {height} x {width}, "
                f"{self.scene.held_out} held out)")

    def check_split(self, split: str) -> None:
        """The held-out views are the split; ``--split`` is not used."""

    def score(self, value_range: str):
        return psnr  # rendered colours are in [0, 1] whatever the model's range

    def _field(self, model: nn.Module, value_range: str) -> RadianceField:
        return RadianceField(model, value_range)

    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        scene = self.scene
        pixels = scene.size[0] * scene.size[1]
        train = torch.arange(0, len(scene.train_views) * pixels)
        test = torch.arange(len(scene.train_views) * pixels, scene.views * pixels)
        sampling = Sampling(self.rays.to(device), train, test, "signed", "views")
        self.grid = OccupancyGrid(device=device)
        generator = torch.Generator(device=device).manual_seed(seed)
        grid, renders = self.grid, [0]

        def apply(model: nn.Module, rays: torch.Tensor) -> torch.Tensor:
            field = self._field(model, value_range)
            training = torch.is_grad_enabled()
            if training:
                renders[0] += 1
                if renders[0] % GRID_EVERY == 0:
                    grid.update(field.density, GRID_THRESHOLD, decay=GRID_DECAY, generator=generator)
            skip = grid if renders[0] >= GRID_WARMUP else None
            out = render_rays(field, rays[:, :3], rays[:, 3:], scene.near, scene.far, self.options, skip,
                              generator if training else None)
            return out["colour"]

        centre = self._centre(len(scene.train_views))

        def pool(step: int) -> torch.Tensor | None:
            return centre if step <= CENTRE_STEPS else None

        forward = Forward(apply, chunk=EVAL_RAYS, eval_limit=EVAL_RAYS, pool=pool)
        return TrainingData(sampling, self.colours.to(device), forward)

    def _centre(self, views: int) -> torch.Tensor:
        """Positions of the rays through the central :data:`CENTRE_FRACTION` of each side of the
        first ``views`` views (without it, early training on the Lego's mostly white views
        collapsed to an empty or foggy field for hundreds of steps)."""
        height, width = self.scene.size
        def central(n: int) -> torch.Tensor:
            index = torch.arange(n)
            return index[(index + 0.5 - n / 2).abs() < n * CENTRE_FRACTION / 2]

        rows, cols = central(height), central(width)
        pixels = (rows[:, None] * width + cols[None, :]).flatten()
        return (torch.arange(views)[:, None] * height * width + pixels[None, :]).flatten()

    def spectrum_target(self, value_range, device, split="all", holdout=0.1, seed=0):
        """A few training views ``(3, V, h, w)`` (frames) at :data:`FRESH_SIDE` pixels, no coordinates."""
        return self._fresh_views()[0].to(device), torch.empty(0, 3, device=device)

    def _fresh_views(self) -> tuple[torch.Tensor, list[int], float]:
        scene = self.scene
        train = list(scene.train_views)
        count = min(FRESH_VIEWS, len(train))
        picks = [train[round(i * (len(train) - 1) / max(count - 1, 1))] for i in range(count)]
        side = min(FRESH_SIDE, scene.size[0])
        views = _downsample(scene.images[picks], side)
        return views.transpose(0, 1).contiguous(), picks, scene.focal * side / scene.size[0]

    def measured_spectrum(self, value_range: str, device: torch.device, spectrum: str, objective: str,
                          bins: int | None) -> MeasuredSpectrum:
        views, picks, focal = self._fresh_views()
        views = views.to(device)
        band, notes = signal_band(views, spectrum, objective, bins, per_frame=True)
        height, width = views.shape[2:]
        poses = self.scene.poses[picks].to(device)
        options = RenderOptions(coarse=self.options.coarse // 2, fine=0)
        scene = self.scene

        def observe(model: nn.Module) -> torch.Tensor:
            field = self._field(model, value_range)
            rendered = [render_view(field, (height, width, focal, pose), options, near=scene.near,
                                    far=scene.far) for pose in poses]
            return torch.stack(rendered, dim=1)  # (3, V, h, w)

        return MeasuredSpectrum(band, spectra(views.unsqueeze(0), band, per_frame=True)[0], observe,
                                lambda batch: spectra(batch, band, per_frame=True), 3, 4,
                                f"mean 2-D spectrum of {len(picks)} training views at {height} x {width}, "
                                "rendered from the untrained field", notes)

    def render(
        self, model: nn.Module, value_range: str, pose: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """The ``(3, H, W)`` view from ``pose`` (the scene's size, or ``size``), deterministic samples."""
        height, width = size or self.scene.size
        focal = self.scene.focal * height / self.scene.size[0]
        device = next(model.parameters()).device
        camera = (height, width, focal, pose.to(device))
        return render_view(self._field(model, value_range), camera, self.options, self.grid,
                           near=self.scene.near, far=self.scene.far).clamp(0, 1).cpu()

    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        scene = self.scene
        tests = [self.render(model, value_range, scene.poses[v]) for v in scene.test_views]
        truths = [scene.images[v] for v in scene.test_views]
        train_views = [scene.train_views[0], scene.train_views[len(scene.train_views) // 2]]
        trains = [self.render(model, value_range, scene.poses[v]) for v in train_views]
        psnr_test = float(np.mean([psnr(r, t) for r, t in zip(tests, truths, strict=True)]))
        ssims = [ssim(r, t) for r, t in zip(tests, truths, strict=True)]
        metrics = {
            "psnr": psnr_test,
            "psnr_test": psnr_test,
            "psnr_train": float(np.mean([psnr(r, scene.images[v]) for r, v in zip(trains, train_views,
                                                                                strict=True)])),
            "ssim": None if None in ssims else float(np.mean(ssims)),
            "test_views": len(tests),
            "occupied": None if self.grid is None else self.grid.fraction,
        }
        summary = (f"held-out views PSNR {metrics['psnr']:.2f} dB"
                   + (f", SSIM {metrics['ssim']:.4f}" if metrics["ssim"] is not None else "")
                   + f" (training views {metrics['psnr_train']:.2f})")
        outcome = Outcome(metrics, summary=summary)
        poses = turntable_poses(TURNTABLE_FRAMES, radius=self.radius)

        def turntable(path: Path) -> None:
            write_video_frames(path, (self.render(model, value_range, pose) for pose in poses), TURNTABLE_FPS)

        outcome.files["turntable.mp4"] = turntable
        if self.grid is not None:
            mask = self.grid.mask.cpu().numpy()
            outcome.files["occupancy.npy"] = lambda path: np.save(path, mask)
        outcome.views.append(View(
            "Held-out views: target, render, |error|", views_figure(truths[:4], tests[:4]),
            "<b>How to read:</b> one row per held-out camera (never trained on): the photo, the field "
            "rendered from that camera with its PSNR, and the absolute error (mean over channels, brighter "
            "is worse). Good: sharp renders with dark error maps; fog, floaters or a blurred object mean "
            "the field has not converged or does not generalise to new views."))
        return outcome


def views_figure(targets: list[torch.Tensor], renders: list[torch.Tensor]) -> str:
    """Rows of views ``(3, H, W)``: target, rendering and |error| for each."""
    figure, axes = subplots(len(targets), 3, figsize=(9, 3 * len(targets)), squeeze=False)
    for row, (target, render) in enumerate(zip(targets, renders, strict=True)):
        error = (render - target).abs().mean(dim=0).numpy()
        titles = ((target, "target"), (render, f"render, {psnr(render, target):.2f} dB"))
        for column, (image, title) in enumerate(titles):
            axes[row, column].imshow(image.permute(1, 2, 0).numpy())
            axes[row, column].set_title(title)
        axes[row, 2].imshow(error, cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
        axes[row, 2].set_title("|error|")
    for axis in axes.flat:
        axis.axis("off")
    return figure_uri(figure)


def load_occupancy(path: Path, device: torch.device) -> OccupancyGrid | None:
    """The occupancy grid a NeRF run saved (``occupancy.npy``: a bool cube), or ``None`` if absent."""
    if not path.is_file():
        return None
    try:
        mask = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise SpecfitError(f"{path} is not a readable occupancy grid ({exc})") from None
    if mask.dtype != np.bool_ or mask.ndim != 3 or len(set(mask.shape)) != 1 or mask.shape[0] > 1024:
        raise SpecfitError(f"{path} must hold a bool cube of at most 1024^3 cells, got {mask.dtype} "
                           f"{mask.shape}")
    grid = OccupancyGrid(mask.shape[0], device=device)
    grid.mask = torch.from_numpy(mask).to(device)
    return grid


def turntable_frames(model: nn.Module, value_range: str, config: dict, size: tuple[int, int], frames: int,
                     run_dir: Path):
    """Frames ``(3, H, W)`` of a saved NeRF run's turntable (for ``specfit render``), skipping the
    empty space its saved occupancy grid marks (without it, floaters in space training never
    rendered through show)."""
    signal = config["signal"]
    field = RadianceField(model, value_range)
    focal = float(signal["focal"]) * size[0] / signal["shape"][2]
    device = next(model.parameters()).device
    grid = load_occupancy(run_dir / "occupancy.npy", device)
    for pose in turntable_poses(frames, radius=float(signal["radius"])):
        yield render_view(field, (size[0], size[1], focal, pose.to(device)), RenderOptions(), grid,
                          near=float(signal["near"]), far=float(signal["far"])).clamp(0, 1).cpu()
