"""The grid search FreSh replaces, run for real: train every knob value, compare with FreSh's choice.

For each signal, one task runs FreSh's selection over the grid and one task per group of values
trains them with the same seed and budget (:mod:`specfit.bench.executor` runs the tasks, here, in local
processes or on Ray, and keeps each result so a killed search resumes). :func:`summarize` turns
the records into the table a user reads: per value the mean Wasserstein distance and the scores,
then FreSh's choice, the best value for each objective (training samples, held-out samples), the
regret of FreSh's choice and of the model's default (best score minus its score), the Spearman
rank correlation between ``-W`` and each score (1: the distances rank the grid exactly as training
does), and FreSh's seconds against the grid's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from specfit.bench.executor import Task, run_tasks
from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.fitting.pipeline import choose, fit_signal, plan_fit
from specfit.fresh.options import DEFAULT_SPECTRUM
from specfit.fresh.search import fresh_select
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.kinds.registry import task_for
from specfit.models.evaluate import unit_from_model
from specfit.models.registry import get_entry, resolve_params
from specfit.runs.records import Each, MayOmit
from specfit.training.loop import Trainer
from specfit.training.stacked import StackedModels, can_stack

# The objectives compared, per kind of score: (name, metric key).
OBJECTIVES = {"psnr": (("train", "psnr_train"), ("held-out", "psnr_test"), ("all", "psnr")),
              "iou": (("boundary", "iou_boundary"), ("uniform", "iou_uniform"))}
SELECTION_ONLY = ("spectrum", "objective", "search")
SCORE_KEYS = ("psnr", "psnr_train", "psnr_test", "snr", "snr_train", "snr_test", "ssim", "psnr_grad",
              "iou_boundary", "iou_uniform", "chamfer")
# What the tasks return, as :func:`summarize` reads them (see specfit.runs.records): a record of
# another shape is trained or selected again.
CANDIDATE = {"value": float, "w_mean": (float, None), "w_stderr": (float, None)}
SELECT_RECORD = {"knob": str, "chosen": float, "seconds": float, "table": [CANDIDATE],
                 "curve": MayOmit([CANDIDATE]), "probes": MayOmit({"seconds": float, "steps": int})}
TRAIN_RECORD = Each({"value": float, "seconds": float, "batched": bool,
                     **{key: MayOmit((float, None)) for key in SCORE_KEYS}})


def _load(source: str | None, load: dict) -> object:

    return load_signal(source, LoadOptions(**load))


def select_task(source: str | None, load: dict, settings: dict, grid: list[float]) -> dict:
    """FreSh over ``grid`` on one signal: the table, the choice and the seconds, as
    :func:`specfit.fit` would select (with ``search="probes"``, the probes' choice and record); when
    its search skips values, ``"curve"`` holds the distance of every value (all initialisations, no
    race) for the rank correlations."""

    fit = FitSettings.from_json(settings)
    plan = plan_fit(_load(source, load), replace(fit, fresh=True, grid=list(grid), params=_without_knob(fit)))
    if fit.search == "probes":  # FreSh's ranking, then the probes' training decides
        selection = choose(plan).selection
    else:
        selection = fresh_select(plan.target, plan.coords, plan.entry.name, seed=fit.seed,
                                 plan=plan.selection)
    out = selection.to_json()
    if any(row.inits == 0 for row in selection.table):
        full = replace(plan.selection, search="full")
        curve = fresh_select(plan.target, plan.coords, plan.entry.name, seed=fit.seed, race=False, plan=full)
        out["curve"] = curve.to_json()["table"]
    return out


def train_task(
    source: str | None, load: dict, settings: dict, values: list[float], batched: bool = True
) -> dict:
    """Train the knob at each of ``values`` on one signal; the scores and seconds of each.

    Networks that :func:`specfit.training.stacked.can_stack` are trained together as one computation
    (unless ``batched`` is false); the others one after another, each as :func:`specfit.fit` would.
    """

    fit = FitSettings.from_json(settings)
    entry = get_entry(fit.model)
    knob = entry.knob.name
    signal = _load(source, load)
    chosen = [resolve_params(entry, {**fit.params, knob: value})[knob] for value in values]
    plan = plan_fit(signal, replace(fit, fresh=False, params={**fit.params, knob: chosen[0]}))
    models = []
    for value in chosen:
        torch.manual_seed(fit.seed)
        params = {**plan.params, knob: value}
        models.append(entry.create(plan.task.in_features, plan.task.out_features, params).to(plan.device))
    out = {}
    if batched and len(models) > 1 and can_stack(models, fit.fit, plan.task.loss_for(entry.value_range)):
        data = plan.task.training_data(fit.split, fit.holdout, fit.seed, entry.value_range, plan.device)
        strategy = StackedModels(models, data.targets, data.sampling,
                                 lambda v: unit_from_model(v, entry.value_range))
        results = Trainer(strategy, fit.fit, entry.lr, entry.adam_betas, entry.adam_eps).fit()
        for value, result in zip(chosen, results, strict=True):
            metrics = plan.task.finish(result.model, entry.value_range, data, plan.device).metrics
            out[str(value)] = {"value": value, "seconds": result.train_seconds, "batched": True,
                               **{key: metrics.get(key) for key in SCORE_KEYS}}
        return out
    for value in chosen:
        run = fit_signal(signal, replace(fit, fresh=False, params={**fit.params, knob: value}))
        metrics = run.metrics.to_json()
        out[str(value)] = {"value": value, "seconds": run.metrics.train_seconds, "batched": False,
                           **{key: metrics.get(key) for key in SCORE_KEYS}}
    return out


def _default_grid(source: str | None, load: dict, settings: FitSettings) -> list[float]:
    """The grid ``specfit fit`` would search on this signal: its type's (audio widens the model's
    grid), else the model's."""

    knob = get_entry(settings.model).knob
    task = task_for(_load(source, load), settings.shape_target, settings.video_spectrum)
    return task.default_grid(knob.grid, isinstance(knob.default, int)) or list(knob.grid)


