"""Fit many signals with one configuration: one run folder each, and a summary table.

Every signal is loaded and checked before any work, FreSh chooses each one's knob, and images of
the same size whose models can be stacked (:func:`specfit.training.stacked.can_stack`) are then trained
together as one computation; the others one after another, each as ``specfit fit`` would. Every run
folder gets its checkpoints as it trains, also when trained together with others, and
``resume=True`` continues the runs from them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fitting.pipeline import Choice, FitPlan, choose, finish, plan_fit, prepare, run_plan
from specfit.models.evaluate import unit_from_model
from specfit.runs.checkpoints import Checkpoint, FolderCheckpoints, read_checkpoint
from specfit.runs.folder import check_writable_parent, refuse_existing, run_lock
from specfit.runs.format import CHECKPOINT
from specfit.runs.outputs import check_output_file
from specfit.runs.run import Run
from specfit.training.loop import Callbacks, Trainer
from specfit.training.stacked import StackedModels, can_stack
from specfit.util.files import staged_file
from specfit.util.formatting import shown

SUMMARY = "summary.csv"
SUMMARY_HEADER = "signal,run,model,"  # how every summary this module writes begins
SUMMARY_SCORES = ("psnr", "psnr_train", "psnr_test", "ssim", "iou", "iou_boundary", "chamfer", "snr")


@dataclass
class FitOutcome:
    """One signal's fit: where it came from, where its run was written, the run, and whether it
    was trained together with others."""

    source: str
    out: Path
    run: Run
    batched: bool


def _folders(plans: list[FitPlan], parent: Path, overwrite: bool, resume: bool) -> list[Path]:
    """One run folder per signal, ``PARENT/NAME-MODEL`` (numbered when two signals share a name);
    existing folders are refused unless ``overwrite``, or ``resume`` and they hold a checkpoint, and
    so is a ``PARENT/summary.csv`` that specfit did not write (see :mod:`specfit.runs.outputs`)."""
    outs: list[Path] = []
    for plan in plans:
        base = parent / f"{plan.task.name}-{plan.entry.name}"
        out, k = base, 2
        while out in outs:
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
        if not (resume and (out / CHECKPOINT).is_file()):
            refuse_existing(out, overwrite)
        check_writable_parent(out)
        outs.append(out)
    check_output_file(parent / SUMMARY, "--out", _is_summary, "specfit fit", create_folder=True)
    return outs


def _is_summary(path: Path) -> bool:
    """Whether the file ``path`` begins as :func:`write_summary` begins a table."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SUMMARY_HEADER)) == SUMMARY_HEADER.encode()
    except OSError:
        return False


def _groups(plans: list[FitPlan], batched: bool, resumed: list[Checkpoint | None]) -> list[list[int]]:
    """Indices of plans trained together: signals of a batchable task (images, see
    :attr:`specfit.tasks.Task.batchable`) of one size and split (full batches) that continue from
    the same step (or start), when ``batched``; every other plan alone."""
    if not batched:
        return [[i] for i in range(len(plans))]
    keys: dict[tuple, list[int]] = {}
    for i, (plan, checkpoint) in enumerate(zip(plans, resumed, strict=True)):
        task = plan.task
        alone = not task.batchable or plan.settings.fit.batch_size is not None or plan.settings.compaction
        step = None if checkpoint is None else checkpoint.state.step
        key = ("alone", i) if alone else (tuple(task.signal.values.shape), plan.settings.split, step)
        keys.setdefault(key, []).append(i)
    return list(keys.values())


def _checkpoint(plan: FitPlan, out: Path, resume: bool) -> Checkpoint | None:
    """The checkpoint a run continues from: its folder's, when ``resume`` and it has one."""
    if not (resume and (out / CHECKPOINT).is_file()):
        return None
    checkpoint = read_checkpoint(out / CHECKPOINT, plan.device)
    if plan.settings.fit.steps < checkpoint.state.step:
        raise SpecfitError(f"{out} has trained {checkpoint.state.step} steps already; --steps must be at "
                           "least that")
    return checkpoint


def fit_many(
    sources: list[str],
    load: Callable[[str], object],
    settings: FitSettings,
    parent: Path,
    overwrite: bool = False,
    batched: bool = True,
    progress: Progress = ignore,
    command: str | None = None,
    on_done: Callable[[int, str, Path, Run], None] | None = None,
    resume: bool = False,
) -> list[FitOutcome]:
    """Fit every source with ``settings``; write each run to its folder under ``parent``.

    ``load`` turns a source into a loaded signal. Every signal is loaded and planned before any
    training, so a bad file stops the command before any work. ``on_done(index, source, out, run)``
    is called as each run is written. Returns one :class:`FitOutcome` per source, in order.

    ``resume`` continues every run whose folder holds a checkpoint (written periodically, when
    interrupted, and with the finished run) to ``settings.fit.steps``, with the choice FreSh made
    then; runs trained together continue together and end with the weights an uninterrupted
    command would have given (bit for bit on the CPU). Runs without a checkpoint start afresh.
    """
    plans = [plan_fit(load(source), settings) for source in sources]
    for plan in plans:
        plan.command = command
    outs = _folders(plans, parent, overwrite, resume)
    resumed = [_checkpoint(plan, out, resume) for plan, out in zip(plans, outs, strict=True)]
    outcomes: list[FitOutcome | None] = [None] * len(plans)

    def save(index: int, run: Run, together: bool) -> None:
        with run_lock(outs[index]):
            run.save(outs[index])
        outcomes[index] = FitOutcome(sources[index], outs[index], run, together)
        if on_done is not None:
            on_done(index, sources[index], outs[index], run)

    for group in _groups(plans, batched, resumed):
        choices: list[Choice | None] = [None] * len(group)
        if len(group) > 1:
            choices = [choose(plans[i], progress) if resumed[i] is None else Choice.from_facts(resumed[i].fit)
                       for i in group]
            if _train_together([plans[i] for i in group], choices, [outs[i] for i in group],
                               [resumed[i] for i in group], progress,
                               lambda k, run, g=group: save(g[k], run, True)):
                continue
        for index, choice in zip(group, choices, strict=True):
            continuing = resumed[index] is not None
            with run_lock(outs[index]):
                run = run_plan(plans[index], progress, FolderCheckpoints(outs[index], continuing),
                               resume=resumed[index], choice=choice)
            save(index, run, False)
    return [outcome for outcome in outcomes if outcome is not None]


