"""One fit, end to end, for any signal type: check -> FreSh selection -> training -> a :class:`Run`.

What differs between types (samples, spectrum target, metrics, outputs, report views) comes from
the signal's :class:`~specfit.tasks.Task`; what differs between models (compaction after training,
extra report views) from hooks of its registry entry. Nothing here writes files: :meth:`Run.save`
does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fitting.probes import ProbeSetup, run_probes, with_probes
from specfit.fresh.options import SPECTRUM_SEARCHES
from specfit.fresh.search import Selection, SelectionPlan, fresh_select, init_spectrum
from specfit.kinds.registry import task_for
from specfit.models.evaluate import unit_from_model
from specfit.models.memory import check_fits, training_bytes
from specfit.models.registry import ModelEntry, ParamValue, check_buildable, get_entry, resolve_params
from specfit.report.html import write_report
from specfit.runs.checkpoints import Checkpoint, CheckpointSink, check_resumable
from specfit.runs.run import Metrics, Run, RunConfig, hardware
from specfit.tasks import Task
from specfit.tasks.base import TrainingData
from specfit.training.compaction import CompactionPlan, CompactionResult, compact
from specfit.training.loop import Callbacks, FitOptions, FitResult, SingleModel, Trainer
from specfit.util.formatting import shown
from specfit.util.interrupts import deferred_interrupts
from specfit.util.runtime import resolve_device, tune_allocator

# What a refusal for memory suggests (the options that make training need less).
MEMORY_FIX = "a smaller --resize (fewer samples) or a --batch-size (fewer samples a step) needs less"


@dataclass
class FitPlan:
    """A fit checked before any work (:func:`plan_fit`), holding what the checks computed.

    Attributes:
        mode: ``"fresh"`` (FreSh chooses the knob), ``"set"`` (the user set it) or ``"default"``.
        params: every hyperparameter, resolved (the knob at its default until FreSh chooses).
        selection: FreSh's checked plan, with the target spectrum, in ``"fresh"`` mode.
        target, coords: FreSh's target ``(C, *spatial)`` and its grid ``(N, d)`` on ``device``.
        command: the command line that asked for the fit (recorded in the run), if any.
        samples_per_step, memory_bytes: the samples one training step sees, and the bytes
            training them needs by the model's estimate (:func:`~specfit.models.memory.training_bytes`).
    """

    signal: object
    settings: FitSettings
    entry: ModelEntry
    task: Task
    device: torch.device
    mode: str
    params: dict[str, ParamValue]
    selection: SelectionPlan | None = None
    target: torch.Tensor | None = None
    coords: torch.Tensor | None = None
    command: str | None = None
    samples_per_step: int = 0
    memory_bytes: int = 0


def _grid(settings: FitSettings, entry: ModelEntry, task: Task) -> list[float] | None:
    """The FreSh grid: the user's, else the signal type's, else (``None``) the model's."""
    if settings.grid is not None or entry.knob is None:
        return settings.grid
    return task.default_grid(entry.knob.grid, isinstance(entry.knob.default, int))


def plan_fit(signal: object, settings: FitSettings) -> FitPlan:
    """Check ``settings`` against ``signal`` once, before any work, and plan the fit.

    Raises :class:`SpecfitError` for anything that would fail later: unknown model or parameter,
    a split the signal has no use for, a model that cannot be built or would not fit in memory,
    an invalid FreSh grid, a constant signal.
    """
    settings.check()
    entry = get_entry(settings.model)
    task = task_for(signal, settings.shape_target, settings.video_spectrum)
    device = resolve_device(settings.device)
    task.check_split(settings.split)
    if settings.compaction is not None and not entry.compactable:
        raise SpecfitError(f"model {entry.name} cannot be pruned or densified (only models with "
                           "integer-frequency inputs can, e.g. tuner)")
    if settings.compaction is not None and task.measured:
        raise SpecfitError(f"pruning and densification fit signals directly; a {task.kind} signal is fitted "
                           "through its measurements")
    resolve_params(entry, settings.params)  # names the user's own unknown parameters
    params = resolve_params(entry, {**task.model_params(entry.params), **settings.params})
    size = check_buildable(entry, task.in_features, task.out_features, params)
    samples = min(settings.fit.batch_size or task.default_batch_size or task.sample_count, task.sample_count)
    memory = training_bytes(size, samples * task.points_per_sample)
    check_fits(f"training {entry.name} (about {size.params:.3g} parameters) on {samples} samples a step",
               memory, device, fix=MEMORY_FIX)
    knob = entry.knob.name if entry.knob else None
    if knob is not None and knob in settings.params:
        return FitPlan(signal, settings, entry, task, device, "set", params, samples_per_step=samples,
                       memory_bytes=memory)
    if knob is None or not settings.fresh:
        return FitPlan(signal, settings, entry, task, device, "default", params, samples_per_step=samples,
                       memory_bytes=memory)
    if settings.two_knobs and settings.search == "probes":
        raise SpecfitError("the probes train values of one knob; with two_knobs, search by bracket or full",
                           setting="search")
    target = task.fresh_target(entry.value_range, device, settings.resolved_spectrum(task.kind),
                               settings.resolved_objective(), settings.bins, settings.split, settings.holdout,
                               settings.seed)
    # The probes start from the bracket search's ranking (see specfit.fitting.probes).
    search = settings.search if settings.search in SPECTRUM_SEARCHES else "bracket"
    selection = target.plan(entry.name, params, _grid(settings, entry, task), settings.inits, search,
                            settings.two_knobs)
    return FitPlan(signal, settings, entry, task, device, "fresh", params, selection, target.values,
                   target.coords, samples_per_step=samples, memory_bytes=memory)


