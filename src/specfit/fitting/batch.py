"""Fit many signals with one configuration: one run folder each, and a summary table.

Every signal is loaded and checked before any work, FreSh chooses each one's knob, and images of
the same size whose models can be stacked (:func:`specfit.training.stacked.can_stack`) are then trained
together as one computation; the others one after another, each as ``specfit fit`` would.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from specfit.config.settings import FitSettings
from specfit.events import Event, Phase, Progress, ignore
from specfit.fitting.pipeline import Choice, FitPlan, choose, finish, plan_fit, prepare, run_plan
from specfit.models.evaluate import unit_from_model
from specfit.runs.checkpoints import FolderCheckpoints
from specfit.runs.folder import check_writable_parent, refuse_existing, run_lock
from specfit.runs.outputs import check_output_file
from specfit.runs.run import Run
from specfit.training.loop import FitResult
from specfit.training.stacked import can_stack, train_stacked
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


def _folders(plans: list[FitPlan], parent: Path, overwrite: bool) -> list[Path]:
    """One run folder per signal, ``PARENT/NAME-MODEL`` (numbered when two signals share a name);
    existing folders are refused unless ``overwrite``, and so is a ``PARENT/summary.csv`` that
    specfit did not write (see :mod:`specfit.runs.outputs`)."""
    outs: list[Path] = []
    for plan in plans:
        base = parent / f"{plan.task.name}-{plan.entry.name}"
        out, k = base, 2
        while out in outs:
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
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


def _groups(plans: list[FitPlan], batched: bool) -> list[list[int]]:
    """Indices of plans trained together: images of one size and split (full batches), when
    ``batched``; every other plan alone."""
    if not batched:
        return [[i] for i in range(len(plans))]
    keys: dict[tuple, list[int]] = {}
    for i, plan in enumerate(plans):
        task = plan.task
        alone = task.kind != "image" or plan.settings.fit.batch_size is not None or plan.settings.compaction
        key = ("alone", i) if alone else (tuple(task.signal.values.shape), plan.settings.split)
        keys.setdefault(key, []).append(i)
    return list(keys.values())


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
) -> list[FitOutcome]:
    """Fit every source with ``settings``; write each run to its folder under ``parent``.

    ``load`` turns a source into a loaded signal. Every signal is loaded and planned before any
    training, so a bad file stops the command before any work. ``on_done(index, source, out, run)``
    is called as each run is written. Returns one :class:`FitOutcome` per source, in order.
    """
    plans = [plan_fit(load(source), settings) for source in sources]
    for plan in plans:
        plan.command = command
    outs = _folders(plans, parent, overwrite)
    outcomes: list[FitOutcome | None] = [None] * len(plans)

    def save(index: int, run: Run, together: bool) -> None:
        with run_lock(outs[index]):
            run.save(outs[index])
        outcomes[index] = FitOutcome(sources[index], outs[index], run, together)
        if on_done is not None:
            on_done(index, sources[index], outs[index], run)

    for group in _groups(plans, batched):
        choices: list[Choice | None] = [None] * len(group)
        if len(group) > 1:
            choices = [choose(plans[i], progress) for i in group]
            if _train_together([plans[i] for i in group], choices, progress,
                               lambda k, run, g=group: save(g[k], run, True)):
                continue
        for index, choice in zip(group, choices, strict=True):
            with run_lock(outs[index]):
                run = run_plan(plans[index], progress, FolderCheckpoints(outs[index]), choice=choice)
            save(index, run, False)
    return [outcome for outcome in outcomes if outcome is not None]


def _train_together(
    plans: list[FitPlan], choices: list[Choice], progress: Progress, save: Callable[[int, Run], None]
) -> bool:
    """Train ``plans`` (with their ``choices``) as one stacked computation and save each run;
    ``False`` (nothing trained) when their models or samples turn out not to stack."""
    entry = plans[0].entry
    ready = [prepare(plan, choice) for plan, choice in zip(plans, choices, strict=True)]
    models = [r.model for r in ready]
    samplings = [r.data.sampling for r in ready]
    same_samples = all(torch.equal(s.train, samplings[0].train) for s in samplings)
    loss = plans[0].task.loss_for(entry.value_range)
    if not same_samples or not can_stack(models, ready[0].options, loss):
        return False
    steps = ready[0].options.steps
    knob = entry.knob.name if entry.knob else None
    values = ", ".join(shown(c.params.get(knob)) for c in choices) if knob else ""
    progress(Event(Phase.TRAIN, 0, steps, message=f"training {len(plans)} {entry.name} networks together"
                   + (f" ({knob} = {values})" if knob else "") + f" for {steps} steps"))
    targets = torch.stack([r.data.targets for r in ready])
    stacked = train_stacked(models, targets, samplings[0], ready[0].options, entry.lr,
                            lambda v: unit_from_model(v, entry.value_range), entry.adam_betas, entry.adam_eps,
                            on_step=lambda step: progress(Event(Phase.TRAIN, step, steps)))
    notes = [f"trained together with {len(plans) - 1} other signals of the same size (one stacked network)"]
    if stacked.interrupted:
        notes.append(f"interrupted after step {stacked.steps}; keeping the best model so far")
    for k, (plan, choice, prepared) in enumerate(zip(plans, choices, ready, strict=True)):
        result = FitResult(model=prepared.model, history=stacked.histories[k], steps=stacked.steps,
                           best_step=stacked.best_steps[k], train_seconds=stacked.seconds / len(plans),
                           step_seconds=stacked.seconds / len(plans), interrupted=stacked.interrupted,
                           compiled=False, notes=list(notes))
        save(k, finish(plan, choice, prepared, result, progress))
    if stacked.interrupted:
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
