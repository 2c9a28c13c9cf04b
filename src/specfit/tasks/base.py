"""What a signal type contributes to a fit: its samples, its FreSh target, its metrics and outputs.

A :class:`Task` wraps one loaded signal. The pipeline (``specfit.fitting.pipeline``) is the same for every
type: it asks the task for training data and a spectrum target, runs FreSh and training, then asks
the task to evaluate the trained model, write its outputs and draw its report views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.figures import View
from specfit.fresh.measured import MeasuredSpectrum
from specfit.fresh.search import FreshTarget
from specfit.models.params import ParamValue
from specfit.signals.sampling import Sampling
from specfit.training.loop import Forward


@dataclass
class TrainingData:
    """Samples to train on.

    Attributes:
        sampling: coordinates ``(N, d)`` and the train / held-out split; for a measured signal,
            measurement coordinates (rays, k-space indices ...).
        targets: ``(N, C)`` in the model's value range (labels in {0, 1} for ``loss="bce"``), or
            the measurements.
        forward: how the model becomes measurements (``None``: the model's outputs are compared
            with the targets directly).
    """

    sampling: Sampling
    targets: torch.Tensor
    forward: Forward | None = None


@dataclass
class Outcome:
    """What a task makes of a trained model.

    Attributes:
        metrics: entries merged into ``metrics.json`` (at least ``psnr``, ``psnr_train``,
            ``psnr_test``, ``ssim``, possibly ``None``).
        files: output file name -> writer called with the staged path to write.
        views: report sections: :class:`specfit.figures.View` (a figure or HTML with its reading
            guide), or ``(title, data-URI PNG)`` pairs.
        summary: one line for the command line.
    """

    metrics: dict
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    views: list[View | tuple[str, str]] = field(default_factory=list)
    summary: str = ""


class Task(ABC):
    """One signal and how to fit it.

    Attributes:
        kind: ``"image"``, ``"audio"``, ``"video"``, ``"volume"`` or ``"shape"``.
        loss: training loss (see :data:`specfit.training.loop.LOSSES`).
        score_name: the metric tracked during training (``"psnr"`` or ``"iou"``).
        per_frame: FreSh compares mean per-frame spectra (video).
        default_batch_size: samples per step when the user gives none (``None``: full batch).
        compile_ok: whether the training step may be compiled (measured signals: no).
        points_per_sample: network evaluations per training sample (NeRF: samples per ray), for
            the memory check.
        measured: the signal is seen only through measurements (CT, MRI, NeRF).
        batchable: grid signals of this task with one shape (``signal.values``) and split can be
            trained together, their models stacked (``specfit fit`` of many images,
            :mod:`specfit.fitting.batch`).
        frequency_label: what one unit of FreSh's spectrum radius is, for the report's axis
            (see :meth:`frequency_axis`).
    """

    kind: str
    loss: str = "mse"
    score_name: str = "psnr"
    per_frame: bool = False
    default_batch_size: int | None = None
    compile_ok: bool = True
    points_per_sample: int = 1
    measured: bool = False
    batchable: bool = False
    frequency_label: str = "frequency (cycles over the signal, L1 radius)"

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name for output folders."""

    @property
    @abstractmethod
    def notes(self) -> list[str]:
        """Notes from loading (resizing, cropping ...)."""

    @property
    @abstractmethod
    def in_features(self) -> int:
        """Coordinate dimension ``d``."""

    @property
    @abstractmethod
    def out_features(self) -> int:
        """Output channels ``C``."""

    @property
    @abstractmethod
    def sample_count(self) -> int:
        """Number of training samples (before any hold-out)."""

    @abstractmethod
    def describe(self) -> dict:
        """JSON description stored as ``config["signal"]``."""

    @abstractmethod
    def headline(self) -> str:
        """One line describing the signal, e.g. ``"cameraman (L, 256 x 256)"``."""

    def loss_for(self, value_range: str) -> str:
        """The training loss for a model with ``value_range`` (``"signed"`` or ``"unit"``)."""
        return self.loss

    def model_params(self, params: object) -> dict[str, ParamValue]:
        """Hyperparameters the signal fixes for a model of the family whose parameter object is
        ``params`` (e.g. a clip's frames, :meth:`~specfit.models.params.ModelParams.frame_params`)."""
        return {}

    def default_grid(self, knob_grid: tuple[float, ...], integer: bool) -> list[float] | None:
        """FreSh's grid for this signal type when the user gives none (``None``: the model's)."""
        return None

    def check_split(self, split: str) -> None:
        """Raise :class:`~specfit.errors.SpecfitError` if ``split`` does not apply to this signal."""
        if split == "lattice":
            raise SpecfitError("the lattice split is defined for images only")

    @abstractmethod
    def spectrum_target(
        self, value_range: str, device: torch.device, split: str = "all", holdout: float = 0.1, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """FreSh's target ``(C, *spatial)`` and the coordinates ``(N, d)`` of its grid, row-major,
        built from the samples that training sees under ``split`` (held-out samples never enter)."""

    @abstractmethod
    def training_data(
        self, split: str, holdout: float, seed: int, value_range: str, device: torch.device
    ) -> TrainingData:
        """Samples and targets for training."""

    def measured_spectrum(self, value_range: str, device: torch.device, spectrum: str, objective: str,
                          bins: int | None) -> MeasuredSpectrum | None:
        """FreSh's comparison in the measurement domain for a signal seen only through measurements
        (``None``: compare spectra of the signal itself, from :meth:`spectrum_target`)."""
        return None

    def fresh_target(
        self, value_range: str, device: torch.device, spectrum: str = "signal", objective: str = "fit",
        bins: int | None = None, split: str = "all", holdout: float = 0.1, seed: int = 0,
    ) -> FreshTarget:
        """What FreSh matches for this signal: its measurements' spectra when it is seen only through
        them (:meth:`measured_spectrum`), else the spectrum of what training sees under ``split``
        (:meth:`spectrum_target`)."""
        measured = self.measured_spectrum(value_range, device, spectrum, objective, bins)
        if measured is not None:
            empty = torch.empty(0, self.in_features, device=device)
            return FreshTarget(empty, empty, spectrum, objective, bins, measured=measured)
        values, coords = self.spectrum_target(value_range, device, split, holdout, seed)
        return FreshTarget(values, coords, spectrum, objective, bins, self.per_frame)

    def frequency_axis(self, band: dict | None) -> dict | None:
        """How FreSh's spectrum bins map to frequencies, for the report: ``{"label", "scale", "unit"}``
        with bin ``k`` (1-based) ending at ``k * scale`` in ``unit``; ``None`` when the band's edge
        is unknown.

        ``band`` is :meth:`specfit.fresh.spectra.Band.to_json`'s mapping: its ``edge`` is in cycles
        over the whole signal, ``bins`` bins up to it. The unit is cycles over the signal
        (:attr:`frequency_label` says over what); audio's is Hz.
        """
        per_bin = cycles_per_bin(band)
        if per_bin is None:
            return None
        return {"label": self.frequency_label, "scale": per_bin, "unit": "cycles"}

    def score(self, value_range: str) -> Callable[[torch.Tensor, torch.Tensor], float] | None:
        """Training-time score of raw outputs against targets (``None``: PSNR)."""
        return None

    @abstractmethod
    def finish(self, model: nn.Module, value_range: str, data: TrainingData, device: torch.device) -> Outcome:
        """Evaluate the trained ``model``: metrics, output files and report views."""


def cycles_per_bin(band: dict | None) -> float | None:
    """The cycles over the whole signal (over the segments' signal for a segmented 1-D band) that one
    bin of ``band`` (:meth:`specfit.fresh.spectra.Band.to_json`) spans; ``None`` without an edge."""
    if not band or not band.get("edge") or not band.get("bins"):
        return None
    return float(band["edge"]) / int(band["bins"])


SHAPE_TARGETS = ("occupancy", "sdf")


VIDEO_SPECTRA = ("frames", "3d")