def _describe_compaction(plan: CompactionPlan) -> str:
    parts = []
    if plan.densify:
        parts.append(f"add {plan.densify} inputs at 2 k")
    if plan.target_inputs is not None:
        parts.append(f"prune to {plan.target_inputs} inputs ({plan.ramp_steps} ramp steps)")
    parts.append(f"fine-tune {plan.finetune_steps} steps")
    return ", ".join(parts)


def fit_signal(signal: object, settings: FitSettings, progress: Progress = ignore) -> Run:
    """Fit ``signal`` (a loaded signal, see :func:`specfit.load_signal`) as ``settings`` say.

    Writes nothing; returns the :class:`Run`. Ctrl-C (or SIGTERM where the caller turns it into
    ``KeyboardInterrupt``) during training stops it and keeps the best model so far; once
    training has stopped, evaluation is not cut short by one more interrupt.
    """
    return run_plan(plan_fit(signal, settings), progress)


@dataclass
class Choice:
    """What a fit settled before training: every hyperparameter, and how the knob was chosen.

    Attributes:
        params: the resolved hyperparameters trained (the knob at FreSh's choice in ``"fresh"``
            mode); mode: ``"fresh"``, ``"set"`` or ``"default"``.
        selection: FreSh's :class:`Selection` (``None`` without FreSh or when continuing a run);
            selection_json: its table as saved; spectra: the report's spectra (``None`` without
            FreSh).
    """

    params: dict[str, ParamValue]
    mode: str
    selection: Selection | None = None
    selection_json: dict | None = None
    spectra: dict | None = None

    def facts(self) -> dict:
        """What a checkpoint keeps of the choice (see :class:`~specfit.runs.checkpoints.Checkpoint`)."""
        return {"params": self.params, "mode": self.mode, "selection": self.selection_json,
                "spectra": self.spectra}

    @classmethod
    def from_facts(cls, facts: dict) -> Choice:
        return cls(dict(facts["params"]), facts["mode"], None, facts.get("selection"), facts.get("spectra"))


def choose(plan: FitPlan, progress: Progress = ignore) -> Choice:
    """Settle the hyperparameters of a planned fit: FreSh's selection in ``"fresh"`` mode (of both
    knobs with ``two_knobs``), and with ``search="probes"`` the probes' choice among its best
    values (:mod:`specfit.fitting.probes`)."""
    entry, params = plan.entry, plan.params
    if plan.mode != "fresh":
        return Choice(params, plan.mode)
    knobs = entry.knob.name if plan.selection.second_knob is None else \
        f"{entry.knob.name} and {plan.selection.second_knob}"
    progress(Event(Phase.SELECT, message=f"FreSh: choosing {knobs} for {entry.name}"))
    selection = fresh_select(
        plan.target, plan.coords, entry.name, params, seed=plan.settings.seed, plan=plan.selection,
        progress=lambda done, total: progress(Event(Phase.SELECT, done, total)),
    )
    if plan.settings.search == "probes":
        setup = ProbeSetup(plan.task, entry, params, plan.settings, plan.device)
        selection = with_probes(selection, run_probes(setup, selection, progress))
    params = resolve_params(entry, {**params, **selection.pair})
    spectra = _plain(_report_spectra(plan, params, selection))
    return Choice(params, "fresh", selection, selection.to_json(), spectra)


