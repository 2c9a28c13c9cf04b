"""MRI: a volume reconstructed from a random subset of its 3-D Fourier coefficients (Tancik et al.
2020, 3-D MRI).

Measurements are the orthonormal, unshifted DFT coefficients of the volume at a seeded random
mask holding ``kspace_fraction`` of them (the DC coefficient always), as (real, imaginary) pairs.
The reconstruction is the network on the volume's grid; the classical baseline is the zero-filled
inverse DFT of the same samples. FreSh compares the spectrum of the sampled k-space magnitudes
(binned like any spectrum, unsampled coefficients counting zero) with that of the untrained
network's k-space at the same mask.
"""

from __future__ import annotations

import torch
from torch import nn

from specfit.figures import View, figure_uri, subplots
from specfit.fresh.measured import MeasuredSpectrum
from specfit.fresh.spectra import Band, band_vectors, content_band, resolve_bins
from specfit.metrics import psnr
from specfit.operators.kspace import as_real, kspace_mask, sample_kspace, zero_filled
from specfit.signals.volume import write_volume
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.measured import MeasuredGridTask
from specfit.tasks.volume import SLICES_GUIDE, slices_figure
from specfit.training.loop import Forward


class MRITask(MeasuredGridTask):
    """A volume ``(1, N, N, N)`` seen through ``signal.meta["kspace_fraction"]`` of its k-space."""

    frequency_label = "k-space radius (cycles per volume, |k_0| + |k_1| + |k_2|)"

    def __init__(self, signal) -> None:
        super().__init__(signal)
        meta = signal.meta
        self.mask = kspace_mask(signal.spatial_shape, float(meta["kspace_fraction"]), int(meta["mask_seed"]))
        self.samples = sample_kspace(signal.values.unsqueeze(0), self.mask)  # (1, 1, M) complex

    def headline(self) -> str:
        side = self.signal.spatial_shape[0]
        share = 100 * float(self.mask.float().mean())
        return f"{self.signal.name} (MRI, {side}^3, {share:.1f} % of k-space)"

    def targets(self) -> torch.Tensor:
        """The measurements as ``(M * 2, 1)``: real and imaginary parts, interleaved."""
        return as_real(self.samples).reshape(-1, 1)

    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        targets = self.targets().to(device)
        mask = self.mask.to(device)

        def apply(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
            measured = as_real(sample_kspace(self.image_of(model, value_range), mask)).reshape(-1, 1)
            return measured[x[:, 0].long()]

        return TrainingData(self.sampling(len(targets), device), targets, Forward(apply))

    def score(self, value_range: str):
        return self.peak_score(self.targets())

    def spectrum_target(self, value_range, device, split="all", holdout=0.1, seed=0):
        """The zero-filled reconstruction (its spectrum is the sampled k-space) and no coordinates."""
        return zero_filled(self.samples, self.mask)[0].to(device), torch.empty(0, 3, device=device)

    def _magnitudes(self, volumes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sampled k-space magnitudes ``(B, N, N, N)`` of ``(B, 1, N, N, N)`` (zero where unsampled)."""
        spectrum = torch.fft.fftn(volumes.double(), dim=(2, 3, 4), norm="ortho").abs().sum(dim=1)
        return spectrum * mask

    def measured_spectrum(self, value_range: str, device: torch.device, spectrum: str, objective: str,
                          bins: int | None) -> MeasuredSpectrum:
        mask = self.mask.to(device)
        target = self._magnitudes(self.signal.values.unsqueeze(0).to(device), mask)
        notes: list[str] = []
        if spectrum == "published":
            n, note = resolve_bins(self.signal.spatial_shape, bins)
            band, notes = Band(n, edge=float(n)), [note] if note else []
        else:
            band, notes = content_band(target, objective, bins)

        def observe(model: nn.Module) -> torch.Tensor:
            return self._magnitudes(self.image_of(model, value_range), mask)[0]  # (N, N, N)

        return MeasuredSpectrum(band, band_vectors(target, band)[0], observe,
                                lambda batch: band_vectors(batch, band), 3, 1,
                                "spectrum of the sampled k-space magnitudes", notes)

    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        mask = self.mask.to(device)
        with torch.inference_mode():
            volume = self.image_of(model, value_range)
            fitted = as_real(sample_kspace(volume, mask)).reshape(-1, 1).cpu()
            recon = volume[0].clamp(0, 1).cpu()
        truth = self.signal.values
        baseline = zero_filled(self.samples, self.mask)[0].clamp(0, 1)
        targets = self.targets()
        metrics = {
            "psnr": psnr(recon, truth),
            "psnr_train": psnr(fitted, targets, float(targets.abs().max())),
            "psnr_test": None,
            "ssim": None,
            "psnr_zero_filled": psnr(baseline, truth),
            "kspace_fraction": float(self.mask.float().mean()),
        }
        summary = (f"reconstruction PSNR {metrics['psnr']:.2f} dB (zero-filled "
                   f"{metrics['psnr_zero_filled']:.2f}), k-space fit {metrics['psnr_train']:.2f} dB")
        outcome = Outcome(metrics, summary=summary)
        signal = self.signal
        outcome.files["reconstruction.npy"] = lambda path: write_volume(path, recon, signal)
        outcome.files["baseline-zero-filled.npy"] = lambda path: write_volume(path, baseline, signal)
        outcome.views.append(View("Central slices: network", slices_figure(truth, recon), SLICES_GUIDE))
        outcome.views.append(View(
            "Central slices: zero-filled inverse DFT (classical baseline)", slices_figure(truth, baseline),
            SLICES_GUIDE + " Compare with the network's slices above: the network should have the darker "
            "error maps, without the baseline's ringing."))
        outcome.views.append(View(
            "k-space mask (central slices, DC at the centre)", mask_figure(self.mask),
            "<b>How to read:</b> the three central slices of the 3-D Fourier domain, the lowest frequency "
            "(DC) in the middle; white marks the coefficients that were measured. Nothing to judge here: "
            "it shows what the fit had to work with (dense near the centre, sparse at high frequencies)."))
        return outcome


def mask_figure(mask: torch.Tensor) -> str:
    """The three central slices of the (shifted) k-space mask."""
    shifted = torch.fft.fftshift(mask.float()).numpy()
    centre = [n // 2 for n in shifted.shape]
    figure, axes = subplots(1, 3, figsize=(11, 3.8))
    for axis, (title, image) in zip(axes, (("axis 0", shifted[centre[0]]), ("axis 1", shifted[:, centre[1]]),
                                           ("axis 2", shifted[:, :, centre[2]])), strict=True):
        axis.imshow(image, cmap="gray", vmin=0, vmax=1)
        axis.set_title(f"sampled coefficients, slice across {title}")
        axis.axis("off")
    return figure_uri(figure)