def _without_knob(settings: FitSettings) -> dict:

    knob = get_entry(settings.model).knob
    return {k: v for k, v in settings.params.items() if knob is None or k != knob.name}


def _digest(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def grid_tasks(
    sources: Sequence[str | None], settings: FitSettings, grid: Sequence[float], load: dict,
    group: int, batched: bool = True,
) -> list[Task]:
    """The selection and training tasks of a grid search over ``sources`` (``group`` values per
    training task); keys carry a digest of everything that decides the result."""

    entry = get_entry(settings.model)
    if entry.knob is None:
        raise SpecfitError(f"model {entry.name} has no frequency knob to search")
    values = list(grid)
    if entry.knob.default is not None and entry.knob.default not in values:
        values.append(entry.knob.default)  # the default's regret needs its score
    tasks = []
    data = settings.to_json()
    # Settings that only steer the selection stay out of the training keys, so records of trained
    # values are reused when only the selection changes.
    choice = {name: data.pop(name) for name in SELECTION_ONLY}
    choice["defaults"] = DEFAULT_SPECTRUM  # a change of the per-type defaults re-runs the selections
    for index, source in enumerate(sources):
        base = {"source": None if source is None else str(source), "load": load, "settings": data}
        stem = "default" if source is None else Path(str(source)).name.split(".")[0]
        key = f"{index:02d}-{stem[:40]}-{entry.name}-{_digest(base)}"
        tasks.append(Task(f"{key}-select-{_digest(list(grid), choice)}", "specfit.bench.grid:select_task",
                          {**base, "settings": settings.to_json(), "grid": list(grid)}, SELECT_RECORD))
        for start in range(0, len(values), group):
            chunk = values[start:start + group]
            tasks.append(Task(f"{key}-train-{_digest(chunk, batched)}", "specfit.bench.grid:train_task",
                              {**base, "values": chunk, "batched": batched}, TRAIN_RECORD))
    return tasks


def _spearman(xs: list[float], ys: list[float]) -> float | None:
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and math.isfinite(y)]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None
    return float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)


