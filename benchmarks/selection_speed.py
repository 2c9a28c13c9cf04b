"""FreSh selection speed against the published-style loop, at the same choice.

For each case, three contenders on the same signal, model and grid:

- **loop**: what the published code does: for every grid value, 10 initialisations, each built and
  evaluated in fp32 on the signal's whole sampling grid, the published spectrum (the lowest 64
  DFT frequencies) of every output compared with the target's, computed on all samples. Its
  time is measured on ``--loop-values`` of the grid's values (every value costs the same forward
  passes) and scaled to the whole grid; the output says so.
- **reference**: specfit's definition (signal band, training samples only), every value with
  10 initialisations and no race: the table the fast search must agree with.
- **specfit**: ``specfit.select`` with its defaults (bracket search, racing, segments for long
  audio, evaluation on the spectrum's cube).

specfit's choice passes when it equals the reference's or its mean W lies within one standard
error of the reference's choice. specfit's timing is repeated ``--repeats`` times, interleaved with
the other cases, and the median reported. The last row times the default ``specfit fit`` of the
bundled image and reports the share of its wall time spent in selection. Writes
results/selection_speed.json; never asserts a timing.

    python benchmarks/selection_speed.py [--cases kodak256 kodak-full bunny audio12 demo]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import require_data, write_result

import specfit
from specfit.cli.fit import DEMO_STEPS
from specfit.fresh.spectra import resolve_bins, spectrum_vector, spectrum_vectors, wasserstein
from specfit.kinds.registry import task_for
from specfit.models.registry import get_entry, resolve_params

LOOP_CHUNK = 65536  # rows per forward in the loop: only to bound memory on a 12 s clip


def _signal(case: str) -> object:
    if case == "kodak256":
        return specfit.load_signal(require_data("kodak/kodim01.png"), resize=256)
    if case == "kodak-full":
        return specfit.load_signal(require_data("kodak/kodim01.png"))
    if case == "bunny":
        return specfit.load_signal(require_data("meshes/bunny.ply"))
    if case == "audio12":  # the 7 s clip played on to 12 s
        from scipy.io import wavfile

        rate, wave = wavfile.read(require_data("audio/bach.wav"))
        clip = np.resize(wave.astype(np.float32), 12 * rate)
        return specfit.load_signal(clip, kind="audio", sample_rate=rate)
    raise SystemExit(f"error: unknown case {case!r}")


def published_loop(signal: object, model: str, grid: list[float], values: int, inits: int = 10) -> float:
    """Seconds of the published-style loop over the whole grid (measured on ``values`` of them)."""
    entry = get_entry(model)
    task = task_for(signal)
    target, coords = task.spectrum_target(entry.value_range, torch.device("cpu"))
    base = resolve_params(entry, task.model_params(entry.params))
    started = time.perf_counter()
    bins, _ = resolve_bins(tuple(target.shape[1:]), None)
    p = spectrum_vector(target, bins)
    for value in grid[:values]:
        torch.manual_seed(0)
        for _ in range(inits):
            params = {**base, **entry.selection_overrides, entry.knob.name: value}
            network = entry.create(coords.shape[1], target.shape[0], params)
            with torch.no_grad():
                out = torch.cat([network(coords[i:i + LOOP_CHUNK])
                                 for i in range(0, len(coords), LOOP_CHUNK)])
            q = spectrum_vectors(out.T.reshape(1, *target.shape), bins)
            float(wasserstein(p, q)[0])
    return (time.perf_counter() - started) * len(grid) / min(values, len(grid))


def _within(reference: specfit.Selection, chosen: object) -> bool:
    rows = {row.value: row for row in reference.table}
    best = rows[reference.chosen]
    return chosen == reference.chosen or rows[chosen].w_mean <= best.w_mean + best.w_stderr


def demo_share(repeats: int) -> dict:
    shares, totals, selects = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        run = specfit.fit(None, steps=DEMO_STEPS, device="cpu")
        total = time.perf_counter() - started
        seconds = run.metrics.selection["seconds"]
        shares.append(seconds / total)
        totals.append(total)
        selects.append(seconds)
    scores = run.metrics.scores
    return {"case": "demo", "selection_seconds": statistics.median(selects),
            "fit_seconds": statistics.median(totals), "share": statistics.median(shares),
            "value": run.metrics.value, "psnr": scores["psnr"], "psnr_train": scores["psnr_train"],
            "psnr_test": scores["psnr_test"], "ssim": scores["ssim"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["kodak256", "kodak-full", "bunny", "audio12", "demo"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo-repeats", type=int, default=1, help="runs of the default fit")
    parser.add_argument("--loop-values", type=int, default=4,
                        help="grid values the loop is timed on (scaled to the whole grid)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    cases = [c for c in args.cases if c != "demo"]
    signals = {case: _signal(case) for case in cases}
    fast: dict[str, list] = {case: [] for case in cases}
    references: dict[str, specfit.Selection] = {}
    print(f"{'case':<11} {'grid':>4} {'loop s':>8} {'specfit s':>9} {'ratio':>6} {'inits':>5}  "
          "choice (specfit / reference / W within 1 stderr)")
    for case in cases:
        signal = signals[case]
        task = task_for(signal)
        grid = task.default_grid(get_entry("siren").knob.grid, False) or list(get_entry("siren").knob.grid)
        reference = references[case] = specfit.select(signal, "siren", grid=grid, search="full", race=False,
                                                      device="cpu")
        loop = published_loop(signal, "siren", grid, args.loop_values)
        rows.append({"case": case, "grid": grid, "loop_seconds": loop,
                     "loop_values_timed": args.loop_values,
                     "reference_chosen": reference.chosen, "reference_seconds": reference.seconds,
                     "reference_table": [vars(r) for r in reference.table]})
    for _ in range(args.repeats):  # interleaved repeats
        for case in cases:
            fast[case].append(specfit.select(signals[case], "siren", device="cpu"))
    for row in rows:
        runs = fast[row["case"]]
        seconds = statistics.median(r.seconds for r in runs)
        chosen = runs[0].chosen
        ok = all(_within(references[row["case"]], r.chosen) for r in runs)
        row.update({"specfit_seconds": seconds, "all_specfit_seconds": [r.seconds for r in runs],
                    "specfit_chosen": [r.chosen for r in runs], "ratio": row["loop_seconds"] / seconds,
                    "inits_evaluated": sum(c.inits for c in runs[0].table), "agrees": ok})
        print(f"{row['case']:<11} {len(row['grid']):>4} {row['loop_seconds']:8.1f} {seconds:9.1f} "
              f"{row['ratio']:5.1f}x {row['inits_evaluated']:5d}  {chosen} / {row['reference_chosen']} / "
              f"{'yes' if ok else 'NO'}", flush=True)
    if "demo" in args.cases:
        demo = demo_share(args.demo_repeats)
        rows.append(demo)
        print(f"default fit of the bundled image ({DEMO_STEPS} steps): omega_0 = {demo['value']}, PSNR "
              f"{demo['psnr']:.2f} dB (training {demo['psnr_train']:.2f}, held-out {demo['psnr_test']:.2f}); "
              "selection "
              f"{demo['selection_seconds']:.1f} s of {demo['fit_seconds']:.1f} s ("
              f"{100 * demo['share']:.0f} %)")
    print(f"wrote {write_result('selection_speed', {'repeats': args.repeats, 'rows': rows})}")


if __name__ == "__main__":
    main()
