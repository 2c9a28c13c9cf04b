"""FreSh against the default configuration on Kodak (kodim01-10), at a CPU budget.

For each image, downscaled so its short side is ``--size`` pixels, SIREN is trained twice from the
same seed: with omega_0 chosen by FreSh, and with the default omega_0 = 30. Both hold out 10 % of
pixels. Prints PSNR on training and held-out pixels per image and writes results/kodak_fresh.json.

    python benchmarks/kodak_fresh.py --size 64 --steps 1000
"""

from __future__ import annotations

import argparse
import time

from _common import require_data, write_result

from specfit.api import fit_settings
from specfit.config.settings import FitSettings
from specfit.kinds.load import load_signal
from specfit.signals.image import resize_image
from specfit.training.loop import FitOptions
from specfit.util.runtime import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="short side in pixels")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--model", default="siren")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    tune_allocator()
    kodak = require_data("kodak")
    rows = []
    print(f"{args.model}, short side {args.size} px, {args.steps} full-batch steps, 10 % held out")
    print(f"{'image':<8} {'chosen':>7} | {'train F':>8} {'train D':>8} {'d':>6} | "
          f"{'test F':>7} {'test D':>7} {'d':>6}")
    started = time.perf_counter()
    for index in range(1, args.images + 1):
        signal = resize_image(load_signal(kodak / f"kodim{index:02d}.png"), args.size)
        result = {"image": f"kodim{index:02d}", "shape": list(signal.spatial_shape)}
        for label, fresh in (("fresh", True), ("default", False)):
            settings = FitSettings(model=args.model, fresh=fresh, device=args.device,
                                   fit=FitOptions(steps=args.steps, eval_every=args.steps // 10))
            metrics = fit_settings(signal, settings).metrics.to_json()
            result[label] = {k: metrics[k] for k in
                             ("value", "psnr", "psnr_train", "psnr_test", "ssim", "train_seconds")}
            if fresh:
                result["selection_seconds"] = metrics["selection"]["seconds"]
        f, d = result["fresh"], result["default"]
        print(f"{result['image']:<8} {f['value']:>7} | {f['psnr_train']:8.2f} {d['psnr_train']:8.2f} "
              f"{f['psnr_train'] - d['psnr_train']:+6.2f} | {f['psnr_test']:7.2f} {d['psnr_test']:7.2f} "
              f"{f['psnr_test'] - d['psnr_test']:+6.2f}", flush=True)
        rows.append(result)
    summary = {
        f"{label}_{split}": sum(r[label][f"psnr_{split}"] for r in rows) / len(rows)
        for label in ("fresh", "default") for split in ("train", "test")
    }
    print(f"{'mean':<8} {'':>7} | {summary['fresh_train']:8.2f} {summary['default_train']:8.2f} "
          f"{summary['fresh_train'] - summary['default_train']:+6.2f} | {summary['fresh_test']:7.2f} "
          f"{summary['default_test']:7.2f} {summary['fresh_test'] - summary['default_test']:+6.2f}")
    path = write_result(f"kodak_fresh_{args.model}_{args.size}px_{args.steps}steps", {
        "model": args.model, "size": args.size, "steps": args.steps, "rows": rows,
        "summary": summary, "seconds": time.perf_counter() - started})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
