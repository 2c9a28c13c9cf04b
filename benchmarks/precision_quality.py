"""What bfloat16 hidden layers (``--precision bfloat16``) cost in PSNR and save in time.

The default fit (SIREN, FreSh's omega_0, 10 % of pixels held out) of each image at the size and
step budget given, once in float32 and once with ``precision="bfloat16"``, interleaved; FreSh's
choice is made once per image and both trainings use it. Records the final PSNR on training and
held-out pixels and the training time of each. Writes ``results/precision_quality.json``. Never
asserts a timing.

    python benchmarks/precision_quality.py --images kodak/kodim01.png kodak/kodim02.png --size 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _common import write_result

import specfit

PRECISIONS = ("float32", "bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--images", nargs="+", default=[f"kodak/kodim{i:02d}.png" for i in range(1, 6)])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    rows = []
    for image in args.images:
        signal = specfit.load_signal(str(Path(args.data) / image), resize=args.size)
        chosen = specfit.select(signal, "siren").chosen
        row = {"image": image, "omega_0": chosen}
        for precision in PRECISIONS:
            run = specfit.fit(signal, "siren", omega_0=chosen, steps=args.steps, precision=precision)
            row[precision] = {"psnr_train": run.metrics.psnr_train, "psnr_test": run.metrics.psnr_test,
                              "train_seconds": run.metrics.train_seconds}
        rows.append(row)
        print(image, row, flush=True)
    summary = {
        key: statistics.mean(r["bfloat16"][key] - r["float32"][key] for r in rows)
        for key in ("psnr_train", "psnr_test")
    }
    summary["speed_up"] = statistics.median(r["float32"]["train_seconds"] / r["bfloat16"]["train_seconds"]
                                            for r in rows)
    record = {"size": args.size, "steps": args.steps, "rows": rows, "mean_change": summary,
              "command": "python benchmarks/precision_quality.py " + " ".join(sys.argv[1:])}
    print(f"wrote {write_result('precision_quality', record)}")
    print(f"bfloat16 - float32, mean over images: training {summary['psnr_train']:+.2f} dB, held-out "
          f"{summary['psnr_test']:+.2f} dB; training {summary['speed_up']:.2f}x faster (median)")


if __name__ == "__main__":
    main()
