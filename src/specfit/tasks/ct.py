"""CT: an image reconstructed from parallel-beam projections (Tancik et al. 2020, 2-D CT).

Measurements are line averages: the projections of :func:`specfit.operators.projection.project`
divided by the image side, at ``projections`` angles evenly spread over [0, 180) degrees, of the
image inside its inscribed circle. The reconstruction is the network on the image grid, zero
outside the circle; the classical baseline is filtered back-projection of the same sinogram.
FreSh compares the mean 1-D spectrum of the projections (each projection's spectrum is a radial
slice of the image's 2-D spectrum) with that of the untrained network's projections. Both are taken
about the image's mean inside the circle: a uniform disk projects to the same chord profile
whatever the image, and left in, that profile (from the untrained network's mean output) dominates
every candidate's spectrum alike. The mean is known from the measurements alone (every projection
sums to the image's total), so the measured sinogram minus its mean disk's projection is what the
target's spectrum is taken of.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specfit.figures import View, figure_uri, show_error, subplots
from specfit.fresh.measured import MeasuredSpectrum
from specfit.fresh.spectra import signal_band, spectra
from specfit.metrics import psnr, ssim
from specfit.operators.projection import circle_mask, filtered_back_projection, project, projection_angles
from specfit.signals.image import write_image
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.measured import MeasuredGridTask
from specfit.training.loop import Forward


def ct_figure(truth: np.ndarray, sinogram: np.ndarray, fbp: np.ndarray, recon: np.ndarray,
              scores: tuple[float, float]) -> str:
    """Ground truth, the measured sinogram, filtered back-projection and the network's
    reconstruction, with their PSNRs."""
    figure, axes = subplots(1, 5, figsize=(20, 4.4))
    panels = ((truth, "ground truth"), (sinogram, f"sinogram ({sinogram.shape[0]} angles)"),
              (fbp, f"filtered back-projection\n{scores[0]:.2f} dB"),
              (recon, f"network\n{scores[1]:.2f} dB"))
    for axis, (image, title) in zip(axes, panels, strict=False):
        aspect = "auto" if image is sinogram else None
        axis.imshow(image, cmap="gray", vmin=0 if image is not sinogram else None,
                    vmax=1 if image is not sinogram else None, aspect=aspect)
        axis.set_title(title)
        axis.axis("off")
    show_error(figure, axes[4], np.abs(recon - truth), "|network - truth|")
    return figure_uri(figure)


class CTTask(MeasuredGridTask):
    """An image ``(1, N, N)`` seen through ``signal.meta["projections"]`` projections."""

    frequency_label = "frequency along each projection (cycles per image width)"

    def __init__(self, signal) -> None:
        super().__init__(signal)
        side = signal.spatial_shape[0]
        self.angles = projection_angles(int(signal.meta["projections"]))
        self.circle = circle_mask(side)
        self.sinogram = self.measure(signal.values.unsqueeze(0))[0]  # (1, A, N)
        self.chords = self.measure(torch.ones(1, 1, side, side))[0]  # (1, A, N): the disk's projections

    def headline(self) -> str:
        side = self.signal.spatial_shape[0]
        return f"{self.signal.name} (CT, {side} x {side}, {len(self.angles)} projections)"

    def measure(self, images: torch.Tensor) -> torch.Tensor:
        """Line averages ``(B, 1, A, N)`` of images ``(B, 1, N, N)`` inside the inscribed circle."""
        circle = self.circle.to(images.device)
        return project(images * circle, self.angles) / images.shape[-1]

    def about_mean(self, sinograms: torch.Tensor) -> torch.Tensor:
        """Sinograms ``(..., A, N)`` minus the projections of the uniform disk of the same total: the
        projections of the image's variations about its mean inside the circle."""
        chords = self.chords.to(sinograms.device, sinograms.dtype)
        share = sinograms.sum(dim=-1, keepdim=True) / chords.sum(dim=-1, keepdim=True)
        return sinograms - share * chords

    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        targets = self.sinogram.reshape(-1, 1).to(device)

        def apply(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
            measured = self.measure(self.image_of(model, value_range)).reshape(-1, 1)
            return measured[x[:, 0].long()]

        return TrainingData(self.sampling(len(targets), device), targets, Forward(apply))

    def score(self, value_range: str):
        return self.peak_score(self.sinogram)

    def spectrum_target(self, value_range, device, split="all", holdout=0.1, seed=0):
        """The sinogram ``(1, A, N)`` (a projection per "frame") and no coordinates: CT's spectrum is
        taken of what is measured."""
        return self.sinogram.to(device), torch.empty(0, 2, device=device)

    def measured_spectrum(self, value_range: str, device: torch.device, spectrum: str, objective: str,
                          bins: int | None) -> MeasuredSpectrum:
        sinogram = self.about_mean(self.sinogram.to(device))
        band, notes = signal_band(sinogram, spectrum, objective, bins, per_frame=True)

        def observe(model: nn.Module) -> torch.Tensor:
            return self.about_mean(self.measure(self.image_of(model, value_range))[0])

        return MeasuredSpectrum(
            band, spectra(sinogram.unsqueeze(0), band, per_frame=True)[0], observe,
            lambda batch: spectra(batch, band, per_frame=True), 2, 1,
            f"mean 1-D spectrum of the {len(self.angles)} projections", notes)

    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        with torch.inference_mode():
            recon = (self.image_of(model, value_range)[0].clamp(0, 1) * self.circle.to(device)).cpu()
            fitted = self.measure(recon.unsqueeze(0).to(device))[0].cpu()
        truth = self.signal.values
        sinogram = self.sinogram[0].numpy()
        side = truth.shape[-1]
        fbp = np.clip(filtered_back_projection(sinogram * side, self.angles.numpy()), 0, 1)
        fbp_t = torch.from_numpy(fbp.astype(np.float32)).unsqueeze(0)
        peak = float(self.sinogram.abs().max())
        metrics = {
            "psnr": psnr(recon, truth),
            "psnr_train": psnr(fitted, self.sinogram, peak),
            "psnr_test": None,
            "ssim": ssim(recon, truth),
            "psnr_fbp": psnr(fbp_t, truth),
            "ssim_fbp": ssim(fbp_t, truth),
            "projections": len(self.angles),
        }
        summary = (f"reconstruction PSNR {metrics['psnr']:.2f} dB (filtered back-projection "
                   f"{metrics['psnr_fbp']:.2f}), sinogram fit {metrics['psnr_train']:.2f} dB")
        outcome = Outcome(metrics, summary=summary)
        outcome.files["reconstruction.png"] = lambda path: write_image(path, recon, 8)
        outcome.files["baseline-fbp.png"] = lambda path: write_image(path, fbp_t, 8)
        outcome.views.append(View("CT reconstruction", ct_figure(
            truth[0].numpy(), sinogram, fbp, recon[0].numpy(), (metrics["psnr_fbp"], metrics["psnr"])),
            "<b>How to read:</b> from the left: the ground truth (never seen in training), the measured "
            "sinogram (one row per projection angle, detector position across), the classical filtered "
            "back-projection and the network's reconstruction with their PSNRs against the truth, and the "
            "network's absolute error (colour bar in units of the full intensity range). Good: the network "
            "beats the back-projection's PSNR, without its streaks, and its error map is dark."))
        return outcome
