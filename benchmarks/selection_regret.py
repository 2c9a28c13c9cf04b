"""How far each way of setting a model's knob lands from the best value of a trained grid.

For every row (grid job) of a suite's quick profile, on its *reporting part* (signals never used to
choose a default or a budget, :data:`REPORTING`), the grid of the knob is trained (or its records
reused) and each way of choosing a value is scored by its regret: the best grid value's PSNR minus
the chosen value's, on the objective's samples (``fit``: training samples; ``generalize``: held-out
samples, or for CT and MRI, which hold none out, the PSNR of the reconstructed image against the
truth). The suites' own signals are the tuning part. The ways compared:

- ``default``: the model's default value; ``benchmark``: the fixed value benchmarks use
  (``specfit models`` lists it); each trained beside the grid where it is no grid value;
- ``fresh``: FreSh without training (bracket search over the spectra), for the objective;
- ``probes``: FreSh-guided probes (``--search probes``), for the objective;
- ``halving``: successive halving over the whole grid, without FreSh, at the probes' budget;
- SIREN only, ``winner`` (images and audio, where WINNER's rule is published) and
  ``weight-scaling``: the default omega_0 trained with WINNER's noise (scales from the signal's
  spectral centroid) or with weights scaled by 2.5 (not grid values: their regret is against the
  grid's best, and can be negative).

Cost is the selection's wall time as a fraction of the grid's training time (both on this machine;
``winner`` and ``weight-scaling``: their one training). Writes ``--out`` and prints the tables;
``--summary FILES`` prints the mean over every row of the records given instead. CPU: about 5 minutes
a model on 2 cores once the grid records exist (the grid itself: about 1.5 minutes an image and
model; an audio second about 7 minutes).

    python benchmarks/selection_regret.py                         # SIREN and Gaussian FF, kodim06-10
    python benchmarks/selection_regret.py --models siren --images kodak/kodim01.png
    python benchmarks/selection_regret.py --suite measured --rows "CT Gaussian FF" --out results/x.json
    python benchmarks/selection_regret.py --summary results/selection_regret_*_quick.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from specfit.bench.grid import grid_search, select_task
from specfit.bench.suites import GridJob, _settings, _source, get_suite
from specfit.errors import SpecfitError
from specfit.fitting.pipeline import choose, fit_signal, plan_fit
from specfit.fitting.probes import ProbeSetup, halving_baseline
from specfit.fresh.centroid import winner_scales
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.models.registry import get_entry

IMAGES = tuple(f"kodak/kodim{i:02d}.png" for i in range(6, 11))
BRAIN = "volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
# The reporting part of each row outside fresh-images (whose part is --images, kodim06-10): signals
# the suite never used (its own signals are the tuning part), each with loading options added to the
# job's. NeRF has one scene only: its row is reported on the tuning part, labelled in-sample.
REPORTING: dict[tuple[str, str], tuple[tuple[str, dict], ...]] = {
    ("fresh-signals", "audio"): tuple(("audio/bach.wav", {"start_seconds": s}) for s in (2.0, 4.0)),
    ("fresh-signals", "video"): tuple(("video/bikes.mp4", {"start_frame": f}) for f in (100, 200)),
    ("fresh-signals", "volume"): (("phantom3d-2", {}), (BRAIN, {"resize": 40})),
    ("measured", "CT Gaussian FF"): (("phantom-2", {}), ("phantom-3", {}), ("kodak/kodim06.png", {})),
    ("measured", "MRI Gaussian FF"): (("phantom3d-2", {}), ("phantom3d-3", {})),
}
IN_SAMPLE = {("measured", "NERF Gaussian FF")}
OBJECTIVES = {"fit": ("psnr_train",), "generalize": ("psnr_test", "psnr")}
WEIGHT_SCALE = 2.5  # the weight-scaling paper's image setting (Yeom et al., ICLR 2025)
METHODS = ("default", "benchmark", "fresh", "probes", "halving", "winner", "weight-scaling")


def _score(values: dict, value: object, key: str) -> float | None:
    row = values.get(str(float(value))) or values.get(str(value))
    return None if row is None else row.get(key)


def _trained_extra(signal: object, settings, params: dict) -> dict:
    """PSNRs of one extra training of the model's default knob value with ``params`` added."""
    run = fit_signal(signal, replace(settings, fresh=False, params={**settings.params, **params}))
    return {"psnr_train": run.metrics.psnr_train, "psnr_test": run.metrics.psnr_test,
            "psnr": run.metrics.psnr, "seconds": run.metrics.train_seconds}


