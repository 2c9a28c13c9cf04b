"""A fitted run in memory: the model, its complete configuration, its metrics; saved and loaded.

:func:`specfit.fit` returns a :class:`Run` and writes nothing; :meth:`Run.save` writes the run
folder (``config.json``, ``model.safetensors``, ``metrics.json``, the reconstruction and
``report.html``) and :func:`load_run` reads one back.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fresh.search import Selection
from specfit.kinds.registry import get_kind
from specfit.models.evaluate import predict, unit_from_model
from specfit.models.registry import ParamValue
from specfit.runs.checkpoints import CHECKPOINT, Checkpoint, write_checkpoint
from specfit.runs.folder import (
    check_writable_parent,
    load_model,
    read_config,
    run_lock,
    staged_directory,
    write_model,
)
from specfit.runs.format import CONFIG, HISTORY, METRICS, write_history
from specfit.signals.sampling import grid_coordinates
from specfit.util.files import dumps
from specfit.util.interrupts import deferred_interrupts
from specfit.util.runtime import resolve_device
from specfit.version import __version__


def hardware(device: torch.device | str = "cpu") -> dict:
    """The machine a fit ran on: its device, processor, cores, PyTorch's threads and the GPU."""
    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpu": gpu,
            "system": platform.platform(terse=True)}


def versions() -> dict[str, str]:
    """Versions of specfit, Python, PyTorch and NumPy, recorded in every run."""
    return {"specfit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__}


@dataclass
class RunConfig:
    """Everything needed to rebuild a run's model and to fit it again (``config.json``).

    Attributes:
        model: registry name.
        params: every hyperparameter of the trained model (resolved).
        in_features: coordinate dimension ``d``.
        out_features: output channels ``C``.
        value_range: ``"signed"`` (the model is trained on [-1, 1]) or ``"unit"`` ([0, 1]).
        convention: how the model applies its frequency.
        coordinates: the sampling grid's convention (``"signed"``: [-1, 1] per axis, endpoints
            included; ``"unit"``: ``i / N``).
        signal: the signal's description (kind, name, shape, value mapping, source, meta).
        settings: the fit's settings (model, params set by the user, FreSh grid, inits, bins,
            split, hold-out, seed, training options...).
        load: the options the signal was loaded with (``{}`` for an in-memory signal).
        versions: package versions.
        created: local time of the fit.
        command: the command line of a fit asked for by ``specfit fit`` (``None`` from Python).
        hardware: the machine the fit ran on (:func:`hardware`).
    """

    model: str
    params: dict[str, ParamValue]
    in_features: int
    out_features: int
    value_range: str
    convention: str
    coordinates: str
    signal: dict
    settings: FitSettings = field(default_factory=FitSettings)
    load: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=versions)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    command: str | None = None
    hardware: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["settings"] = self.settings.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunConfig:
        """From a validated ``config.json`` mapping (older runs lack settings, load and versions)."""
        settings = data.get("settings")
        for name in ("load", "versions", "hardware"):
            if not isinstance(data.get(name) or {}, dict):
                raise SpecfitError(f"{CONFIG}: {name} must be a mapping")
        return cls(
            model=data["model"], params=dict(data["params"]), in_features=data["in_features"],
            out_features=data["out_features"], value_range=data.get("value_range", "signed"),
            convention=data.get("convention", ""), coordinates=data.get("coordinates", "signed"),
            signal=dict(data.get("signal", {})),
            settings=FitSettings() if settings is None else FitSettings.from_json(settings),
            load=dict(data.get("load") or {}), versions=dict(data.get("versions") or {}),
            created=str(data.get("created", "")),
            command=data["command"] if isinstance(data.get("command"), str) else None,
            hardware=dict(data.get("hardware") or {}),
        )


SCORE_KEYS = ("psnr", "psnr_train", "psnr_test", "ssim")


