"""Volumes: a 3-D grid; the reconstruction in the source's format, central slices in the report."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specfit.report import figure_uri, subplots
from specfit.signals.volume import volume_slices, write_volume
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.grid import GridTask


def _drawable(slices: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Slices imshow can draw: 1 channel grey or 3 colour; other channel counts are averaged."""
    return [(name, s if s.ndim == 2 or s.shape[2] == 3 else s.mean(axis=2)) for name, s in slices]


def slices_figure(target: torch.Tensor, recon: torch.Tensor) -> str:
    """Central axial, coronal and sagittal slices: target, reconstruction and |error|."""
    rows = [_drawable(volume_slices(target)), _drawable(volume_slices(recon))]
    figure, axes = subplots(3, 3, figsize=(11, 11))
    for column, ((name, t), (_, r)) in enumerate(zip(*rows, strict=True)):
        for row, (image, title) in enumerate(((t, f"{name}: target"), (r, "reconstruction"))):
            axes[row, column].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            axes[row, column].set_title(title)
        error = abs(r - t) if t.ndim == 2 else abs(r - t).mean(axis=-1)
        axes[2, column].imshow(error, cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
        axes[2, column].set_title("|error|")
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    return figure_uri(figure)


class VolumeTask(GridTask):
    """A volume ``(C, D, H, W)``: coordinates ``(i, j, k)`` in the array's axis order."""

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        signal = self.signal
        source = (signal.source or "").lower()
        name = "reconstruction.nii.gz" if source.endswith((".nii", ".nii.gz")) else "reconstruction.npy"
        outcome.files[name] = lambda path: write_volume(path, recon, signal)
        outcome.views.append(("Central slices", slices_figure(signal.values, recon)))
