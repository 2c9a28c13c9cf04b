"""The Fourier-features 3-D occupancy protocol (Tancik et al. 2020) on the armadillo, at a reduced budget.

ReLU MLPs with no mapping, the basic mapping, positional encoding and Gaussian features are fitted
to the occupancy of ../shared/data/meshes/armadillo.obj with cross-entropy on batches of 32^3
points and Adam 5e-4 decayed to 0.1x; IoU is measured on 64^3 uniform and 64^3 boundary points.
The published protocol uses 8 x 256 layers and 10k steps; the defaults here are 4 x 256 layers and
300 steps. The mapping scales (sigma_p, sigma) are chosen by FreSh on the 64^3 occupancy grid.
Writes results/shape_ff_<layers>x<width>_<steps>steps.json.

    python benchmarks/shape_ff.py --steps 300 --layers 4
"""

from __future__ import annotations

import argparse
import time

from _common import require_data, write_result

from specfit.api import fit_settings
from specfit.config.settings import FitSettings
from specfit.kinds.load import load_signal
from specfit.training.loop import FitOptions
from specfit.util.runtime import tune_allocator

MAPPINGS = [("none", "relu"), ("basic", "ff-basic"), ("positional", "ff-positional"),
            ("gaussian", "ff-gaussian")]
PUBLISHED = {"none": (0.864, 0.959), "basic": (0.892, 0.966), "positional": (0.960, 0.987),
             "gaussian": (0.973, 0.988)}  # IoU (boundary, uniform), Tancik et al. 2020


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--layers", type=int, default=4, help="ReLU layers of --width")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--only", default=None, help="comma-separated mappings, e.g. basic")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    tune_allocator()
    shape = load_signal(require_data("meshes/armadillo.obj"))
    started = time.perf_counter()
    rows = []
    print(f"armadillo occupancy, {args.layers} x {args.width} ReLU, {args.steps} steps of 32^3 points")
    print(f"{'mapping':<11} {'knob':>14} {'IoU bnd':>8} {'IoU unif':>8} | {'published':>9} {'':>6} {'s':>6}")
    for label, model in MAPPINGS:
        if args.only and label not in args.only.split(","):
            continue
        settings = FitSettings(
            model=model, params={"width": args.width, "hidden_layers": args.layers - 1}, device=args.device,
            fit=FitOptions(steps=args.steps, lr=5e-4, schedule="exp", eval_every=max(1, args.steps // 5)),
        )
        metrics = fit_settings(shape, settings).metrics.to_json()
        knob = f"{metrics['knob']}={metrics['value']}" if metrics["knob"] else "-"
        row = {"mapping": label, "model": model, "knob": knob, **{
            k: metrics[k] for k in ("iou_boundary", "iou_uniform", "chamfer", "train_seconds", "params")}}
        rows.append(row)
        pub = PUBLISHED[label]
        print(f"{label:<11} {knob:>14} {row['iou_boundary']:8.3f} {row['iou_uniform']:8.3f} | "
              f"{pub[0]:9.3f} {pub[1]:6.3f} {row['train_seconds']:6.0f}", flush=True)
    suffix = f"_{args.only.replace(',', '_')}" if args.only else ""
    path = write_result(f"shape_ff_{args.layers}x{args.width}_{args.steps}steps{suffix}", {
        "steps": args.steps, "layers": args.layers, "width": args.width, "rows": rows,
        "published": PUBLISHED, "seconds": time.perf_counter() - started})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
