"""FreSh-guided probes: train a few of FreSh's best knob values briefly, keep the best by successive
halving on the fit's objective.

FreSh ranks a knob's values without training (:mod:`specfit.fresh.search`); on some signals its
choice trains decibels worse than the best value of a trained grid. The probes (``search="probes"``)
start from its ranking: FreSh's choice and its grid neighbours (:func:`propose`, up to
:data:`PROBE_CANDIDATES` values) are trained for a short budget (together, as one stacked
computation, where the family allows it: :func:`specfit.training.stacked.can_stack`), and
successive halving keeps the better half by the objective's score at the end of each rung; the
survivors continue from their training state (Adam's moments included), not from scratch, until
one is left. Each network starts from the weights the fit itself would draw for that value (the
fit's seed), trains at the fit's learning rate without its schedule, on its batches.

The objective is the fit's (:meth:`specfit.config.settings.FitSettings.resolved_objective`):

- ``"fit"``: the task's training score (PSNR; IoU for shapes) on the training samples;
- ``"generalize"``: the same score on a validation part: a seeded :data:`VALIDATION_FRACTION` of
  the training samples that the probes do not train on. The held-out samples
  (``sampling.test``) are never looked at.

:func:`halving_baseline` runs the same machinery over a whole grid at a given budget, without
FreSh: the comparison that shows whether FreSh's guidance is worth having.

Budgets are fractions of the fit's steps (:data:`PROBE_RUNGS`) and counted in network-steps (one
optimiser step of one network); a trained grid costs ``len(grid) * steps`` of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fresh.search import Selection
from specfit.models.evaluate import Forward, unit_from_model
from specfit.models.registry import ModelEntry, ParamValue, resolve_params
from specfit.tasks import Task
from specfit.tasks.base import TrainingData
from specfit.training.loop import Callbacks, FitOptions, FitResult, SingleModel, Trainer
from specfit.training.stacked import StackedModels, can_stack
from specfit.training.state import TrainingState
from specfit.util.formatting import shown

# The probes' budgets, chosen by measurement on tuning data only (benchmarks/probe_budgets.py:
# kodim01-05 at 64 px, SIREN and Gaussian FF 64 x 2, 300 steps, seed 0). Every value of the grid was
# trained once with its scores recorded every 10 steps, and successive halving replayed on those
# curves (resumed training equals training straight) for 2 to 6 candidates and every pair of rung
# ends costing at most 10 % of the 20-value grid. Short rungs mislead: early in training the lower
# frequencies lead and the higher ones overtake them later, so below about 5 % of the grid's cost the
# probes did no better than FreSh's own choice. Three candidates to 45 % of the steps, the better two
# on to 75 % (1.95 times the fit's steps, 9.75 % of the grid) cut the mean regret on the 10 pairs
# from 0.89 to 0.08 dB (training PSNR, objective fit) and from 0.25 to 0.01 dB (held-out PSNR,
# objective generalize); halving over the whole grid at the same cost, without FreSh, left 0.49
# and 0.24 dB.
PROBE_CANDIDATES = 3
# Where each rung ends, as cumulative fractions of the fit's steps.
PROBE_RUNGS = (0.45, 0.75)
# Evaluations of the objective a rung (the probe curves' points; the last at the rung's end).
PROBE_EVALS = 5
# The share of the training samples the generalize objective scores the probes on (and they do not
# train on).
VALIDATION_FRACTION = 0.1


@dataclass
class ProbeSetup:
    """What the probes train: the signal's task, the model's entry, its resolved hyperparameters
    (the knob's value in them is replaced by each candidate's), the fit's settings (seed, split,
    objective, training options) and the device (as a :class:`specfit.fitting.pipeline.FitPlan`
    holds them)."""

    task: Task
    entry: ModelEntry
    params: dict[str, ParamValue]
    settings: FitSettings
    device: torch.device


@dataclass
class ProbeCurve:
    """One candidate's training as the probes saw it: the objective's score (``NaN`` for a diverged
    network, ``null`` in JSON) at each evaluation (``steps``: cumulative optimiser steps,
    :data:`PROBE_EVALS` a rung) and at the end of each rung it trained in (``rung_scores``, what
    successive halving compared)."""

    value: ParamValue
    steps: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    rung_scores: list[float] = field(default_factory=list)


@dataclass
class ProbeResult:
    """What successive halving chose and what it cost.

    Attributes:
        knob: the knob searched; chosen: the winner.
        objective: ``"fit"`` or ``"generalize"``; score: what was compared, e.g. ``"psnr"`` on the
            ``"training"`` samples or the ``"validation"`` part (``on``).
        rungs: cumulative optimiser steps at the end of each rung (the last ones are not run when
            one candidate is left before them).
        curves: one :class:`ProbeCurve` per candidate, in the order they were proposed.
        steps: network-steps trained in all (one optimiser step of one network each).
        seconds: wall time of the probes (building, training, scoring).
        stacked: whether the candidates were trained together as one stacked computation.
        fresh_chosen: FreSh's own choice by spectra (``None`` for :func:`halving_baseline`).
        validation_samples: the size of the validation part (``None`` for the fit objective).
    """

    knob: str
    chosen: ParamValue
    objective: str
    score: str
    on: str
    rungs: list[int]
    curves: list[ProbeCurve]
    steps: int
    seconds: float
    stacked: bool
    fresh_chosen: ParamValue | None = None
    validation_samples: int | None = None

    def to_json(self) -> dict:
        """The record as plain JSON (a diverged network's scores as ``null``)."""
        data = asdict(self)
        for curve in data["curves"]:
            for key in ("scores", "rung_scores"):
                curve[key] = [None if math.isnan(score) else score for score in curve[key]]
        return data


def propose(selection: Selection, count: int = PROBE_CANDIDATES) -> list[ParamValue]:
    """FreSh's choice and its grid neighbours: up to ``count`` values around ``selection.chosen``.

    The window grows one value at a time, on the side whose next value has the lower mean distance
    (a value the search skipped counts as farther than any evaluated one; when neither side's is
    known, the side with fewer values so far, the larger value first). Returns the values in the
    order they joined (FreSh's choice first); numeric grids are taken in increasing order.
    """
    rows = list(selection.table)
    if all(isinstance(row.value, int | float) for row in rows):
        rows.sort(key=lambda row: row.value)
    centre = next(i for i, row in enumerate(rows) if row.value == selection.chosen)
    low = high = centre
    picked = [rows[centre].value]

    def distance(index: int) -> float:
        mean = rows[index].w_mean
        return math.inf if mean is None else mean

    while len(picked) < min(count, len(rows)):
        right = (distance(high + 1), high - centre) if high + 1 < len(rows) else None
        left = (distance(low - 1), centre - low) if low > 0 else None
        if left is None or (right is not None and right <= left):
            high += 1
            picked.append(rows[high].value)
        else:
            low -= 1
            picked.append(rows[low].value)
    return picked


def rung_steps(steps: int, fractions: Sequence[float] = PROBE_RUNGS) -> list[int]:
    """The rungs' cumulative ends for a fit of ``steps``: ``fractions`` of it, rounded, at least one
    step each and increasing (fewer rungs for a very short fit)."""
    ends: list[int] = []
    for fraction in fractions:
        end = max(1, round(fraction * steps))
        if not ends or end > ends[-1]:
            ends.append(end)
    return ends


def _validation_positions(count: int, seed: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted positions among ``count`` training samples: those trained on, and a seeded ``fraction``
    (at least one, at most all but one) kept for validation."""
    if count < 2:
        raise SpecfitError("the generalize objective's probes need at least 2 training samples", "objective")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    size = min(count - 1, max(1, round(fraction * count)))
    return order[size:].sort().values, order[:size].sort().values


def _pool_within(forward: Forward | None, kept: torch.Tensor, count: int) -> Forward | None:
    """``forward`` with its mini-batch pool (positions among ``count`` training samples) moved to
    positions among the ``kept`` ones (sorted positions), dropping the others."""
    if forward is None or forward.pool is None:
        return forward
    source = forward.pool
    lookup = torch.full((count,), -1, dtype=torch.long)
    lookup[kept.cpu()] = torch.arange(len(kept))

    def pool(step: int) -> torch.Tensor | None:
        positions = source(step)
        if positions is None:
            return None
        moved = lookup.to(positions.device)[positions]
        return moved[moved >= 0]

    return replace(forward, pool=pool)


def probe_data(data: TrainingData, objective: str, seed: int) -> TrainingData:
    """What the probes train on and are scored on: the training samples of the fit's ``data`` and
    nothing else (its held-out samples are left out of the coordinates and targets altogether), all
    trained on (``"fit"``), or (``"generalize"``) less a validation part, a seeded
    :data:`VALIDATION_FRACTION` of them, which becomes the samples scored as held out."""
    sampling, train = data.sampling, data.sampling.train
    coords, targets = sampling.coords[train], data.targets[..., train, :]
    if objective != "generalize":
        every = torch.arange(len(train), device=train.device)
        return TrainingData(replace(sampling, coords=coords, train=every, test=None), targets, data.forward)
    kept, validation = _validation_positions(len(train), seed, VALIDATION_FRACTION)
    split = replace(sampling, coords=coords, train=kept.to(train.device), test=validation.to(train.device))
    return TrainingData(split, targets, _pool_within(data.forward, kept, len(train)))


def _network(setup: ProbeSetup, value: ParamValue) -> nn.Module:
    """The network the fit would train for knob ``value``: the same parameters, the same seed."""
    entry, task = setup.entry, setup.task
    params = resolve_params(entry, {**setup.params, entry.knob.name: value})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.settings.seed)
        model = entry.create(task.in_features, task.out_features, params)
    return model.to(setup.device)


def _options(setup: ProbeSetup) -> FitOptions:
    """The fit's training options as the probes use them: its batches and learning rate, no
    schedule, no compilation, no checkpoints (the ends of the rungs are set per rung)."""
    fit = setup.settings.fit
    batch = fit.batch_size if fit.batch_size is not None else setup.task.default_batch_size
    return replace(fit, batch_size=batch, schedule="none", compile="off", checkpoint_every=0)


def _planned(count: int, rungs: Sequence[int]) -> int:
    """Network-steps of successive halving from ``count`` candidates over ``rungs``, all run."""
    total, alive, previous = 0, count, 0
    for number, end in enumerate(rungs):
        total += alive * (end - previous)
        previous, alive = end, 1 if number == len(rungs) - 1 else (alive + 1) // 2
        if alive == 1:
            break
    return total


class _Networks:
    """The candidates' networks, their training data and their states between rungs."""

    def __init__(self, setup: ProbeSetup, values: Sequence[ParamValue]) -> None:
        settings, task, entry = setup.settings, setup.task, setup.entry
        self.setup, self.objective = setup, settings.resolved_objective()
        self.models = [_network(setup, value) for value in values]
        self.options = _options(setup)

        def data() -> TrainingData:
            whole = task.training_data(settings.split, settings.holdout, settings.seed, entry.value_range,
                                       setup.device)
            return probe_data(whole, self.objective, settings.seed)

        first = data()
        self.loss = task.loss_for(entry.value_range)
        self.stacked = (len(values) > 1 and first.forward is None and task.score(entry.value_range) is None
                        and can_stack(self.models, self.options, self.loss))
        # A forward model may hold state of its own (NeRF's occupancy grid): one per network then.
        self.data = [first] + [data() if first.forward is not None else first for _ in values[1:]]
        self.states: list[TrainingState | None] = [None] * len(values)
        self.key = f"{task.score_name}_{'test' if self.objective == 'generalize' else 'train'}"

    def to_unit(self, values: torch.Tensor) -> torch.Tensor:
        return unit_from_model(values, self.setup.entry.value_range)

    def train(self, alive: list[int], start: int, end: int, on_step: Callable[[int, int], None]
              ) -> list[list[dict]]:
        """Train networks ``alive`` (indices) from step ``start`` on to step ``end``; their histories
        (evaluation records, all steps so far), in order. ``on_step(position, step)`` follows each
        network's steps (``position`` in ``alive``; all of them at once when stacked, position 0)."""
        entry, task = self.setup.entry, self.setup.task
        options = replace(self.options, steps=end, eval_every=max(1, (end - start) // PROBE_EVALS))
        if self.stacked:
            data = self.data[alive[0]]
            models = [self.models[k] for k in alive]
            groups = [(alive, StackedModels(models, data.targets, data.sampling, self.to_unit))]
        else:
            score = task.score(entry.value_range)
            groups = [([k], SingleModel(self.models[k], self.data[k].targets, self.data[k].sampling,
                                        self.to_unit, self.loss, score, task.score_name, self.data[k].forward,
                                        compile_ok=False))
                      for k in alive]
        histories: list[list[dict]] = []
        for position, (members, strategy) in enumerate(groups):
            callbacks = Callbacks(on_step=lambda step, p=position: on_step(p, step))
            trainer = Trainer(strategy, options, entry.lr, entry.adam_betas, entry.adam_eps, callbacks)
            states = [self.states[k] for k in members]
            results = trainer.fit(None if states[0] is None else states)
            histories += [self._finish(k, result) for k, result in zip(members, results, strict=True)]
        return histories

    def _finish(self, index: int, result: FitResult) -> list[dict]:
        if result.interrupted or result.state is None:
            raise KeyboardInterrupt
        self.states[index] = result.state
        return result.history

    def score(self, record: dict) -> float:
        """The objective's score in an evaluation record (``NaN`` when it is missing)."""
        value = record[self.key]
        return math.nan if value is None else float(value)


def successive_halving(
    setup: ProbeSetup, values: Sequence[ParamValue], rungs: Sequence[int], progress: Progress = ignore,
    fresh_chosen: ParamValue | None = None,
) -> ProbeResult:
    """Successive halving of the knob ``values`` over ``rungs`` (cumulative step ends, increasing).

    At the end of each rung every candidate still in is scored by the objective (see the module's
    docstring); the better half (rounded up) goes on from its training state to the next rung's
    end, until one is left or the rungs run out (then the best is chosen). Ties go to the value
    proposed first. Reports progress as :class:`~specfit.events.Phase` ``SELECT`` events counting
    network-steps. Ctrl-C stops it (``KeyboardInterrupt``).
    """
    if not values or not rungs or any(b <= a for a, b in zip([0, *rungs], rungs, strict=False)):
        raise SpecfitError("successive halving needs candidate values and increasing positive rung ends")
    started = time.perf_counter()
    knob = setup.entry.knob.name
    networks = _Networks(setup, values)
    curves = [ProbeCurve(value) for value in values]
    alive = list(range(len(values)))
    total, spent, previous = _planned(len(values), rungs), 0, 0
    progress(Event(Phase.PROBE, 0, total, message=f"probes: training {len(values)} values of {knob} "
                   f"({', '.join(shown(v) for v in values)}) for up to {rungs[-1]} steps"))
    for number, end in enumerate(rungs):
        share = len(alive) if networks.stacked else 1

        def on_step(position: int, step: int, before: int = spent, start: int = previous, share: int = share,
                    width: int = end - previous) -> None:
            progress(Event(Phase.PROBE, before + (position * width + step - start) * share, total))

        for k, history in zip(alive, networks.train(alive, previous, end, on_step), strict=True):
            curves[k].steps = [record["step"] for record in history]
            curves[k].scores = [networks.score(record) for record in history]
            curves[k].rung_scores.append(curves[k].scores[-1])
        spent += len(alive) * (end - previous)
        ranked = sorted(alive, key=lambda k: -_ranked(curves[k].rung_scores[-1]))
        alive = ranked[:1] if number == len(rungs) - 1 else sorted(ranked[: (len(alive) + 1) // 2])
        previous = end
        if len(alive) == 1:
            break
    winner = values[alive[0]]
    generalize = networks.objective == "generalize"
    return ProbeResult(
        knob=knob, chosen=winner, objective=networks.objective, score=setup.task.score_name,
        on="validation" if generalize else "training", rungs=list(rungs), curves=curves, steps=spent,
        seconds=time.perf_counter() - started, stacked=networks.stacked, fresh_chosen=fresh_chosen,
        validation_samples=int(networks.data[0].sampling.test.numel()) if generalize else None,
    )


def _ranked(score: float) -> float:
    """A score for ranking: a diverged network's (``NaN``) ranks last."""
    return -math.inf if math.isnan(score) else score


def run_probes(setup: ProbeSetup, selection: Selection, progress: Progress = ignore) -> ProbeResult:
    """The probes of ``search="probes"``: successive halving over :func:`propose`'s values from
    FreSh's ``selection``, over :data:`PROBE_RUNGS` of the fit's steps."""
    return successive_halving(setup, propose(selection), rung_steps(setup.settings.fit.steps), progress,
                              fresh_chosen=selection.chosen)


def baseline_rungs(count: int, budget: int) -> list[int]:
    """Rung ends for successive halving from ``count`` candidates down to one within ``budget``
    network-steps: as many rungs as halvings, each given an equal share of the budget (so later
    rungs, with fewer candidates, train longer); at least one step a rung."""
    alive, counts = count, []
    while alive > 1 or not counts:
        counts.append(alive)
        alive = (alive + 1) // 2
    ends, end = [], 0
    for alive in counts:
        end += max(1, budget // (len(counts) * alive))
        ends.append(end)
    return ends


def halving_baseline(setup: ProbeSetup, values: Sequence[ParamValue], budget: int,
                     progress: Progress = ignore) -> ProbeResult:
    """Successive halving over every value of a grid, without FreSh, within ``budget``
    network-steps (e.g. a :class:`ProbeResult`'s ``steps``): what the probes are compared with."""
    return successive_halving(setup, values, baseline_rungs(len(values), budget), progress)


def with_probes(selection: Selection, result: ProbeResult) -> Selection:
    """``selection`` with the probes' record and their winner as its choice, and a note saying so."""
    notes = [note for note in selection.notes if note != selection.edge_note()]
    chosen = replace(selection, chosen=result.chosen, probes=result.to_json(), notes=notes)
    ran = result.rungs[: max(len(curve.rung_scores) for curve in result.curves)]
    note = (f"probes: trained {chosen.knob} = {', '.join(shown(c.value) for c in result.curves)} for "
            f"{'/'.join(str(end) for end in ran)} steps by successive halving ({result.steps} network-steps, "
            f"{result.seconds:.1f} s) and kept {shown(result.chosen)} by {result.score} on the {result.on} "
            f"samples (FreSh's spectra chose {shown(selection.chosen)})")
    chosen.notes.append(note)
    if chosen.edge_note():
        chosen.notes.append(chosen.edge_note())
    return chosen
