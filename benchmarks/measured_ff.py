"""The Fourier-features CT, MRI and NeRF rows (Tancik et al. 2020) at a CPU budget, with FreSh's
choice of the Gaussian scale against the published scale and a grid of full fits.

Every fit trains through the forward model only (projections, sampled k-space, rendered rays) and
is scored on what it never saw (the phantom or volume; the held-out views). Mappings: none
(``relu``), basic, positional encoding and Gaussian Fourier features, at the published scales
converted to specfit's coordinates (CT, MRI: [-1, 1] is twice the paper's [0, 1), so sigma / 2 and
sigma_p - 1; NeRF: world points are divided by 1.5, so sigma * 1.5 and sigma_p + 0.6) and the
published learning rates. Each fit runs in its own process, so its peak resident memory is its own.
Writes results/measured_ff_<task>.json.

    python benchmarks/measured_ff.py ct --size 128 --steps 400
    python benchmarks/measured_ff.py mri --size 32 --steps 200
    python benchmarks/measured_ff.py nerf --size 100 --steps 1000
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

from _common import require_data, write_result

PUBLISHED = {  # PSNR in dB, Tancik et al. 2020 (none, basic, positional, Gaussian)
    "ct": (16.75, 23.31, 26.89, 28.33),
    "mri": (26.14, 28.58, 32.23, 34.51),
    "nerf": (22.41, 23.16, 25.28, 25.48),  # at 400 px
}
# (sigma, sigma_p) in specfit's coordinates for the published (4, 3) CT, (5, 4) MRI, (6.05, -) NeRF
SCALES = {"ct": (2.0, 2.0), "mri": (2.5, 3.0), "nerf": (9.0, 6.6)}
LRS = {"ct": (1e-2, 1e-2, 1e-3, 1e-3), "mri": (2e-3, 2e-3, 2e-3, 2e-3), "nerf": (1e-2, 5e-3, 5e-4, 5e-4)}
MAPPINGS = ("none", "basic", "positional", "gaussian")
MODELS = {"none": "relu", "basic": "ff-basic", "positional": "ff-positional", "gaussian": "ff-gaussian"}
GRIDS = {"ct": [0.5, 1.0, 2.0, 4.0, 8.0], "mri": [0.5, 1.0, 2.0, 4.0], "nerf": [1.0, 3.0, 9.0, 27.0]}
DEFAULT_SIZE = {"ct": 128, "mri": 32, "nerf": 100}
DEFAULT_STEPS = {"ct": 400, "mri": 200, "nerf": 1000}


def signals(task: str, size: int) -> list[tuple[str, dict]]:
    """(source, load options) of the task's test signals."""
    if task == "ct":
        return [("shepp-logan", {"measure": "ct", "resize": size}),
                ("phantom-1", {"measure": "ct", "resize": size})]
    if task == "nerf":
        return [(str(require_data("nerf/lego_train_100x100.npz")), {"resize": size})]
    brain = str(require_data("volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    return [(brain, {"measure": "mri", "resize": size}), ("phantom3d-1", {"measure": "mri", "resize": size})]


def _fit(job: dict) -> dict:
    """One fit in a child process: its metrics, wall time and peak resident memory."""
    import torch

    import specfit

    torch.set_num_threads(job["threads"])
    signal = specfit.load_signal(job["source"], **job["load"])
    started = time.perf_counter()
    run = specfit.fit(signal, job["model"], steps=job["steps"], lr=job["lr"], fresh=job["fresh"],
                      grid=job.get("grid"), eval_every=max(1, job["steps"] // 10), **job["params"])
    metrics = run.metrics.to_json()
    keep = ("psnr", "psnr_train", "ssim", "psnr_fbp", "psnr_zero_filled", "value", "knob", "train_seconds")
    out = {k: metrics.get(k) for k in keep}
    out["wall_seconds"] = time.perf_counter() - started
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if run.selection is not None:
        out["selection"] = {"chosen": run.selection.chosen, "seconds": run.selection.seconds,
                            "table": [[r.value, r.w_mean] for r in run.selection.table if r.inits]}
    return out


def run_job(job: dict) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_fit, (job,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("ct", "mri", "nerf"))
    parser.add_argument("--size", type=int, default=None, help="side in pixels (CT 128, MRI 32, NeRF 100)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (CT 400, MRI 200, NeRF 1000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-grid", action="store_true", help="skip the grid of Gaussian scales")
    args = parser.parse_args()
    task = args.task
    size = args.size or DEFAULT_SIZE[task]
    steps = args.steps or DEFAULT_STEPS[task]
    sigma, sigma_p = SCALES[task]
    params = {"none": {}, "basic": {}, "positional": {"scale": sigma_p}, "gaussian": {"sigma": sigma}}
    rows, fresh_rows = [], []
    print(f"{task}: {size} px, {steps} steps, {args.threads} threads")
    for source, load in signals(task, size):
        name = source.rsplit("/", 1)[-1].split(".")[0]
        for index, mapping in enumerate(MAPPINGS):
            job = {"source": source, "load": load, "model": MODELS[mapping], "steps": steps,
                   "lr": LRS[task][index], "fresh": False, "params": params[mapping], "threads": args.threads}
            result = {"signal": name, "mapping": mapping, **run_job(job)}
            rows.append(result)
            baseline = result.get("psnr_fbp") or result.get("psnr_zero_filled") or float("nan")
            print(f"{name:<14} {mapping:<11} {result['psnr']:6.2f} dB (baseline {baseline:.2f}) "
                  f"{result['wall_seconds']:6.0f} s {result['peak_rss_mib']:6.0f} MiB", flush=True)
        job = {"source": source, "load": load, "model": "ff-gaussian", "steps": steps, "lr": LRS[task][3],
               "fresh": True, "params": {}, "threads": args.threads, "grid": GRIDS[task]}
        fresh = {"signal": name, **run_job(job)}
        print(f"{name:<14} FreSh sigma={fresh['value']} {fresh['psnr']:6.2f} dB "
              f"(selection {fresh['selection']['seconds']:.1f} s)", flush=True)
        grid = []
        if not args.no_grid and name in ("shepp-logan", "mni_icbm152_t1_tal_nlin_sym_09a_converted",
                                         "lego_train_100x100"):
            for value in GRIDS[task]:
                job = {**job, "fresh": False, "params": {"sigma": value}}
                result = run_job(job) if value != fresh["value"] else fresh
                grid.append({"sigma": value, "psnr": result["psnr"]})
                print(f"{name:<14} grid sigma={value:<5} {result['psnr']:6.2f} dB", flush=True)
        fresh_rows.append({**fresh, "grid": grid})
    write_result(f"measured_ff_{task}", {"task": task, "size": size, "steps": steps,
                                         "published": PUBLISHED[task], "rows": rows, "fresh": fresh_rows})


if __name__ == "__main__":
    main()
