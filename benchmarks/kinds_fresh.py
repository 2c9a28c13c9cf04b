"""FreSh against the default configuration for audio, video, volumes and shapes, at a CPU budget.

For each signal type one real signal from ../shared/data is fitted twice from the same seed: with
the knob chosen by FreSh and with the model's default. Grid signals report PSNR on training and
held-out samples (10 % held out); the shape reports IoU on uniform and boundary points. Writes
results/kinds_fresh_<steps>steps.json.

    python benchmarks/kinds_fresh.py --steps 300
"""

from __future__ import annotations

import argparse
import time

from _common import require_data, write_result

from specfit.api import fit_settings
from specfit.config.settings import FitSettings
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.training.loop import FitOptions
from specfit.util.runtime import tune_allocator

# (label, file under ../shared/data, load options, model, hyperparameters)
CASES = [
    ("audio", "audio/bach.wav", LoadOptions(max_seconds=1.0), "siren", {"width": 128}),
    ("video", "video/bikes.mp4", LoadOptions(max_frames=10, resize=68), "siren", {"width": 128}),
    ("volume", "volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", LoadOptions(resize=48),
     "siren", {"width": 128}),
    ("shape", "meshes/bunny.ply", LoadOptions(), "ff-gaussian", {"width": 128}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", default=None, help="comma-separated labels (audio,video,volume,shape)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    tune_allocator()
    started = time.perf_counter()
    rows = []
    wanted = set(args.only.split(",")) if args.only else None
    for label, sub, options, model, overrides in CASES:
        if wanted and label not in wanted:
            continue
        signal = load_signal(require_data(sub), options)
        row = {"type": label, "file": sub, "model": model, "overrides": overrides}
        for mode, fresh in (("fresh", True), ("default", False)):
            settings = FitSettings(model=model, params=dict(overrides), fresh=fresh, device=args.device,
                                   fit=FitOptions(steps=args.steps, eval_every=max(1, args.steps // 5)))
            metrics = fit_settings(signal, settings).metrics.to_json()
            keys = ("value", "psnr", "psnr_train", "psnr_test", "iou_uniform", "iou_boundary", "chamfer",
                    "psnr_frames_min", "train_seconds")
            row[mode] = {k: metrics.get(k) for k in keys}
            if fresh:
                row["selection_seconds"] = metrics["selection"]["seconds"]
            knob = f"{metrics['knob']}={metrics['value']}"
            print(f"{label:<7} {mode:<8} {knob}: {metrics['summary']}", flush=True)
        rows.append(row)
    path = write_result(f"kinds_fresh_{args.steps}steps", {
        "steps": args.steps, "rows": rows, "seconds": time.perf_counter() - started})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
