"""Batched against sequential training of a knob grid: steps per second and final weights, one run.

Trains the same ``B`` networks (one per knob value, same seed) twice per repeat, interleaved: one
after another with the ordinary training loop (eager, as published code does), and together as one
stacked computation (the :class:`specfit.training.stacked.StackedModels` strategy). Prints medians
of steps per second per network and the largest weight difference between the two, and writes
``results/batched_speed.json``.

    python benchmarks/batched_speed.py --sizes 64,128 --values 10 --steps 100 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _common import write_result

from specfit.models.registry import get_entry
from specfit.signals.sampling import make_sampling
from specfit.training.loop import FitOptions, Trainer, fit_model
from specfit.training.stacked import StackedModels
from specfit.util.runtime import tune_allocator


def models_for(name: str, values: list[float], width: int, layers: int) -> list[torch.nn.Module]:
    entry = get_entry(name)
    out = []
    for value in values:
        torch.manual_seed(0)
        out.append(entry.create(2, 3, {"width": width, "hidden_layers": layers, entry.knob.name: value}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="siren")
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--values", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tune_allocator()
    entry = get_entry(args.model)
    grid = list(entry.knob.grid)
    values = [grid[round(i * (len(grid) - 1) / max(1, args.values - 1))] for i in range(args.values)]
    options = FitOptions(steps=args.steps, eval_every=25, compile="off")
    to_unit = (lambda v: (v + 1) / 2) if entry.value_range == "signed" else (lambda v: v)
    rows = []
    print(f"{args.model} {args.width} x {args.layers}, {args.values} values, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'size':>5} {'sequential':>11} {'batched':>9} {'ratio':>6} {'max |dW|':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        sampling = make_sampling((size, size), "holdout", 0.1, 0)
        targets = torch.rand(size * size, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
        sequential, batched, diffs = [], [], []
        for _ in range(args.repeats):
            alone = models_for(args.model, values, args.width, args.layers)
            together = [copy.deepcopy(m) for m in alone]
            started = time.perf_counter()
            for model in alone:
                fit_model(model, targets, sampling, options, entry.lr, to_unit, False, entry.adam_betas,
                          entry.adam_eps)
            sequential.append(args.steps * len(values) / (time.perf_counter() - started))
            started = time.perf_counter()
            Trainer(StackedModels(together, targets, sampling, to_unit), options, entry.lr, entry.adam_betas,
                    entry.adam_eps).fit()
            batched.append(args.steps * len(values) / (time.perf_counter() - started))
            diffs.append(max(float((a - b).abs().max()) for x, y in zip(alone, together, strict=True)
                             for a, b in zip(x.state_dict().values(), y.state_dict().values(), strict=True)))
        row = {"size": size, "sequential_steps_per_s": statistics.median(sequential),
               "batched_steps_per_s": statistics.median(batched), "max_weight_difference": max(diffs)}
        row["ratio"] = row["batched_steps_per_s"] / row["sequential_steps_per_s"]
        rows.append(row)
        print(f"{size:>5} {row['sequential_steps_per_s']:11.1f} {row['batched_steps_per_s']:9.1f} "
              f"{row['ratio']:6.2f} {row['max_weight_difference']:9.2e}")
    record = {"args": vars(args), "values": values, "rows": rows}
    write_result(f"batched_speed_{args.model}_w{args.width}", record)


if __name__ == "__main__":
    main()