@dataclass
class Prepared:
    """A fit ready to train: its data, options (the task's mini-batches filled in), the freshly
    initialised model, its :class:`RunConfig` and notes."""

    data: TrainingData
    options: FitOptions
    model: torch.nn.Module
    config: RunConfig
    notes: list[str]


def prepare(plan: FitPlan, choice: Choice) -> Prepared:
    """Build the training data and the model (seeded by the fit's seed) for ``choice``."""
    settings, entry, task, device = plan.settings, plan.entry, plan.task, plan.device
    data = task.training_data(settings.split, settings.holdout, settings.seed, entry.value_range, device)
    options = settings.fit
    notes: list[str] = []
    if options.batch_size is None and task.default_batch_size is not None:
        options = replace(options, batch_size=task.default_batch_size)
        notes.append(f"trained on random mini-batches of {task.default_batch_size} samples per step")
    torch.manual_seed(settings.seed)
    model = entry.create(task.in_features, task.out_features, choice.params).to(device)
    params = choice.params
    config = RunConfig(
        model=entry.name, params=params, in_features=task.in_features, out_features=task.out_features,
        value_range=entry.value_range, convention=str(params.get("convention", entry.convention)),
        coordinates=data.sampling.convention, signal=task.describe(), settings=settings,
        load=dict(getattr(plan.signal, "load_options", {})), command=plan.command, hardware=hardware(device),
    )
    return Prepared(data, options, model, config, notes)


def single_model(plan: FitPlan, ready: Prepared) -> SingleModel:
    """The training strategy of a prepared fit: its one model on its data, loss and score."""
    entry, task, data = plan.entry, plan.task, ready.data
    return SingleModel(ready.model, data.targets, data.sampling,
                       lambda values: unit_from_model(values, entry.value_range),
                       loss=task.loss_for(entry.value_range), score=task.score(entry.value_range),
                       score_name=task.score_name, forward=data.forward,
                       compile_ok=entry.compile and task.compile_ok)


def run_plan(
    plan: FitPlan, progress: Progress = ignore, checkpoints: CheckpointSink | None = None,
    resume: Checkpoint | None = None, choice: Choice | None = None,
) -> Run:
    """Carry out a checked :class:`FitPlan` (see :func:`fit_signal`).

    ``checkpoints`` receives the run's configuration before training and a
    :class:`~specfit.runs.checkpoints.Checkpoint` every ``settings.fit.checkpoint_every`` steps and when
    interrupted; ``resume`` continues from such a checkpoint (FreSh is not run again: its choice
    and table come from the checkpoint); ``choice`` is one :func:`choose` made already.
    """
    tune_allocator()
    entry = plan.entry
    knob = entry.knob.name if entry.knob else None
    if resume is not None:
        choice = Choice.from_facts(resume.fit)
    elif choice is None:
        choice = choose(plan, progress)
    ready = prepare(plan, choice)
    if resume is not None:
        check_resumable(resume, ready.model)
    options, params = ready.options, choice.params
    on_checkpoint = None
    if checkpoints is not None:
        checkpoints.begin(ready.config.to_json())
        on_checkpoint = lambda states: checkpoints(Checkpoint(states[0], choice.facts()))  # noqa: E731
    steps = options.steps
    start = f"continuing from step {resume.state.step} to {steps}" if resume else f"for {steps} steps"
    progress(Event(Phase.TRAIN, resume.state.step if resume else 0, steps,
                   message=f"training {entry.name} ({knob}={shown(params.get(knob))}) {start}"))

    def to_unit(values: torch.Tensor) -> torch.Tensor:
        return unit_from_model(values, entry.value_range)

    data = ready.data
    strategy = single_model(plan, ready)
    callbacks = Callbacks(
        on_step=lambda step: progress(Event(Phase.TRAIN, step, steps)),
        on_eval=lambda _, record: progress(Event(Phase.TRAIN, record["step"], steps, record=record)),
        on_checkpoint=on_checkpoint,
    )
    trainer = Trainer(strategy, options, entry.lr, entry.adam_betas, entry.adam_eps, callbacks)
    (result,) = trainer.fit(None if resume is None else [resume.state])
    final = Checkpoint(result.state, choice.facts()) if result.state is not None else None
    compaction = None
    if plan.settings.compaction is not None:
        plan_c = plan.settings.compaction
        total = (plan_c.ramp_steps if plan_c.target_inputs is not None else 0) + plan_c.finetune_steps
        progress(Event(Phase.COMPACT, 0, total, message="compacting: " + _describe_compaction(plan_c)))
        compaction = compact(
            result.model, data.targets, data.sampling, plan_c, options, options.lr or entry.lr, to_unit,
            on_step=lambda step: progress(Event(Phase.COMPACT, step, total)),
            on_eval=lambda record: progress(Event(Phase.COMPACT, record["step"], total, record=record)),
            compile_ok=entry.compile,
        )
        choice = replace(choice, params={**params, **result.model.config_params()})
        ready.config.params = choice.params
        final = None  # the compacted model no longer matches the training state
    return finish(plan, choice, ready, result, progress, compaction, final)