def _extras(job: GridJob, entry, signal: object, settings, values: dict) -> dict:
    """Baselines that are no grid value, each one training: the default where it is no value
    (FINER's bias k: PyTorch's bias) and the benchmark value where the row's grid lacks it; for
    SIREN, the default omega_0 with WINNER's noise (where its rule is published) and with weight
    scaling."""
    extras = {}
    if entry.knob.default is None:
        extras["default"] = _trained_extra(signal, settings, {})
    benchmark = entry.knob.benchmark
    if benchmark is not None and _score(values, benchmark, "psnr_train") is None:
        extras["benchmark"] = _trained_extra(signal, settings, {entry.knob.name: benchmark})
    if job.model != "siren":
        return extras
    try:
        scales = winner_scales(signal.values)
    except SpecfitError:  # no published rule for this many axes (video, volume)
        scales = None
    if scales is not None:
        noise = {"winner_s0": scales.s0, "winner_s1": scales.s1}
        extras["winner"] = _trained_extra(signal, settings, noise)
    extras["weight-scaling"] = _trained_extra(signal, settings, {"weight_scale": WEIGHT_SCALE})
    return extras


def parts(suite: str, job: GridJob, data: Path, images: list[str]) -> tuple[str, list[tuple[str, dict]]]:
    """Which part a row is reported on (``"reporting"``, or ``"in-sample"`` where no signal is left
    over) and its signals, each with its loading options."""
    if suite == "fresh-images":
        return "reporting", [(_source(data, image), dict(job.load)) for image in images]
    if (suite, job.label) in IN_SAMPLE:
        return "in-sample", [(_source(data, source), dict(job.load)) for source in job.sources]
    if (suite, job.label) not in REPORTING:
        raise SpecfitError(f"{suite}'s row {job.label!r} has no reporting part here; "
                           f"rows with one: {', '.join(label for name, label in REPORTING if name == suite)}")
    return "reporting", [(_source(data, source), {**job.load, **extra})
                         for source, extra in REPORTING[suite, job.label]]


def measure(job: GridJob, signals: list[tuple[str, dict]], records: Path,
            part: str = "reporting") -> Iterator[list[dict]]:
    """Per signal, one row per objective: the regret and cost of every way of choosing."""
    entry = get_entry(job.model)
    settings = _settings(job.model, job.params, job.steps, job.fit, {})
    for text in dict.fromkeys(json.dumps(load, sort_keys=True) for _, load in signals):
        load = json.loads(text)  # one grid search per set of loading options
        sources = [source for source, mine in signals if mine == load]
        for end, source in enumerate(sources, 1):
            # The signals before this one are recorded already: only this one's grid trains (a
            # record's key holds its signal's place in the list, so the list grows).
            summary = grid_search(sources[:end], settings, records, job.grid, load)[-1]
            yield _measure_one(job, entry, settings, source, load, summary, part)


def _measure_one(job: GridJob, entry, settings, source: str, load: dict, summary: dict,
                 part: str) -> list[dict]:
    signal = load_signal(source, LoadOptions(**load))
    values = {str(r["value"]): r for r in summary["rows"]}
    grid = [r["value"] for r in summary["rows"]]
    if entry.knob.default is not None:  # trained beside the grid where it is no grid value
        values.setdefault(str(float(entry.knob.default)),
                          {o["key"]: o["default"] for o in summary["objectives"].values()})
    extras = _extras(job, entry, signal, settings, values)
    rows = []
    for objective, keys in OBJECTIVES.items():
        key = next(k for k in keys if any(r.get(k) is not None for r in summary["rows"]))
        chosen_settings = replace(settings, objective=objective)
        best = max(r[key] for r in summary["rows"] if r.get(key) is not None)
        started = time.perf_counter()
        fresh = select_task(source, load, chosen_settings.to_json(), grid)
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
                 "halving": halving.seconds / grid_seconds,
                 **{name: extra["seconds"] / grid_seconds for name, extra in extras.items()
                    if name not in ("default", "benchmark")}}
        best_value = max(summary["rows"], key=lambda r: r.get(key) or -1e9)["value"]
        rows.append({"image": Path(source).name, "signal": source, "load": load, "part": part,
                     "row": job.label, "model": job.model, "objective": objective, "key": key,
                     "best": best, "best_value": best_value,
                     "chosen": chosen, "regret": regrets, "cost": costs, "grid_seconds": grid_seconds,
                     "probe_steps": probes.probes["steps"]})
        print(json.dumps({k: rows[-1][k] for k in ("image", "row", "objective", "chosen")}), flush=True)
    return rows


def _mean_cell(found: list[float]) -> str:
    return f"{statistics.mean(found):.2f} (max {max(found):.2f})" if found else "-"


