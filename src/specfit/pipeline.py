"""One fit, end to end: sampling -> FreSh selection -> training -> metrics -> run directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.fit import FitOptions, FitResult, fit_model, predict, spatial_gradient_magnitude
from specfit.metrics import gradient_psnr, psnr, ssim
from specfit.models.registry import ParamValue, check_buildable, get_entry, resolve_params
from specfit.render import model_from_unit, unit_from_model
from specfit.report import write_report
from specfit.runs import dumps, staged_directory, write_model
from specfit.select import Selection, fresh_select, init_spectrum, plan_selection
from specfit.signals.base import Signal
from specfit.signals.image import write_image
from specfit.signals.sampling import SPLITS, make_sampling


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when present; ``"cuda"`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecfitError("--device cuda was asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise SpecfitError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


@dataclass
class FitRequest:
    """Everything ``specfit fit`` needs besides the output folder.

    ``overrides`` are ``--set`` values: setting the model's knob fixes it (no FreSh); other
    hyperparameters (``width``, ``convention``...) keep FreSh on.
    """

    signal: Signal
    model: str = "siren"
    overrides: dict[str, ParamValue] = field(default_factory=dict)
    fresh: bool = True
    grid: list[float] | None = None
    inits: int = 10
    bins: int | None = None
    split: str = "holdout"
    holdout: float = 0.1
    seed: int = 0
    device: str = "auto"
    options: FitOptions = field(default_factory=FitOptions)


@dataclass
class Hooks:
    """Progress callbacks for a front end (the library itself never prints)."""

    on_select: Callable[[int, int], None] | None = None
    on_step: Callable[[int], None] | None = None
    on_eval: Callable[[dict], None] | None = None
    on_phase: Callable[[str], None] | None = None


def _phase(hooks: Hooks, text: str) -> None:
    if hooks.on_phase is not None:
        hooks.on_phase(text)


def check_request(request: FitRequest) -> str:
    """Validate a request before any work; returns the mode: ``"fresh"``, ``"set"`` or ``"default"``."""
    request.options.check()
    entry = get_entry(request.model)
    resolve_device(request.device)
    resolve_params(entry, request.overrides)
    if request.split not in SPLITS:
        raise SpecfitError(f"unknown split {request.split!r}; choose from {', '.join(SPLITS)}")
    if request.split == "holdout" and not 0.0 < request.holdout < 1.0:
        raise SpecfitError(f"--holdout must be in (0, 1), got {request.holdout}")
    knob = entry.knob.name if entry.knob else None
    check_buildable(entry, request.signal.values.dim() - 1, request.signal.channels,
                    resolve_params(entry, request.overrides))
    if knob is not None and knob in request.overrides:
        return "set"
    if knob is not None and request.fresh:
        plan_selection(request.signal.values, entry.name, request.overrides, request.grid,
                       request.inits, request.bins)
        return "fresh"
    return "default"


def run_fit(request: FitRequest, out_dir: Path, hooks: Hooks | None = None) -> dict:
    """Fit ``request.signal`` and write the run directory ``out_dir``; returns ``metrics.json``."""
    hooks = hooks or Hooks()
    mode = check_request(request)
    entry = get_entry(request.model)
    device = resolve_device(request.device)
    signal = request.signal
    params = resolve_params(entry, request.overrides)
    knob = entry.knob.name if entry.knob else None
    sampling = make_sampling(signal.spatial_shape, request.split, request.holdout, request.seed)
    sampling.coords = sampling.coords.to(device)
    values = signal.values.to(device)
    model_values = model_from_unit(values, entry.value_range)

    selection: Selection | None = None
    if mode == "fresh":
        _phase(hooks, f"FreSh: choosing {knob} for {entry.name}")
        selection = fresh_select(
            model_values, sampling.coords, entry.name, params, request.grid,
            request.inits, request.bins, request.seed, progress=hooks.on_select,
        )
        params = resolve_params(entry, {**params, knob: selection.chosen})

    torch.manual_seed(request.seed)
    model = entry.build(sampling.coords.shape[1], signal.channels, **params).to(device)
    targets = model_values.reshape(signal.channels, -1).T.contiguous()
    _phase(hooks, f"training {entry.name} ({knob}={params.get(knob)}) for {request.options.steps} steps")
    result: FitResult = fit_model(
        model, targets, sampling, request.options, entry.lr,
        lambda v: unit_from_model(v, entry.value_range), entry.compile,
        adam_betas=entry.adam_betas, adam_eps=entry.adam_eps,
        on_eval=hooks.on_eval, on_step=hooks.on_step,
    )
    recon = unit_from_model(predict(result.model, sampling.coords).float(), entry.value_range)
    recon = recon.clamp(0, 1).T.reshape(values.shape).cpu()
    target_cpu = signal.values
    flat_r, flat_t = recon.reshape(signal.channels, -1), target_cpu.reshape(signal.channels, -1)
    test = sampling.test.cpu() if sampling.test is not None else None
    psnr_grad = None
    if signal.kind == "image":
        sizes = torch.tensor(signal.spatial_shape, dtype=torch.float32, device=device)
        scale = 2.0 / (sizes - 1).clamp(min=1) if sampling.convention == "signed" else 1.0 / sizes
        magnitude = spatial_gradient_magnitude(
            result.model, sampling.coords, signal.spatial_shape, scale,
            lambda v: unit_from_model(v, entry.value_range),
        )
        psnr_grad = gradient_psnr(magnitude.cpu(), target_cpu)
    edge_notes = [note for note in [selection.edge_note() if selection else None] if note]
    metrics = {
        "psnr": psnr(recon, target_cpu),
        "psnr_train": psnr(flat_r[:, sampling.train.cpu()], flat_t[:, sampling.train.cpu()]),
        "psnr_test": None if test is None else psnr(flat_r[:, test], flat_t[:, test]),
        "ssim": ssim(recon, target_cpu) if signal.kind == "image" else None,
        "psnr_grad": psnr_grad,
        "steps": result.steps,
        "best_step": result.best_step,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps / result.step_seconds if result.step_seconds else None,
        "params": sum(p.numel() for p in result.model.parameters()),
        "model": entry.name,
        "knob": knob,
        "value": params.get(knob) if knob else None,
        "mode": mode,
        "default_value": entry.knob.default if entry.knob else None,
        "selection": selection.to_json() if selection else None,
        "interrupted": result.interrupted,
        "compiled": result.compiled,
        "device": str(device),
        "split": sampling.describe(),
        "notes": [*signal.notes, *edge_notes, *result.notes],
        "history": result.history,
    }
    spectra = _report_spectra(request, entry.name, params, selection, model_values, sampling.coords)
    config = {
        "model": entry.name,
        "params": params,
        "in_features": int(sampling.coords.shape[1]),
        "out_features": signal.channels,
        "value_range": entry.value_range,
        "convention": params.get("convention", entry.convention),
        "coordinates": sampling.convention,
        "signal": signal.describe(),
        "seed": request.seed,
        "lr": request.options.lr or entry.lr,
        "fit": asdict(request.options),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _phase(hooks, "writing outputs")
    with staged_directory(out_dir) as stage:
        write_model(stage, result.model, config)
        (stage / "metrics.json").write_text(dumps(metrics))
        write_image(stage / "reconstruction.png", recon, signal.bit_depth)
        if signal.source and Path(signal.source).suffix.lower() == ".npy":
            original = recon.permute(1, 2, 0).numpy() * signal.value_scale + signal.value_offset
            np.save(stage / "reconstruction.npy", original.squeeze(-1) if signal.channels == 1 else original)
        write_report(stage / "report.html", target_cpu, recon, metrics, config, spectra)
    return metrics


def _report_spectra(
    request: FitRequest,
    model: str,
    params: dict[str, ParamValue],
    selection: Selection | None,
    model_values: torch.Tensor,
    coords: torch.Tensor,
) -> dict | None:
    """Target spectrum and mean init spectra at the chosen and default values, for the report."""
    if selection is None:
        return None
    entry = get_entry(model)
    knob = entry.knob.name
    default = entry.knob.default
    complete = {str(row.value) for row in selection.table if row.inits == selection.inits}
    if str(default) in complete:
        default_spectrum = selection.mean_spectra[str(default)]
    else:
        default_spectrum, _ = init_spectrum(
            model_values, coords, model, {**params, knob: default}, selection.inits,
            selection.bins, request.seed,
        )
    return {
        "knob": knob,
        "target": selection.target_spectrum,
        "chosen": selection.mean_spectra[str(selection.chosen)],
        "default": default_spectrum,
        "chosen_value": selection.chosen,
        "default_value": default,
        "table": selection.to_json()["table"],
    }
