"""One fit, end to end, for any signal type: FreSh selection -> training -> metrics -> run directory.

What differs between types (samples, spectrum target, metrics, outputs, report views) comes from
the signal's :class:`~specfit.tasks.Task`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from specfit.compaction import CompactionPlan, compact
from specfit.errors import SpecfitError
from specfit.fit import FitOptions, FitResult, fit_model
from specfit.interrupts import deferred_interrupts
from specfit.memory import check_fits, training_bytes
from specfit.models.registry import ParamValue, check_buildable, get_entry, resolve_params
from specfit.models.tuner import IntegerSineNet
from specfit.render import unit_from_model
from specfit.report import figure_uri, write_report
from specfit.runs import check_writable_parent, dumps, run_lock, staged_directory, write_model
from specfit.select import Selection, fresh_select, init_spectrum, plan_selection
from specfit.signals.sampling import SPLITS
from specfit.sine_spectrum import sine_spectrum_figure
from specfit.tasks import Task, task_for


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

    signal: object  # a loaded signal: a grid Signal or a Shape
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
    shape_target: str = "occupancy"
    video_spectrum: str = "frames"
    compaction: CompactionPlan | None = None
    _task: Task | None = field(default=None, init=False, repr=False)

    def task(self) -> Task:
        """The signal's task, made once (shapes cache their sample sets in it)."""
        if self._task is None:
            self._task = task_for(self.signal, self.shape_target, self.video_spectrum)
        return self._task


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


def _describe_plan(plan: CompactionPlan) -> str:
    parts = []
    if plan.densify:
        parts.append(f"add {plan.densify} inputs at 2 k")
    if plan.target_inputs is not None:
        parts.append(f"prune to {plan.target_inputs} inputs ({plan.ramp_steps} ramp steps)")
    parts.append(f"fine-tune {plan.finetune_steps} steps")
    return ", ".join(parts)


def _grid(request: FitRequest, task: Task) -> list[float] | None:
    """The FreSh grid: the user's, else the signal type's, else (``None``) the model's."""
    if request.grid is not None:
        return request.grid
    knob = get_entry(request.model).knob
    if knob is None:
        return None
    return task.default_grid(knob.grid, isinstance(knob.default, int))


def check_request(request: FitRequest) -> str:
    """Validate a request before any work; returns the mode: ``"fresh"``, ``"set"`` or ``"default"``."""
    request.options.check()
    entry = get_entry(request.model)
    task = request.task()
    resolve_device(request.device)
    resolve_params(entry, request.overrides)
    if request.split not in SPLITS:
        raise SpecfitError(f"unknown split {request.split!r}; choose from {', '.join(SPLITS)}")
    task.check_split(request.split)
    if request.compaction is not None:
        if not entry.name.startswith("tuner"):
            raise SpecfitError(f"pruning and densifying apply to the tuner models, not {entry.name}")
        request.compaction.check()
    if request.split == "holdout" and not 0.0 < request.holdout < 1.0:
        raise SpecfitError(f"--holdout must be in (0, 1), got {request.holdout}")
    knob = entry.knob.name if entry.knob else None
    overrides = {**task.model_params(entry.defaults), **request.overrides}
    size = check_buildable(entry, task.in_features, task.out_features, resolve_params(entry, overrides))
    samples = min(request.options.batch_size or task.default_batch_size or task.sample_count,
                  task.sample_count)
    check_fits(f"training {entry.name} (about {size.params:.3g} parameters) on {samples} samples a step",
               training_bytes(size, samples), resolve_device(request.device))
    if knob is not None and knob in request.overrides:
        return "set"
    if knob is not None and request.fresh:
        values, _ = task.spectrum_target(entry.value_range, torch.device("cpu"))
        plan_selection(values, entry.name, overrides, _grid(request, task), request.inits, request.bins,
                       task.per_frame)
        return "fresh"
    return "default"


def run_fit(request: FitRequest, out_dir: Path, hooks: Hooks | None = None) -> dict:
    """Fit ``request.signal`` and write the run directory ``out_dir``; returns ``metrics.json``.

    ``out_dir`` is locked against other writers for the whole fit. Once training has stopped
    (finished, or interrupted by Ctrl-C or SIGTERM, keeping the best model so far), evaluation and
    writing are not cut short by one more interrupt, so a finished model is never lost.
    """
    hooks = hooks or Hooks()
    mode = check_request(request)
    with run_lock(out_dir):
        check_writable_parent(out_dir)
        return _fit_locked(request, mode, Path(out_dir), hooks)