@dataclass
class Metrics:
    """What a fit measured (``metrics.json``).

    Attributes:
        scores: the signal type's metrics: ``psnr``, ``psnr_train``, ``psnr_test`` (``None`` when
            nothing is held out), ``ssim`` and type-specific ones (``psnr_grad`` for images,
            ``iou_*`` and ``chamfer`` for shapes, ``psnr_frames`` for video...).
        steps: optimiser steps run.
        best_step: the step whose model was kept.
        train_seconds: training wall time.
        steps_per_second: training speed.
        params: trainable parameters.
        model: the registry name trained.
        knob: the model's frequency knob (``None`` for models without one).
        value: the knob's value trained.
        mode: ``"fresh"`` (chosen by FreSh), ``"set"`` (by the user) or ``"default"``.
        default_value: the knob's default.
        selection: FreSh's table and choice (``None`` without FreSh).
        history: one record per evaluation (``step``, ``loss``, scores on all / training /
            held-out samples).
        target: with a target PSNR (``target_psnr``), when training reached it: ``{psnr, step,
            seconds}`` (``None`` when it did not, or without a target; runs saved before targets
            existed read as ``None``).
    """

    scores: dict
    steps: int
    best_step: int
    train_seconds: float
    steps_per_second: float | None
    params: int
    model: str
    knob: str | None
    value: ParamValue
    mode: str
    default_value: ParamValue
    selection: dict | None
    interrupted: bool
    compiled: bool
    device: str
    split: dict
    summary: str
    compaction: dict | None
    notes: list[str]
    history: list[dict]
    target: dict | None = None

    def __getattr__(self, name: str) -> object:  # metrics.psnr, metrics.iou_boundary ...
        scores = self.__dict__.get("scores", {})
        if name in scores:
            return scores[name]
        raise AttributeError(name)

    def to_json(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scores"}
        return {**self.scores, **data}

    @classmethod
    def from_json(cls, data: dict) -> Metrics:
        names = {f.name for f in fields(cls)} - {"scores"}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted((names & required) - set(data))
        if missing:
            raise SpecfitError(f"{METRICS} lacks {', '.join(missing)}")
        return cls(scores={k: v for k, v in data.items() if k not in names},
                   **{k: v for k, v in data.items() if k in names})


@dataclass
class Run:
    """A fitted (or loaded) run.

    Attributes:
        model: the trained ``nn.Module`` (evaluation mode), mapping ``(N, d)`` coordinates to
            ``(N, C)`` outputs in the model's value range.
        config: the complete :class:`RunConfig`.
        metrics: the :class:`Metrics`.
        selection: FreSh's :class:`~specfit.fresh.search.Selection` of a fresh fit (``None`` when the
            knob was set or defaulted, and for loaded runs: its table is in ``metrics.selection``).
    """

    model: nn.Module
    config: RunConfig
    metrics: Metrics
    selection: Selection | None = None
    # What only a fresh fit has: output writers, report views and spectra (see Run.save).
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict, repr=False)
    report: Callable[[Path, dict, dict], None] | None = field(default=None, repr=False)
    checkpoint: Checkpoint | None = field(default=None, repr=False)

    @property
    def history(self) -> list[dict]:
        """One record per evaluation during training (see :class:`Metrics`)."""
        return self.metrics.history

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def predict(self, coords: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The model at ``(N, d)`` coordinates (the run's convention, e.g. [-1, 1] per axis).

        Returns ``(N, C)`` on the CPU: grid signals in the signal's normalised units [0, 1] (the
        values of :func:`specfit.load_signal`), shapes the model's raw output (occupancy logits
        or probabilities, signed distance in the normalised frame).
        """
        points = torch.as_tensor(coords, dtype=torch.float32)
        if points.ndim != 2 or points.shape[1] != self.config.in_features:
            raise SpecfitError(f"coords must be (N, {self.config.in_features}), got {tuple(points.shape)}")
        out = predict(self.model, points.to(self.device)).float().cpu()
        if get_kind(self.config.signal.get("kind", "image")).raw_outputs:
            return out
        return unit_from_model(out, self.config.value_range)

    def render(self, size: tuple[int, ...] | None = None) -> torch.Tensor:
        """The signal redrawn on a grid of ``size`` samples per axis (default: the signal's own).

        ``size`` is in the signal's axis order: images ``(H, W)``, audio ``(T,)``, video
        ``(T, H, W)``, volumes ``(D, H, W)``, shapes ``(R, R, R)``. Returns ``(C, *size)``
        (see :meth:`predict` for the units).
        """
        grid = tuple(self.config.signal.get("shape", [None])[1:]) if size is None else tuple(size)
        if len(grid) != self.config.in_features or not all(isinstance(n, int) and n > 0 for n in grid):
            raise SpecfitError(f"size must be {self.config.in_features} positive whole numbers, got {size}")
        coords = grid_coordinates(grid, self.config.coordinates)
        return self.predict(coords).T.reshape(-1, *grid)

    def save(self, folder: str | Path, progress: Progress = ignore) -> Path:
        """Write the run folder (staged and renamed; an existing folder is replaced only when it
        is a specfit run) and return its path. Loaded runs write their config, weights, metrics
        and training history (``history.csv``); fresh ones add the reconstruction, the report and
        the final training state (``checkpoint.safetensors``, from which ``specfit fit --resume``
        trains on with more ``--steps``)."""
        folder = Path(folder)
        with run_lock(folder), deferred_interrupts():
            folder = check_writable_parent(folder)
            progress(Event(Phase.WRITE, message=f"writing {folder}"))
            config, metrics = self.config.to_json(), self.metrics.to_json()
            with staged_directory(folder) as stage:
                write_model(stage, self.model, config)
                (stage / METRICS).write_text(dumps(metrics))
                write_history(stage / HISTORY, self.metrics.history)
                if self.checkpoint is not None:
                    write_checkpoint(stage / CHECKPOINT, self.checkpoint)
                for name, write in self.files.items():
                    write(stage / name)
                if self.report is not None:
                    self.report(stage / "report.html", metrics, config)
        return folder


def load_run(folder: str | Path, device: str = "cpu") -> Run:
    """Read a run folder written by :meth:`Run.save` or ``specfit fit``."""

    folder = Path(folder)
    config = read_config(folder)
    model, config = load_model(folder, resolve_device(device), config)
    try:
        metrics = Metrics.from_json(json.loads((folder / METRICS).read_text()))
    except (OSError, ValueError) as exc:
        raise SpecfitError(f"{folder / METRICS} is not readable ({exc})") from None
    return Run(model=model, config=RunConfig.from_json(config), metrics=metrics)


__all__ = ["Metrics", "Run", "RunConfig", "load_run"]
