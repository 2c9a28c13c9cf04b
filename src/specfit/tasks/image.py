"""Images: PSNR, SSIM and gradient PSNR; the reconstruction as PNG (and .npy for float sources)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from specfit.figures import View, figure_uri, show_error, show_image, subplots
from specfit.metrics import gradient_psnr, ssim
from specfit.models.evaluate import unit_from_model
from specfit.signals.image import write_image
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.grid import GridTask, write_original_npy
from specfit.training.loop import spatial_gradient_magnitude


def images_figure(target: torch.Tensor, recon: torch.Tensor) -> str:
    """Target, reconstruction and the absolute error (mean over channels), ``(C, H, W)`` in [0, 1]."""
    figure, axes = subplots(1, 3, figsize=(13, 4.6))
    show_image(axes[0], target, "target")
    show_image(axes[1], recon, "reconstruction")
    show_error(figure, axes[2], (recon - target).abs().mean(dim=0).cpu().numpy())
    return figure_uri(figure)


class ImageTask(GridTask):
    """An image ``(C, H, W)``: coordinates ``(y, x)``."""

    batchable = True
    frequency_label = "frequency (cycles per image, |k_y| + |k_x|)"

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        signal = self.signal
        sampling = data.sampling
        sizes = torch.tensor(signal.spatial_shape, dtype=torch.float32, device=device)
        scale = 2.0 / (sizes - 1).clamp(min=1) if sampling.convention == "signed" else 1.0 / sizes
        magnitude = spatial_gradient_magnitude(
            model, sampling.coords, signal.spatial_shape, scale, lambda v: unit_from_model(v, value_range),
        )
        outcome.metrics["ssim"] = ssim(recon, signal.values)
        outcome.metrics["psnr_grad"] = gradient_psnr(magnitude.cpu(), signal.values)
        outcome.files["reconstruction.png"] = lambda path: write_image(path, recon, signal.bit_depth)
        if signal.source and Path(signal.source).suffix.lower() == ".npy":
            outcome.files["reconstruction.npy"] = lambda path: write_original_npy(path, recon, signal)
        outcome.views.append(View(
            "Images", images_figure(signal.values, recon),
            "<b>How to read:</b> left the target, middle the network's reconstruction on the same pixel "
            "grid, right the absolute error per pixel (mean over channels, in units of the full intensity "
            "range; the colour bar gives the scale). Good: a dark error map without structure; edges and "
            "textures lighting up mean fine detail is not fitted yet."))
        metrics = outcome.metrics
        outcome.summary += f", SSIM {metrics['ssim']:.4f}" if metrics["ssim"] is not None else ""
        outcome.summary += f", gradient PSNR {metrics['psnr_grad']:.2f}"

    def check_split(self, split: str) -> None:
        """Every split applies to images."""
