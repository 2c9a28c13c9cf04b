"""Pruning a TUNER network, after the TUNER talk's example (2-300-300-3, 92 100 -> 19 380 parameters).

Trains a 300-input, 300-wide TUNER on one natural image, then prunes to ``--prune-to`` input
frequencies (ramped L1 on the weakest columns, removal, fine-tuning) and prints parameter counts
and PSNR before and after. Writes results/tuner_pruning_<size>px.json.

    python benchmarks/tuner_pruning.py --size 256 --steps 500 --ramp-steps 200 --finetune-steps 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import require_data, write_result

from specfit.api import fit_settings
from specfit.config.settings import FitSettings
from specfit.kinds.load import load_signal
from specfit.signals.image import resize_image
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions
from specfit.util.runtime import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--image", default="natural/test/00.png")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--prune-to", type=int, default=60)
    parser.add_argument("--ramp-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    tune_allocator()
    path = require_data(args.image)
    signal = resize_image(load_signal(path), args.size)
    plan = CompactionPlan(target_inputs=args.prune_to, ramp_steps=args.ramp_steps,
                          finetune_steps=args.finetune_steps)
    settings = FitSettings(model="tuner", params={"width": 300, "inputs": 300}, fresh=False, holdout=0.05,
                           device=args.device, compaction=plan,
                           fit=FitOptions(steps=args.steps, eval_every=max(1, args.steps // 5)))
    started = time.perf_counter()
    run = fit_settings(signal, settings)
    metrics = run.metrics.to_json()
    with tempfile.TemporaryDirectory() as tmp:
        size = (run.save(Path(tmp) / "run") / "model.safetensors").stat().st_size
    before, after = metrics["compaction"]["before"], metrics["compaction"]["after"]
    print(f"{args.image} at {args.size}^2, {args.steps} steps, then {args.ramp_steps} ramp + "
          f"{args.finetune_steps} fine-tune steps")
    print(f"{'':<8} {'inputs':>6} {'params':>7} {'PSNR all':>8} {'train':>7} {'held-out':>8}")
    for label, record in (("before", before), ("after", after)):
        print(f"{label:<8} {record['inputs']:>6} {record['with_frequencies']:>7} {record['psnr']:8.2f} "
              f"{record['psnr_train']:7.2f} {record['psnr_test']:8.2f}")
    print(f"saved model after pruning: {size} bytes")
    out = write_result(f"tuner_pruning_{args.size}px", {
        "image": args.image, "size": args.size, "steps": args.steps, "plan": vars(args),
        "before": before, "after": after, "saved_bytes": size, "seconds": time.perf_counter() - started})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
