"""How far each way of setting a model's knob lands from the best value of a trained grid.

For every image and model of the ``fresh-images`` suite's quick profile (Kodak at 64 px, 64-wide
networks with 2 hidden layers, 300 steps, 10 % of pixels held out), on the images given (by default
the reporting part, kodim06-10, never used to choose a default or a budget), the grid of the knob is
trained (or its records reused) and each way of choosing a value is scored by its regret: the best
grid value's PSNR minus the chosen value's, on the objective's samples (``fit``: training pixels;
``generalize``: held-out pixels). The ways compared:

- ``default``: the model's default value; ``benchmark``: the fixed value benchmarks use
  (``specfit models`` lists it);
- ``fresh``: FreSh without training (bracket search over the spectra), for the objective;
- ``probes``: FreSh-guided probes (``--search probes``), for the objective;
- ``halving``: successive halving over the whole grid, without FreSh, at the probes' budget;
- SIREN only, ``winner`` and ``weight-scaling``: the default omega_0 trained with WINNER's noise
  (scales from the image's spectral centroid) or with weights scaled by 2.5 (not grid values:
  their regret is against the grid's best, and can be negative).

Cost is the selection's wall time as a fraction of the grid's training time (both on this machine).
Writes ``results/selection_regret_quick.json`` and prints the tables. CPU: about 5 minutes a model on
2 cores once the grid records exist (the grid itself: about 1.5 minutes an image and model).

    python benchmarks/selection_regret.py                         # SIREN and Gaussian FF, kodim06-10
    python benchmarks/selection_regret.py --models siren --images kodak/kodim01.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from specfit.bench.grid import grid_search, select_task
from specfit.bench.suites import GridJob, _settings, _source, get_suite
from specfit.fitting.pipeline import choose, fit_signal, plan_fit
from specfit.fitting.probes import ProbeSetup, halving_baseline
from specfit.fresh.centroid import winner_scales
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.models.registry import get_entry

REPORTING = tuple(f"kodak/kodim{i:02d}.png" for i in range(6, 11))
OBJECTIVES = {"fit": "psnr_train", "generalize": "psnr_test"}
WEIGHT_SCALE = 2.5  # the weight-scaling paper's image setting (Yeom et al., ICLR 2025)


def _score(values: dict, value: object, key: str) -> float | None:
    row = values.get(str(float(value))) or values.get(str(value))
    return None if row is None else row.get(key)


def _trained_extra(signal: object, settings, params: dict) -> dict:
    """PSNRs of one extra training of the model's default knob value with ``params`` added."""
    run = fit_signal(signal, replace(settings, fresh=False, params={**settings.params, **params}))
    return {"psnr_train": run.metrics.psnr_train, "psnr_test": run.metrics.psnr_test,
            "seconds": run.metrics.train_seconds}


def measure(job: GridJob, sources: list[str], records: Path) -> list[dict]:
    """One row per image and objective: the regret and cost of every way of choosing."""
    entry = get_entry(job.model)
    settings = _settings(job.model, job.params, job.steps, job.fit, {})
    summaries = grid_search(sources, settings, records, job.grid, job.load)
    rows = []
    for source, summary in zip(sources, summaries, strict=True):
        signal = load_signal(source, LoadOptions(**job.load))
        values = {str(r["value"]): r for r in summary["rows"]}
        grid = [r["value"] for r in summary["rows"]]
        extras = {}
        if job.model == "siren":
            scales = winner_scales(signal.values)
            noise = {"winner_s0": scales.s0, "winner_s1": scales.s1}
            extras["winner"] = _trained_extra(signal, settings, noise)
            extras["weight-scaling"] = _trained_extra(signal, settings, {"weight_scale": WEIGHT_SCALE})
        for objective, key in OBJECTIVES.items():
            chosen_settings = replace(settings, objective=objective)
            best = max(r[key] for r in summary["rows"] if r.get(key) is not None)
            started = time.perf_counter()
            fresh = select_task(source, job.load, chosen_settings.to_json(), grid)
            fresh_seconds = time.perf_counter() - started
            plan = plan_fit(signal, replace(chosen_settings, search="probes", grid=grid))
            started = time.perf_counter()
            probes = choose(plan).selection
            probe_seconds = time.perf_counter() - started
            setup = ProbeSetup(plan.task, plan.entry, plan.params, plan.settings, plan.device)
            halving = halving_baseline(setup, grid, probes.probes["steps"])
            grid_seconds = summary["grid_seconds"]
            chosen = {"default": entry.knob.default, "benchmark": entry.knob.benchmark,
                      "fresh": fresh["chosen"], "probes": probes.chosen, "halving": halving.chosen}
            regrets = {name: (None if value is None or _score(values, value, key) is None
                              else best - _score(values, value, key)) for name, value in chosen.items()}
            regrets.update({name: best - extra[key] for name, extra in extras.items()})
            costs = {"fresh": fresh_seconds / grid_seconds, "probes": probe_seconds / grid_seconds,
                     "halving": halving.seconds / grid_seconds}
            best_value = max(summary["rows"], key=lambda r: r.get(key) or -1e9)["value"]
            rows.append({"image": Path(source).name, "model": job.model, "objective": objective,
                         "best": best, "best_value": best_value,
                         "chosen": chosen, "regret": regrets, "cost": costs, "grid_seconds": grid_seconds,
                         "probe_steps": probes.probes["steps"]})
            print(json.dumps({k: rows[-1][k] for k in ("image", "model", "objective", "chosen")}), flush=True)
    return rows


def tables(rows: list[dict]) -> list[str]:
    """Mean regret (dB) and mean cost (fraction of the grid's training time) per model and objective."""
    methods = ("default", "benchmark", "fresh", "probes", "halving", "winner", "weight-scaling")
    lines = ["| model | objective | " + " | ".join(methods) + " | cost fresh / probes / halving |",
             "|---|---|" + "---|" * len(methods) + "---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        for objective in OBJECTIVES:
            mine = [r for r in rows if r["model"] == model and r["objective"] == objective]
            cells = []
            for method in methods:
                found = [r["regret"].get(method) for r in mine if r["regret"].get(method) is not None]
                cells.append(f"{statistics.mean(found):.2f} (max {max(found):.2f})" if found else "-")
            cost = " / ".join(f"{100 * statistics.mean(r['cost'][m] for r in mine):.1f} %"
                              for m in ("fresh", "probes", "halving"))
            lines.append(f"| {model} | {objective} | " + " | ".join(cells) + f" | {cost} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["siren", "ff-gaussian"])
    parser.add_argument("--images", nargs="*", default=list(REPORTING))
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--records", default="results/suites/fresh-images-quick/records")
    parser.add_argument("--out", default="results/selection_regret_quick.json")
    args = parser.parse_args()
    suite = get_suite("fresh-images", "quick")
    sources = [_source(Path(args.data), image) for image in args.images]
    rows = []
    for job in suite.jobs:
        if isinstance(job, GridJob) and job.model in args.models:
            rows += measure(job, sources, Path(args.records))
    record = {"images": args.images, "models": args.models, "protocol": suite.protocol, "rows": rows,
              "command": "python benchmarks/selection_regret.py " + " ".join(
                  f"--{k} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items())}
    Path(args.out).write_text(json.dumps(record, indent=1, default=str))
    print("\n".join(tables(rows)))


if __name__ == "__main__":
    main()