def finish(
    plan: FitPlan, choice: Choice, ready: Prepared, result: FitResult, progress: Progress = ignore,
    compaction: CompactionResult | None = None, final: Checkpoint | None = None,
) -> Run:
    """Evaluate a trained model and assemble its :class:`Run` (interrupts are held back meanwhile)."""
    entry, task, device = plan.entry, plan.task, plan.device
    knob = entry.knob.name if entry.knob else None
    selection = choice.selection
    with deferred_interrupts():  # from here on, the finished model is kept whatever happens
        progress(Event(Phase.EVALUATE, message="evaluating"))
        outcome = task.finish(result.model, entry.value_range, ready.data, device)
        if entry.report_views is not None:
            outcome.views.extend(entry.report_views(result.model, task.in_features))
        metrics = Metrics(
            scores=outcome.metrics,
            steps=result.steps,
            best_step=result.best_step,
            train_seconds=result.train_seconds,
            steps_per_second=result.steps / result.step_seconds if result.step_seconds else None,
            params=sum(p.numel() for p in result.model.parameters()),
            model=entry.name,
            knob=knob,
            value=choice.params.get(knob) if knob else None,
            mode=choice.mode,
            default_value=entry.knob.default if entry.knob else None,
            selection=choice.selection_json,
            interrupted=result.interrupted,
            compiled=result.compiled,
            device=str(device),
            split=ready.data.sampling.describe(),
            summary=outcome.summary,
            compaction=None if compaction is None else compaction.to_json(),
            notes=[*task.notes, *ready.notes, *(selection.notes if selection else []), *result.notes,
                   *(compaction.notes if compaction else [])],
            history=result.history,
            target=None if result.target is None else result.target.to_json(),
        )
        spectra = choice.spectra

        def report(path, metrics_json: dict, config_json: dict) -> None:
            write_report(path, metrics_json, config_json, spectra, outcome.views)

        return Run(model=result.model, config=ready.config, metrics=metrics, selection=selection,
                   files=outcome.files, report=report, checkpoint=final)


def _plain(value: object) -> object:
    """``value`` with tensors and arrays as lists and tuples as lists (ready for JSON)."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _report_spectra(plan: FitPlan, params: dict[str, ParamValue], selection: Selection) -> dict:
    """Target spectrum and mean init spectra at the chosen and default values (with two knobs:
    the chosen and default pairs), for the report."""
    entry = plan.entry
    knob, default = entry.knob.name, entry.knob.default
    complete = {str(row.value) for row in selection.table if row.inits == selection.inits}
    defaults = {}
    if selection.second_knob is not None:
        defaults = {selection.second_knob: plan.params[selection.second_knob]}
        if selection.second_chosen != plan.params[selection.second_knob]:
            complete = set()  # FreSh's spectra are at another value of the second knob
    if plan.selection is None or plan.coords is None:
        raise SpecfitError("report spectra need a FreSh selection")

    def untrained(value: ParamValue, evaluated: set[str], others: dict[str, ParamValue]) -> list[float]:
        """The mean spectrum at ``value``: FreSh's when its key is in ``evaluated``, else computed
        with ``others`` over the trained parameters."""
        if str(value) in evaluated:
            return selection.mean_spectra[str(value)]
        return init_spectrum(plan.coords, entry.name, {**params, **others, knob: value}, plan.selection,
                             plan.settings.seed)

    two = {} if selection.table_2d is None else {
        "second_knob": selection.second_knob, "second_chosen": selection.second_chosen,
        "second_default": defaults[selection.second_knob], "table_2d": selection.table_2d.to_json()}
    return {
        **two,
        "knob": knob,
        "target": selection.target_spectrum,
        # the probes may choose a value FreSh's search skipped
        "chosen": untrained(selection.chosen, set(selection.mean_spectra), {}),
        "default": untrained(default, complete, defaults),
        "chosen_value": selection.chosen,
        "default_value": default,
        "table": selection.to_json()["table"],
        "inits": selection.inits,
        "band": selection.band,
        # bin k of the spectra ends at k * scale in physical units (Hz for audio, cycles per image ...)
        "frequency_axis": plan.task.frequency_axis(selection.band),
    }