def _train_together(
    plans: list[FitPlan], choices: list[Choice], outs: list[Path], resumed: list[Checkpoint | None],
    progress: Progress, save: Callable[[int, Run], None],
) -> bool:
    """Train ``plans`` (with their ``choices``) as one stacked computation, from their ``resumed``
    checkpoints when they have them, with each run's checkpoints in its folder of ``outs``, and
    save each run; ``False`` (nothing trained) when their models or samples turn out not to stack."""
    entry = plans[0].entry
    ready = [prepare(plan, choice) for plan, choice in zip(plans, choices, strict=True)]
    models = [r.model for r in ready]
    samplings = [r.data.sampling for r in ready]
    same_samples = all(torch.equal(s.train, samplings[0].train) for s in samplings)
    loss = plans[0].task.loss_for(entry.value_range)
    if not same_samples or not can_stack(models, ready[0].options, loss):
        return False
    steps = ready[0].options.steps
    states = None if resumed[0] is None else [checkpoint.state for checkpoint in resumed]
    knob = entry.knob.name if entry.knob else None
    values = ", ".join(shown(c.params.get(knob)) for c in choices) if knob else ""
    start = f"for {steps} steps" if states is None else f"continuing from step {states[0].step} to {steps}"
    progress(Event(Phase.TRAIN, 0 if states is None else states[0].step, steps,
                   message=f"training {len(plans)} {entry.name} networks together"
                   + (f" ({knob} = {values})" if knob else "") + f" {start}"))
    sinks = [FolderCheckpoints(out, continuing=states is not None) for out in outs]
    for sink, prepared in zip(sinks, ready, strict=True):
        sink.begin(prepared.config.to_json())

    def on_checkpoint(states: list) -> None:
        for sink, state, choice in zip(sinks, states, choices, strict=True):
            sink(Checkpoint(state, choice.facts()))

    targets = torch.stack([r.data.targets for r in ready])
    strategy = StackedModels(models, targets, samplings[0], lambda v: unit_from_model(v, entry.value_range))
    callbacks = Callbacks(on_step=lambda step: progress(Event(Phase.TRAIN, step, steps)),
                          on_checkpoint=on_checkpoint)
    together = f"trained together with {len(plans) - 1} other signals of the same size (one stacked network)"
    with ExitStack() as locks:
        for out in outs:
            locks.enter_context(run_lock(out))
        results = Trainer(strategy, ready[0].options, entry.lr, entry.adam_betas, entry.adam_eps,
                          callbacks).fit(states)
        for k, (plan, choice, result) in enumerate(zip(plans, choices, results, strict=True)):
            final = None if result.state is None else Checkpoint(result.state, choice.facts())
            result = replace(result, notes=[together, *result.notes])
            save(k, finish(plan, choice, ready[k], result, progress, final=final))
    if results[0].interrupted:
        raise KeyboardInterrupt
    return True


def summary_rows(outcomes: list[FitOutcome]) -> list[dict]:
    """One row per run: the signal, its folder, the model and knob, the scores, steps and time."""
    rows = []
    for outcome in outcomes:
        metrics = outcome.run.metrics
        scores = {name: metrics.scores.get(name) for name in SUMMARY_SCORES if name in metrics.scores}
        rows.append({"signal": outcome.source, "run": str(outcome.out), "model": metrics.model,
                     "knob": metrics.knob, "value": metrics.value, "mode": metrics.mode, **scores,
                     "steps": metrics.steps, "train_seconds": round(metrics.train_seconds, 2),
                     "batched": outcome.batched})
    return rows


def write_summary(parent: Path, rows: list[dict]) -> str:
    """Write ``PARENT/summary.csv`` (atomically) and return the same table as aligned text."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    parent.mkdir(parents=True, exist_ok=True)
    with staged_file(parent / SUMMARY) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})

    def cell(column: str, value: object) -> str:
        if isinstance(value, float) and column != "value":
            return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
        return "-" if value is None else shown(value)

    shown_columns = [c for c in columns if c not in ("run", "batched")]
    table = [shown_columns] + [[cell(c, row.get(c)) for c in shown_columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown_columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
                     for line in table)
