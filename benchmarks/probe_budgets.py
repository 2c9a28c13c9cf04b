"""How the probes' budgets (specfit.fitting.probes) were chosen: successive halving replayed on
recorded training curves.

For each image (short side ``--size`` px) and model, FreSh's bracket search runs for both
objectives, and every value of the knob's grid is trained once (stacked where the family allows) on
the training samples less the seeded 10 % validation part the generalize objective scores on,
with PSNR on that part, on the samples trained and on the held-out samples recorded every
``--every`` steps. Because a survivor resumed from its state trains exactly as it would straight
on (tests/test_probes.py), successive halving can then be replayed on those curves for any number
of candidates and any rung ends (a rung's score is read at the first record at or after its end)
at no further cost. Regret is the grid's best final score minus the chosen value's: on the
trained samples for the fit objective, on the held-out samples for generalize. Prints the best
configurations within ``--cap`` of the grid's cost, FreSh alone, the configuration in use and
halving over the whole grid at its budget; writes results/probe_budgets.json.

    python benchmarks/probe_budgets.py --images 5 --steps 300            # about 25 min on 2 cores
    python benchmarks/probe_budgets.py --curves results/probe_curves.json  # replay what it recorded
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import torch
from _common import RESULTS, require_data, write_result

from specfit.config.settings import FitSettings
from specfit.fitting.pipeline import plan_fit
from specfit.fitting.probes import (
    PROBE_CANDIDATES,
    PROBE_RUNGS,
    baseline_rungs,
    probe_data,
    propose,
    rung_steps,
)
from specfit.fresh.search import Candidate, Selection, fresh_select
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.metrics import psnr
from specfit.models.evaluate import unit_from_model
from specfit.training.loop import Callbacks, FitOptions, SingleModel, Trainer
from specfit.training.stacked import StackedModels, can_stack

MODELS = {"siren": {"width": 64, "hidden_layers": 2},
          "ff-gaussian": {"width": 64, "hidden_layers": 2, "features": 64}}
# Which recorded score each objective's probes compare, and which one its regret is measured on.
OBJECTIVES = {"fit": ("trained", "trained"), "generalize": ("validation", "test")}


def record(image: Path, model: str, steps: int, every: int, size: int) -> dict:
    """FreSh's selections and every grid value's score curves on one image."""
    signal = load_signal(image, LoadOptions(resize=size))
    settings = FitSettings(model=model, params=dict(MODELS[model]), device="cpu",
                           fit=FitOptions(steps=steps, eval_every=steps, compile="off", checkpoint_every=0))
    out: dict = {}
    for objective in OBJECTIVES:
        plan = plan_fit(signal, replace(settings, objective=objective))
        out[objective] = fresh_select(plan.target, plan.coords, model, seed=0, plan=plan.selection).to_json()
    plan = plan_fit(signal, replace(settings, objective="generalize"))
    entry, task = plan.entry, plan.task
    knob, grid = entry.knob.name, list(entry.knob.grid)
    whole = task.training_data(settings.split, settings.holdout, 0, entry.value_range, plan.device)
    data = probe_data(whole, "generalize", 0)  # the training samples only; held-out ones scored apart
    parts = {"trained": data.sampling.train, "validation": data.sampling.test}

    def to_unit(values: torch.Tensor) -> torch.Tensor:
        return unit_from_model(values, entry.value_range)

    models = []
    for value in grid:
        torch.manual_seed(0)
        models.append(entry.create(task.in_features, task.out_features, {**plan.params, knob: value}))
    scores: dict[str, list[list[float]]] = {name: [[] for _ in grid] for name in (*parts, "test")}
    marks: list[int] = []
    held_out = whole.sampling.coords[whole.sampling.test]
    truth = to_unit(whole.targets[whole.sampling.test])

    def note(first: int, strategy: object, step: int) -> None:
        if first == 0:
            marks.append(step)
        predictions = strategy.predict(data.sampling.coords)
        tests = strategy.predict(held_out)
        for offset, (prediction, test) in enumerate(zip(predictions, tests, strict=True)):
            for name, indices in parts.items():
                score = psnr(to_unit(prediction[indices]), to_unit(data.targets[indices]))
                scores[name][first + offset].append(round(score, 4))
            scores["test"][first + offset].append(round(psnr(to_unit(test), truth), 4))

    if can_stack(models, settings.fit, "mse"):
        groups = [(0, StackedModels(models, data.targets, data.sampling, to_unit))]
    else:
        groups = [(k, SingleModel(m, data.targets, data.sampling, to_unit, compile_ok=False))
                  for k, m in enumerate(models)]
    for first, strategy in groups:
        def on_step(step: int, first: int = first, strategy: object = strategy) -> None:
            if step % every == 0:
                note(first, strategy, step)

        Trainer(strategy, replace(settings.fit, seed=0), entry.lr, entry.adam_betas, entry.adam_eps,
                Callbacks(on_step=on_step)).fit()
    out.update(knob=knob, grid=grid, steps=marks, scores=scores)
    return out


def _selection(data: dict) -> Selection:
    table = [Candidate(row["value"], row["w_mean"], row["w_stderr"], row["inits"]) for row in data["table"]]
    return Selection(data["knob"], data["chosen"], table, 0.0, data["bins"], data["inits"], [], {})


def _at(case: dict, part: str, index: int, step: int) -> float:
    """The score recorded at the first mark at or after ``step`` (NaN ranks last)."""
    values = case["scores"][part][index]
    position = next((i for i, mark in enumerate(case["steps"]) if mark >= step), len(values) - 1)
    value = values[position]
    return -math.inf if value != value else value


def replay(case: dict, values: list[float], part: str, ends: list[int]) -> tuple[float, int]:
    """Successive halving of ``values`` on ``case``'s curves: the winner and network-steps spent."""
    grid = case["grid"]
    alive, spent, previous = list(values), 0, 0
    for number, end in enumerate(ends):
        spent += len(alive) * (end - previous)
        previous = end
        ranked = sorted(alive, key=lambda v: -_at(case, part, grid.index(v), end))
        alive = ranked[:1] if number == len(ends) - 1 else ranked[: (len(alive) + 1) // 2]
        if len(alive) == 1:
            break
    return alive[0], spent


def regrets(cases: dict, count: int, ends: list[int]) -> dict:
    """Per objective: the probes', FreSh's and whole-grid halving's regrets, and the probes' cost."""
    out = {}
    for objective, (compared, scored) in OBJECTIVES.items():
        rows = {"probes": [], "fresh": [], "grid_halving": [], "cost": []}
        for case in cases.values():
            grid = case["grid"]
            final = {v: case["scores"][scored][i][-1] for i, v in enumerate(grid)}
            best = max(final.values())
            selection = _selection(case[objective])
            chosen, spent = replay(case, propose(selection, count), compared, ends)
            baseline, _ = replay(case, grid, compared, baseline_rungs(len(grid), spent))
            rows["probes"].append(best - final[chosen])
            rows["fresh"].append(best - final[selection.chosen])
            rows["grid_halving"].append(best - final[baseline])
            rows["cost"].append(spent / (len(grid) * case["steps"][-1]))
        out[objective] = {key: sum(v) / len(v) for key, v in rows.items()} | {
            f"{key}_max": max(v) for key, v in rows.items() if key != "cost"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5, help="kodim01 to kodimNN")
    parser.add_argument("--size", type=int, default=64, help="short side in pixels")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=10, help="record the scores every N steps")
    parser.add_argument("--cap", type=float, default=0.10, help="the probes' cost, a share of the grid's")
    parser.add_argument("--curves", type=Path, help="replay curves recorded before (skip the training)")
    args = parser.parse_args()
    if args.curves is not None:
        cases = json.loads(args.curves.read_text())
    else:
        torch.set_num_threads(1)
        kodak = require_data("kodak")
        cases = {}
        for index in range(1, args.images + 1):
            for model in MODELS:
                name = f"kodim{index:02d}"
                case = record(kodak / f"{name}.png", model, args.steps, args.every, args.size)
                cases[f"{name}/{model}"] = case
                print(f"recorded {name} {model}", flush=True)
        args.curves = RESULTS / "probe_curves.json"
        args.curves.write_text(json.dumps(cases))
    steps = next(iter(cases.values()))["steps"]
    table = []
    for count in range(2, 7):
        for ends in combinations(steps, math.ceil(math.log2(count))):
            result = regrets(cases, count, list(ends))
            if result["fit"]["cost"] <= args.cap:
                table.append({"candidates": count, "rungs": list(ends), **result})
    table.sort(key=lambda row: (row["fit"]["probes"] + row["generalize"]["probes"], row["fit"]["cost"]))
    in_use = {"candidates": PROBE_CANDIDATES, "rungs": rung_steps(steps[-1], PROBE_RUNGS)}
    in_use.update(regrets(cases, PROBE_CANDIDATES, in_use["rungs"]))
    print(f"{len(cases)} cases; mean regret (dB), fit objective on trained samples / generalize on held-out")
    print(f"{'candidates':>10} {'rung ends':>16} {'cost':>6} {'fit':>6} {'gen':>6}")
    for row in [*table[:15], in_use]:
        print(f"{row['candidates']:>10} {row['rungs']!s:>16} {100 * row['fit']['cost']:5.1f}% "
              f"{row['fit']['probes']:6.2f} {row['generalize']['probes']:6.2f}")
    for objective in OBJECTIVES:
        r = in_use[objective]
        print(f"{objective}: in use {r['probes']:.2f} (max {r['probes_max']:.2f}), "
              f"FreSh alone {r['fresh']:.2f} (max {r['fresh_max']:.2f}), halving over the grid at the same "
              f"cost {r['grid_halving']:.2f} (max {r['grid_halving_max']:.2f})")
    path = write_result("probe_budgets", {"curves": args.curves.name, "cases": sorted(cases), "cap": args.cap,
                                          "in_use": in_use, "best": table[:15]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
