"""Speed: specfit's training loop against the plain PyTorch code it replaces.

Training: steps per second of a 3 x 256 SIREN on a full batch of n x n pixels, for
  - the plain eager loop that published INR code uses (Adam; zero_grad, forward, MSE, backward,
    step), run in a separate Python process with no tuning, as a user would run it;
  - the same plain loop in this process after ``specfit.util.runtime.tune_allocator()``;
  - ``specfit.training.loop.fit_model`` (compiled loss, fused Adam, tuned allocator), in float32 and
    with bfloat16 hidden layers (``precision="bfloat16"``).
The machine's float32 matrix-multiply rate is measured between the repeats; ``limit`` is the step
rate at which the step's matrix products would run at that rate.
The first steps (compilation, warm-up) are excluded from every rate.

Every timing is repeated ``--repeats`` times, the contenders interleaved, and the median is
reported (timings on a shared 2-core machine vary by up to 2x from run to run). Writes
results/speed_training.json. Never asserts a timing. FreSh's selection speed is measured by
benchmarks/selection_speed.py.

    python benchmarks/speed.py [--sizes 64 128 256 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import torch
from _common import ROOT, matmul_gflops, siren_step_gflop, write_result

from specfit.models import build_model
from specfit.signals import make_sampling
from specfit.training.loop import FitOptions, fit_model
from specfit.util.runtime import tune_allocator

WARMUP = 3

PLAIN_LOOP = """
import json, sys, time, torch
from specfit.models import build_model
n, steps, warmup, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
x = torch.rand(n * n, 2, device=device) * 2 - 1
y = torch.rand(n * n, 1, device=device) * 2 - 1
model = build_model("siren", 2, 1).to(device)
optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
for step in range(warmup + steps):
    if step == warmup:
        start = time.perf_counter()
    optimiser.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimiser.step()
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(json.dumps(steps / (time.perf_counter() - start)))
"""


def plain_loop_subprocess(n: int, steps: int, device: str) -> float:
    out = subprocess.run([sys.executable, "-c", PLAIN_LOOP, str(n), str(steps), str(WARMUP), device],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def plain_loop_here(n: int, steps: int, device: str) -> float:
    namespace: dict = {}
    argv = sys.argv
    sys.argv = ["-", str(n), str(steps), str(WARMUP), device]
    try:
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(PLAIN_LOOP, namespace)
    finally:
        sys.argv = argv
    return float(buffer.getvalue().strip())


def specfit_loop(n: int, steps: int, device: str, precision: str = "float32") -> float:
    torch.manual_seed(0)
    sampling = make_sampling((n, n), "all")
    sampling = replace(sampling, coords=sampling.coords.to(device))
    targets = torch.rand(n * n, 1, device=device) * 2 - 1
    model = build_model("siren", 2, 1).to(device)
    stamps: list[float] = []

    def stamp(step: int) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    options = FitOptions(steps=WARMUP + steps, eval_every=10**9, compile="on", precision=precision)
    fit_model(model, targets, sampling, options, lr=1e-4, to_unit=lambda v: (v + 1) / 2, on_step=stamp)
    return steps / (stamps[-1] - stamps[WARMUP - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="speed_training", help="record name under results/")
    args = parser.parse_args()
    device = args.device
    steps_for = {64: 40, 128: 15, 256: 6, 512: 3}
    training = []
    print("training steps/s, 3 x 256 SIREN, full batch; limit: the step's matrix products at the measured "
          "float32 matrix-multiply rate")
    print(f"{'n x n':>9} {'plain (own process)':>20} {'plain (tuned)':>14} {'specfit':>9} {'bfloat16':>9} "
          f"{'limit':>7} {'specfit/limit':>14} {'ratio':>7}")
    tune_allocator()
    rates = [matmul_gflops(device)]
    for n in args.sizes:
        steps = steps_for.get(n, 3)
        runs = []
        for _ in range(args.repeats):
            runs.append((plain_loop_subprocess(n, steps, device), plain_loop_here(n, steps, device),
                         specfit_loop(n, steps, device), specfit_loop(n, steps, device, "bfloat16")))
            rates.append(matmul_gflops(device))
        plain, tuned, ours, reduced = (statistics.median(column) for column in zip(*runs, strict=True))
        limit = statistics.median(rates) / siren_step_gflop(n * n, 2, 1)
        training.append({"n": n, "steps": steps, "plain": plain, "plain_tuned": tuned, "specfit": ours,
                         "specfit_bfloat16": reduced, "limit": limit, "of_limit": ours / limit,
                         "bfloat16_of_limit": reduced / limit, "ratio": ours / plain,
                         "ratio_vs_tuned": ours / tuned})
        print(f"{n:>4} x {n:<3} {plain:20.2f} {tuned:14.2f} {ours:9.2f} {reduced:9.2f} {limit:7.2f} "
              f"{ours / limit:13.2f}x {ours / plain:6.2f}x", flush=True)

    if training:
        record = {"repeats": args.repeats, "matmul_gflops": statistics.median(rates),
                  "matmul_gflops_runs": rates, "rows": training}
        print(f"wrote {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
