"""Volumes: a 3-D grid; the reconstruction in the source's format, central slices in the report."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specfit.figures import View, figure_uri, subplots
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
    errors = [abs(r - t) if t.ndim == 2 else abs(r - t).mean(axis=-1)
              for (_, t), (_, r) in zip(*rows, strict=True)]
    top = max(max(float(e.max()) for e in errors), 1e-6)
    for column, ((name, t), (_, r)) in enumerate(zip(*rows, strict=True)):
        for row, (image, title) in enumerate(((t, f"{name}: target"), (r, "reconstruction"))):
            axes[row, column].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            axes[row, column].set_title(title)
        error = abs(r - t) if t.ndim == 2 else abs(r - t).mean(axis=-1)
        shown = axes[2, column].imshow(error, cmap="inferno", vmin=0, vmax=top)
        axes[2, column].set_title("|error|")
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    figure.colorbar(shown, ax=list(axes[2]), fraction=0.03, pad=0.01, label="|error|")
    return figure_uri(figure)


SLICES_GUIDE = (
    "<b>How to read:</b> columns are the three central slices through the volume (one per axis); rows "
    "the target, the reconstruction and the absolute error (the error maps share one colour scale, "
    "given by the colour bar, in units of the full intensity range). Good: dark error maps; bright "
    "outlines mean edges are blurred.")


class VolumeTask(GridTask):
    """A volume ``(C, D, H, W)``: coordinates ``(i, j, k)`` in the array's axis order."""

    frequency_label = "frequency (cycles per volume, |k_0| + |k_1| + |k_2|)"

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        signal = self.signal
        source = (signal.source or "").lower()
        name = "reconstruction.nii.gz" if source.endswith((".nii", ".nii.gz")) else "reconstruction.npy"
        outcome.files[name] = lambda path: write_volume(path, recon, signal)
        outcome.views.append(View("Central slices", slices_figure(signal.values, recon), SLICES_GUIDE))