def _label(row: dict) -> str:
    """A row's label (records written before rows had labels name fresh-images' model)."""
    if "row" in row:
        return row["row"]
    return next((job.label for job in get_suite("fresh-images", "quick").jobs if job.model == row["model"]),
                row["model"])


def tables(rows: list[dict]) -> list[str]:
    """Mean regret (dB) and mean cost (fraction of the grid's training time) per row and objective."""
    lines = ["| row | signals | objective | " + " | ".join(METHODS) + " | cost fresh / probes / halving |",
             "|---|---|---|" + "---|" * len(METHODS) + "---|"]
    for label in dict.fromkeys(_label(r) for r in rows):
        for objective in OBJECTIVES:
            mine = [r for r in rows if _label(r) == label and r["objective"] == objective]
            cells = [_mean_cell([r["regret"][m] for r in mine if r["regret"].get(m) is not None])
                     for m in METHODS]
            cost = " / ".join(f"{100 * statistics.mean(r['cost'][m] for r in mine):.1f} %"
                              for m in ("fresh", "probes", "halving"))
            signals = f"{len(mine)} ({mine[0].get('part', 'reporting')})"
            lines.append(f"| {label} | {signals} | {objective} | " + " | ".join(cells) + f" | {cost} |")
    return lines


def summary(records: list[dict]) -> list[str]:
    """Per method and objective, the mean over rows of each row's mean regret (every row counts
    once, whatever its number of signals), and the rows above 0.3 dB."""
    rows = [dict(r, row=_label(r), part=r.get("part", "reporting"))
            for record in records for r in record["rows"]]
    lines = [*tables(rows), "", "Mean over rows:", "",
             "| objective | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    misses = []
    for objective in OBJECTIVES:
        cells = []
        for method in METHODS:
            means = {}
            for label in dict.fromkeys(r["row"] for r in rows):
                found = [r["regret"][method] for r in rows if r["row"] == label
                         and r["objective"] == objective and r["regret"].get(method) is not None]
                if found:
                    means[label] = statistics.mean(found)
            cells.append(f"{statistics.mean(means.values()):.2f} ({len(means)} rows)" if means else "-")
            if method == "probes":
                misses += [f"{objective}: {label} {mean:.2f}" for label, mean in means.items() if mean > 0.3]
        lines.append(f"| {objective} | " + " | ".join(cells) + " |")
    costs = []
    for method in METHODS:
        means = [statistics.mean(r["cost"][method] for r in rows if r["row"] == label and method in r["cost"])
                 for label in dict.fromkeys(r["row"] for r in rows)
                 if any(method in r["cost"] for r in rows if r["row"] == label)]
        costs.append(f"{100 * statistics.mean(means):.1f} %" if means else "-")
    lines.append("| cost (of the grid's time) | " + " | ".join(costs) + " |")
    return [*lines, "", "probes above 0.3 dB: " + ("; ".join(misses) or "none")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="fresh-images",
                        choices=("fresh-images", "fresh-signals", "measured"))
    parser.add_argument("--models", nargs="*", default=["siren", "ff-gaussian"],
                        help="fresh-images: the rows by model")
    parser.add_argument("--rows", nargs="*", default=None, help="other suites: the rows by label")
    parser.add_argument("--images", nargs="*", default=list(IMAGES), help="fresh-images: the reporting part")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--records", default=None, help="default: results/suites/SUITE-quick/records")
    parser.add_argument("--out", default="results/selection_regret_quick.json")
    parser.add_argument("--summary", nargs="*", default=None, help="records to summarise (no measuring)")
    args = parser.parse_args()
    if args.summary is not None:
        print("\n".join(summary([json.loads(Path(p).read_text()) for p in args.summary])))
        return
    suite = get_suite(args.suite, "quick")
    records = Path(args.records or f"results/suites/{args.suite}-quick/records")
    rows: list[dict] = []
    record = {"suite": args.suite, "images": args.images, "models": args.models, "rows_asked": args.rows,
              "protocol": suite.protocol, "rows": rows,
              "command": "python benchmarks/selection_regret.py " + " ".join(
                  f"--{k} {' '.join(repr(x) for x in v) if isinstance(v, list) else v}"
                  for k, v in vars(args).items() if v is not None)}
    for job in suite.jobs:
        wanted = job.model in args.models if args.suite == "fresh-images" else job.label in (args.rows or ())
        if isinstance(job, GridJob) and wanted:
            part, signals = parts(args.suite, job, Path(args.data), args.images)
            for signal_rows in measure(job, signals, records, part):
                rows += signal_rows  # written after every signal: a stopped run keeps what it measured
                Path(args.out).write_text(json.dumps(record, indent=1, default=str))
    print("\n".join(tables(rows)))


if __name__ == "__main__":
    main()
