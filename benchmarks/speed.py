"""Speed: specfit's training loop and FreSh selection against the plain PyTorch code they replace.

Training: steps per second of a 3 x 256 SIREN on a full batch of n x n pixels, for
  - the plain eager loop that published INR code uses (Adam; zero_grad, forward, MSE, backward,
    step), run in a separate Python process with no tuning, as a user would run it;
  - the same plain loop in this process after ``specfit.runtime.tune_allocator()``;
  - ``specfit.training.fit_model`` (compiled loss, fused Adam, tuned allocator).
The first steps (compilation, warm-up) are excluded from every rate.

Selection: FreSh over the default SIREN grid (20 values x 10 initialisations) on cameraman,
  - a straightforward loop over values and initialisations (build, forward under no_grad, spectrum);
  - ``specfit.selection.fresh_select`` without and with racing.
The chosen values are compared. Every timing is repeated ``--repeats`` times, the contenders
interleaved, and the median is reported (timings on a shared 2-core machine vary by up to 2x
from run to run). Writes results/speed_training.json and results/speed_selection.json. Never
asserts a timing.

    python benchmarks/speed.py [--sizes 64 128 256] [--select-sizes 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from _common import ROOT, write_result

from specfit.models import build_model, get_entry
from specfit.runtime import tune_allocator
from specfit.selection import fresh_select
from specfit.signals import load_signal, make_sampling
from specfit.spectra import resolve_bins, spectrum_vector, spectrum_vectors, wasserstein
from specfit.training import FitOptions, fit_model

WARMUP = 3

PLAIN_LOOP = """
import json, sys, time, torch
from specfit.models import build_model
n, steps, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
x = torch.rand(n * n, 2) * 2 - 1
y = torch.rand(n * n, 1) * 2 - 1
model = build_model("siren", 2, 1)
optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
for step in range(warmup + steps):
    if step == warmup:
        start = time.perf_counter()
    optimiser.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimiser.step()
print(json.dumps(steps / (time.perf_counter() - start)))
"""


def plain_loop_subprocess(n: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", PLAIN_LOOP, str(n), str(steps), str(WARMUP)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def plain_loop_here(n: int, steps: int) -> float:
    namespace: dict = {}
    argv = sys.argv
    sys.argv = ["-", str(n), str(steps), str(WARMUP)]
    try:
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(PLAIN_LOOP, namespace)
    finally:
        sys.argv = argv
    return float(buffer.getvalue().strip())


def specfit_loop(n: int, steps: int) -> float:
    torch.manual_seed(0)
    sampling = make_sampling((n, n), "all")
    targets = torch.rand(n * n, 1) * 2 - 1
    model = build_model("siren", 2, 1)
    stamps: list[float] = []
    fit_model(model, targets, sampling, FitOptions(steps=WARMUP + steps, eval_every=10**9, compile="on"),
              lr=1e-4, to_unit=lambda v: (v + 1) / 2, on_step=lambda s: stamps.append(time.perf_counter()))
    return steps / (stamps[-1] - stamps[WARMUP - 1])


def straightforward_select(values: torch.Tensor, coords: torch.Tensor, grid: list[float], inits: int,
                           seed: int = 0) -> tuple[float, float]:
    """The loop a user would write: one model at a time, full-grid forward under no_grad."""
    start = time.perf_counter()
    bins, _ = resolve_bins(tuple(values.shape[1:]), None)
    target = spectrum_vector(values, bins)
    scores = []
    for value in grid:
        torch.manual_seed(seed)
        distances = []
        for _ in range(inits):
            model = build_model("siren", 2, values.shape[0], {"omega_0": value})
            with torch.no_grad():
                out = model(coords).T.reshape(1, *values.shape)
            distances.append(float(wasserstein(target, spectrum_vectors(out, bins))[0]))
        scores.append(sum(distances) / len(distances))
    return grid[scores.index(min(scores))], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256])
    parser.add_argument("--select-sizes", type=int, nargs="*", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps_for = {64: 40, 128: 15, 256: 6}
    training = []
    print("training steps/s, 3 x 256 SIREN, full batch")
    print(f"{'n x n':>9} {'plain (own process)':>20} {'plain (tuned)':>14} {'specfit':>9} {'ratio':>7}")
    tune_allocator()
    for n in args.sizes:
        steps = steps_for.get(n, 5)
        runs = [(plain_loop_subprocess(n, steps), plain_loop_here(n, steps), specfit_loop(n, steps))
                for _ in range(args.repeats)]
        plain, tuned, ours = (statistics.median(column) for column in zip(*runs, strict=True))
        training.append({"n": n, "steps": steps, "plain": plain, "plain_tuned": tuned, "specfit": ours,
                         "ratio": ours / plain, "ratio_vs_tuned": ours / tuned})
        print(f"{n:>4} x {n:<3} {plain:20.2f} {tuned:14.2f} {ours:9.2f} {ours / plain:6.2f}x", flush=True)

    selection = []
    print("\nFreSh selection, SIREN omega_0 grid 10..200 x 10 inits, cameraman")
    print(f"{'n x n':>9} {'loop s':>8} {'batched s':>10} {'raced s':>8} {'speed-up':>9}  choices")
    camera = load_signal(None).values
    grid = list(get_entry("siren").knob.grid)
    for n in args.select_sizes:
        values = F.interpolate(camera[None], (n, n), mode="bilinear", antialias=True)[0] * 2 - 1
        coords = make_sampling((n, n), "all").coords
        loops, fulls, raceds = [], [], []
        for _ in range(args.repeats):
            loops.append(straightforward_select(values, coords, grid, 10))
            fulls.append(fresh_select(values, coords, "siren", race=False))
            raceds.append(fresh_select(values, coords, "siren", race=True))
        chosen_loop = loops[0][0]
        loop_seconds = statistics.median(seconds for _, seconds in loops)
        full, raced = fulls[0], raceds[0]
        full_seconds = statistics.median(f.seconds for f in fulls)
        raced_seconds = statistics.median(r.seconds for r in raceds)
        selection.append({"n": n, "loop_seconds": loop_seconds, "batched_seconds": full_seconds,
                          "raced_seconds": raced_seconds, "speedup": loop_seconds / raced_seconds,
                          "all_loop_seconds": [seconds for _, seconds in loops],
                          "all_raced_seconds": [r.seconds for r in raceds],
                          "chosen_loop": chosen_loop, "chosen_batched": full.chosen,
                          "chosen_raced": raced.chosen,
                          "evaluated_inits": sum(r.inits for r in raced.table)})
        print(f"{n:>4} x {n:<3} {loop_seconds:8.1f} {full_seconds:10.1f} {raced_seconds:8.1f} "
              f"{loop_seconds / raced_seconds:8.2f}x  {chosen_loop} / {full.chosen} / {raced.chosen}",
              flush=True)
    if training:
        print(f"wrote {write_result('speed_training', {'repeats': args.repeats, 'rows': training})}")
    if selection:
        print(f"wrote {write_result('speed_selection', {'repeats': args.repeats, 'rows': selection})}")


if __name__ == "__main__":
    main()
