"""TUNER against its baselines on the natural images, at equal parameter counts and steps (CPU budget).

Every model has one frozen or first-layer embedding of 256 features, one hidden layer of 256 and a
linear output (about 67k parameters): TUNER (bounded integer frequencies), the uniform-integer
init, SIREN and FINER (one hidden layer) and Gaussian Fourier features (128 frequencies, one
ReLU layer). Each is trained with its default knob and learning rate, full batch, 5 % of the pixels
held out (the TUNER protocol, Aldana et al., CVPR 2025). Prints training, held-out and gradient
PSNR and writes results/tuner_natural_<size>px_<steps>steps.json.

    python benchmarks/tuner_natural.py --size 256 --steps 300 --images 2
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

MODELS = {
    "tuner": {},
    "tuner-uniform": {},
    "siren": {"hidden_layers": 1},
    "finer": {"hidden_layers": 1},
    "ff-gaussian": {"features": 128, "hidden_layers": 0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="side in pixels (the images are 512^2)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--images", type=int, default=2, help="natural/test/00.png onwards")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    tune_allocator()
    folder = require_data("natural/test")
    started = time.perf_counter()
    rows = []
    print(f"natural/test, {args.size}^2, {args.steps} full-batch steps, 5 % held out, default knobs")
    print(f"{'image':<6} {'model':<14} {'params':>7} {'train':>7} {'held-out':>8} {'grad':>6} {'s':>6}")
    for index in range(args.images):
        signal = resize_image(load_signal(folder / f"{index:02d}.png"), args.size)
        for model, overrides in MODELS.items():
            settings = FitSettings(model=model, params=dict(overrides), fresh=False, holdout=0.05,
                                   device=args.device,
                                   fit=FitOptions(steps=args.steps, eval_every=max(1, args.steps // 5)))
            metrics = fit_settings(signal, settings).metrics.to_json()
            keys = ("params", "value", "psnr", "psnr_train", "psnr_test", "psnr_grad", "train_seconds")
            row = {"image": f"{index:02d}", "model": model, **{k: metrics[k] for k in keys}}
            rows.append(row)
            print(f"{row['image']:<6} {model:<14} {row['params']:>7} {row['psnr_train']:7.2f} "
                  f"{row['psnr_test']:8.2f} {row['psnr_grad']:6.2f} {row['train_seconds']:6.1f}", flush=True)
    print("mean over images:")
    means = {}
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        keys = ("psnr_train", "psnr_test", "psnr_grad")
        means[model] = {k: sum(r[k] for r in mine) / len(mine) for k in keys}
        m = means[model]
        print(f"{'':<6} {model:<14} {mine[0]['params']:>7} {m['psnr_train']:7.2f} {m['psnr_test']:8.2f} "
              f"{m['psnr_grad']:6.2f}")
    path = write_result(f"tuner_natural_{args.size}px_{args.steps}steps", {
        "size": args.size, "steps": args.steps, "holdout": 0.05, "models": MODELS, "rows": rows,
        "means": means, "seconds": time.perf_counter() - started})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