def summarize(selection: dict, trained: dict, default: float | None) -> dict:
    """One signal's grid: rows per value, and per objective the best value, the regrets of FreSh's
    choice and of the default, and the rank correlation of ``-W`` with the score."""
    rows = []
    for row in selection.get("curve", selection["table"]):
        scores = trained.get(str(row["value"]), {})
        rows.append({**row, **{k: v for k, v in scores.items() if k != "value"}})
    kind = "psnr" if any(r.get("psnr_train") is not None for r in rows) else "iou"
    chosen = selection["chosen"]
    by_value = {str(v): s for v, s in trained.items()}
    objectives = {}
    for name, key in OBJECTIVES[kind]:
        scored = [r for r in rows if r.get(key) is not None]
        if not scored:
            continue
        best = max(scored, key=lambda r: r[key])

        def regret(value: object, key: str = key, top: float = best[key]) -> float | None:
            score = by_value.get(str(value), {}).get(key)
            return None if score is None else top - score

        objectives[name] = {
            "key": key, "best_value": best["value"], "best": best[key],
            "fresh": by_value.get(str(chosen), {}).get(key), "fresh_regret": regret(chosen),
            "default": None if default is None else by_value.get(str(default), {}).get(key),
            "default_regret": None if default is None else regret(default),
            "spearman": _spearman([-r["w_mean"] for r in rows if r["w_mean"] is not None],
                                  [r.get(key) for r in rows if r["w_mean"] is not None]),
        }
    return {
        "knob": selection["knob"], "chosen": chosen, "default": default, "rows": rows,
        "objectives": objectives,
        "selection_seconds": selection["seconds"] + selection.get("probes", {}).get("seconds", 0.0),
        "grid_seconds": sum(s.get("seconds", 0.0) for s in trained.values()),
    }


def grid_search(
    sources: Sequence[str | None],
    settings: FitSettings,
    folder: Path,
    grid: Sequence[float] | None = None,
    load: dict | None = None,
    group: int | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[Task, dict, bool], None] | None = None,
    batched: bool = True,
) -> list[dict]:
    """Run (or resume) the grid search of ``settings.model`` on every signal; one summary each.

    Records go to ``folder`` (one JSON per task). ``grid`` defaults to the one ``specfit fit``
    would search on the first signal (the model's FreSh grid, widened for audio);
    ``group`` is how many values one training task trains (default: all of a signal's, trained
    together where the family allows it, see :mod:`specfit.training.stacked`; 1 spreads them over workers);
    ``batched=False`` trains one value after another.
    """

    entry = get_entry(settings.model)
    if entry.knob is None:
        raise SpecfitError(f"model {entry.name} has no frequency knob to search")
    if settings.two_knobs:
        raise SpecfitError("a grid search trains one knob's values; two_knobs is for fit and select",
                           setting="two_knobs")
    grid = list(_default_grid(sources[0], load or {}, settings) if grid is None else grid)
    values = len(grid) + 1
    tasks = grid_tasks(sources, settings, grid, dict(load or {}), max(1, group or values), batched)
    records = run_tasks(tasks, folder, workers, ray_address, on_done)
    summaries = []
    for index, source in enumerate(sources):
        prefix = f"{index:02d}-"
        mine = [t for t in tasks if t.key.startswith(prefix)]
        selection = records[next(t.key for t in mine if "-select-" in t.key)]
        trained: dict = {}
        for task in mine:
            if "-train-" in task.key:
                trained.update(records[task.key])
        summary = summarize(selection, trained, entry.knob.default)
        summaries.append({"signal": "default" if source is None else str(source), "model": entry.name,
                          **summary})
    return summaries
