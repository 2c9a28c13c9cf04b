"""Signals sampled on a regular grid (images, audio, video, volumes): regression of values."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from specfit.metrics import psnr
from specfit.models.evaluate import model_from_unit, predict, unit_from_model
from specfit.signals.base import Signal
from specfit.signals.sampling import make_sampling, training_view
from specfit.tasks.base import Outcome, Task, TrainingData


class GridTask(Task):
    """A :class:`~specfit.signals.base.Signal` fitted by MSE on its grid, in the model's value range.

    Subclasses add their type's outputs, metrics and views through :meth:`outputs`.
    """

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.kind = signal.kind

    @property
    def name(self) -> str:
        return self.signal.name

    @property
    def notes(self) -> list[str]:
        return self.signal.notes

    @property
    def in_features(self) -> int:
        return len(self.signal.spatial_shape)

    @property
    def out_features(self) -> int:
        return self.signal.channels

    @property
    def sample_count(self) -> int:
        return self.signal.values[0].numel()

    def describe(self) -> dict:
        return self.signal.describe()

    def headline(self) -> str:
        return f"{self.signal.name} ({self.kind}, {self.signal.mode}, {self.size_text()})"

    def size_text(self) -> str:
        """The signal's size as ``specfit render --size`` takes it: images ``WIDTH x HEIGHT``,
        volumes ``D x H x W``, audio samples."""
        spatial = self.signal.spatial_shape
        if len(spatial) == 2:
            return f"{spatial[1]} x {spatial[0]}"
        return " x ".join(map(str, spatial)) + (" samples" if len(spatial) == 1 else "")

    def spectrum_target(
        self, value_range: str, device: torch.device, split: str = "all", holdout: float = 0.1, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        values = model_from_unit(self.signal.values.to(device), value_range)
        sampling = make_sampling(self.signal.spatial_shape, split, holdout, seed)
        sampling.coords = sampling.coords.to(device)
        return training_view(values, sampling)

    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        sampling = make_sampling(self.signal.spatial_shape, split, holdout, seed)
        sampling.coords = sampling.coords.to(device)
        values = model_from_unit(self.signal.values.to(device), value_range)
        targets = values.reshape(self.signal.channels, -1).T.contiguous()
        return TrainingData(sampling, targets)

    def reconstruction(self, model: nn.Module, value_range: str, data: TrainingData) -> torch.Tensor:
        """The model on the signal's grid, ``(C, *spatial)`` in [0, 1], on the CPU."""
        out = unit_from_model(predict(model, data.sampling.coords).float(), value_range)
        return out.clamp(0, 1).T.reshape(self.signal.values.shape).cpu()

    # PSNR's peak in the normalised values' units (1: values in [0, 1] with peak 1).
    psnr_peak = 1.0

    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        recon = self.reconstruction(model, value_range, data)
        target = self.signal.values
        peak = self.psnr_peak
        sampling = data.sampling
        flat_r, flat_t = recon.reshape(self.signal.channels, -1), target.reshape(self.signal.channels, -1)
        train = sampling.train.cpu()
        test = sampling.test.cpu() if sampling.test is not None else None
        metrics = {
            "psnr": psnr(recon, target, peak),
            "psnr_train": psnr(flat_r[:, train], flat_t[:, train], peak),
            "psnr_test": None if test is None else psnr(flat_r[:, test], flat_t[:, test], peak),
            "ssim": None,
        }
        held_out = f", held-out {metrics['psnr_test']:.2f}" if test is not None else ""
        outcome = Outcome(metrics, summary=f"PSNR {metrics['psnr']:.2f} dB (training "
                          f"{metrics['psnr_train']:.2f}{held_out})")
        self.outputs(outcome, model, value_range, data, recon, device)
        return outcome

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        """Add the type's files, metrics and report views to ``outcome`` (``recon`` as in :meth:`finish`)."""


def write_original_npy(path: Path, recon: torch.Tensor, signal: Signal) -> None:
    """Save ``recon`` ``(C, *spatial)`` in the signal's original units, channels last (dropped if 1)."""
    import numpy as np

    original = recon.movedim(0, -1).numpy() * signal.value_scale + signal.value_offset
    np.save(path, original[..., 0] if signal.channels == 1 else original)