def _fit_locked(request: FitRequest, mode: str, out_dir: Path, hooks: Hooks) -> dict:
    entry = get_entry(request.model)
    task = request.task()
    device = resolve_device(request.device)
    params = resolve_params(entry, {**task.model_params(entry.defaults), **request.overrides})
    knob = entry.knob.name if entry.knob else None

    selection: Selection | None = None
    target = coords = None
    if mode == "fresh":
        _phase(hooks, f"FreSh: choosing {knob} for {entry.name}")
        target, coords = task.spectrum_target(entry.value_range, device)
        selection = fresh_select(
            target, coords, entry.name, params, _grid(request, task), request.inits, request.bins,
            request.seed, progress=hooks.on_select, per_frame=task.per_frame,
        )
        params = resolve_params(entry, {**params, knob: selection.chosen})

    data = task.training_data(request.split, request.holdout, request.seed, entry.value_range, device)
    options = request.options
    notes: list[str] = []
    if options.batch_size is None and task.default_batch_size is not None:
        options = replace(options, batch_size=task.default_batch_size)
        notes.append(f"trained on random mini-batches of {task.default_batch_size} samples per step")
    torch.manual_seed(request.seed)
    model = entry.build(task.in_features, task.out_features, **params).to(device)
    _phase(hooks, f"training {entry.name} ({knob}={params.get(knob)}) for {options.steps} steps")
    result: FitResult = fit_model(
        model, data.targets, data.sampling, options, entry.lr,
        lambda v: unit_from_model(v, entry.value_range), entry.compile,
        adam_betas=entry.adam_betas, adam_eps=entry.adam_eps,
        on_eval=hooks.on_eval, on_step=hooks.on_step,
        loss=task.loss_for(entry.value_range), score=task.score(entry.value_range),
        score_name=task.score_name,
    )
    compaction = None
    if request.compaction is not None:
        _phase(hooks, "compacting: " + _describe_plan(request.compaction))
        compaction = compact(
            result.model, data.targets, data.sampling, request.compaction, options, options.lr or entry.lr,
            lambda v: unit_from_model(v, entry.value_range),
            on_step=hooks.on_step, on_eval=hooks.on_eval, compile_ok=entry.compile,
        )
        params = {**params, **result.model.config_params()}
    with deferred_interrupts():  # from here on, the finished model is written whatever happens
        _phase(hooks, "evaluating")
        outcome = task.finish(result.model, entry.value_range, data, device)
        if isinstance(result.model, IntegerSineNet) and result.model.hidden and task.in_features <= 2:
            outcome.views.append(("Spectrum of the network",
                                  figure_uri(sine_spectrum_figure(result.model, trained=True))))
        edge_notes = [note for note in [selection.edge_note() if selection else None] if note]
        metrics = {
            **outcome.metrics,
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
            "split": data.sampling.describe(),
            "summary": outcome.summary,
            "compaction": None if compaction is None else compaction.to_json(),
            "notes": [*task.notes, *notes, *edge_notes, *result.notes,
                      *(compaction.notes if compaction else [])],
            "history": result.history,
        }
        spectra = None
        if selection is not None:
            spectra = _report_spectra(request, entry.name, params, selection, target, coords, task.per_frame)
        config = {
            "model": entry.name,
            "params": params,
            "in_features": task.in_features,
            "out_features": task.out_features,
            "value_range": entry.value_range,
            "convention": params.get("convention", entry.convention),
            "coordinates": data.sampling.convention,
            "signal": task.describe(),
            "seed": request.seed,
            "lr": options.lr or entry.lr,
            "fit": asdict(options),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _phase(hooks, "writing outputs")
        with staged_directory(out_dir) as stage:
            write_model(stage, result.model, config)
            (stage / "metrics.json").write_text(dumps(metrics))
            for name, write in outcome.files.items():
                write(stage / name)
            write_report(stage / "report.html", metrics, config, spectra, outcome.views)
        return metrics


def _report_spectra(
    request: FitRequest,
    model: str,
    params: dict[str, ParamValue],
    selection: Selection,
    target: torch.Tensor,
    coords: torch.Tensor,
    per_frame: bool,
) -> dict:
    """Target spectrum and mean init spectra at the chosen and default values, for the report."""
    entry = get_entry(model)
    knob = entry.knob.name
    default = entry.knob.default
    complete = {str(row.value) for row in selection.table if row.inits == selection.inits}
    if str(default) in complete:
        default_spectrum = selection.mean_spectra[str(default)]
    else:
        default_spectrum = init_spectrum(
            target, coords, model, {**params, knob: default}, selection.inits, selection.bins,
            request.seed, per_frame,
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
