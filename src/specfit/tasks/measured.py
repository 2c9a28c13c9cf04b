"""What CT and MRI share: a grid signal fitted only through a differentiable forward model.

The network represents the signal on its grid; every training step evaluates it on the whole grid,
measures the result (projects it, samples its k-space) and compares the measurements with the
measured data. The ground truth is never seen: it is the test, scored on the reconstruction. Every
measurement trains (``--split`` does not apply); ``psnr_train`` is the fit to the measurements,
``psnr`` the reconstruction against the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.metrics import psnr
from specfit.models.evaluate import unit_from_model
from specfit.signals.sampling import Sampling, grid_coordinates
from specfit.tasks.grid import GridTask


class MeasuredGridTask(GridTask):
    """A grid signal seen only through measurements; subclasses define the measurement."""

    compile_ok = False
    measured = True

    def __init__(self, signal) -> None:
        super().__init__(signal)
        self._grid = grid_coordinates(signal.spatial_shape, "signed")

    @property
    def notes(self) -> list[str]:
        return [*self.signal.notes, "every measurement trains; the reconstruction is scored against the "
                "ground truth, which training never sees (--split does not apply)"]

    def check_split(self, split: str) -> None:
        if split == "lattice":
            raise SpecfitError(f"the lattice split is defined for images only, not {self.kind} measurements")

    def image_of(self, model: nn.Module, value_range: str) -> torch.Tensor:
        """The model on the signal's grid, ``(1, C, *spatial)`` in [0, 1] units (not clamped), with
        gradients when enabled."""
        device = next(model.parameters()).device
        grid = self._grid.to(device)
        out = unit_from_model(model(grid), value_range)
        return out.T.reshape(1, self.signal.channels, *self.signal.spatial_shape)

    def sampling(self, count: int, device: torch.device) -> Sampling:
        """Measurement ``i`` has the coordinate ``(i,)``; all of them train (the model itself sees
        ``"signed"`` grid coordinates)."""
        coords = torch.arange(count, dtype=torch.float32, device=device).unsqueeze(1)
        return Sampling(coords, torch.arange(count), None, "signed", "all")

    def peak_score(self, targets: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], float]:
        """Measurement PSNR (predicted against measured values, which are in the signal's units
        whatever the model's range): the peak is the largest measured magnitude."""
        peak = float(targets.abs().max().clamp_min(1e-12))

        def score(prediction: torch.Tensor, target: torch.Tensor) -> float:
            return psnr(prediction, target, peak)

        return score
