"""Neural tangent kernels: the figures of docs/ntk.md and their records.

Parts (``--parts``, default all):

- ``kernels``: NTK profiles and spectra (1-D, 128 points, ReLU MLP 3 x 256 behind the mapping,
  3 initialisations) for no mapping, the basic mapping and Gaussian mappings of several sigma; the
  ``a_j = 1 / j^p`` family (mapping kernel and NTK); the basic mapping plus one extra frequency.
- ``bias``: spectral bias measured (gradient descent on a sum of sines at 1, 2, 4, 8, 16, 32 cycles)
  and predicted by each network's NTK, for relu, ff-basic, ff-positional, ff-gaussian and SIREN at
  three omega_0.
- ``sweeps``: the sigma sweep (1-D signal and a 64 px Kodak image, even samples train, odd ones
  held out), depth against the number of Gaussian features (1-D), fixed against trainable B (image).
- ``selection``: per model family, FreSh's choice against the knob value whose NTK spectrum best
  covers the image's spectrum (definition in docs/ntk.md), on the Kodak images whose grid records
  results/suites/fresh-images-quick holds (tuning kodim01-03, reporting kodim06-10), with the regret
  of each choice from those records.
- ``cost``: the time of the full NTK of a 3 x 256 ReLU MLP (``relu``) on a 64 x 64 grid.

Writes results/ntk/<part>.json and docs/ntk/*.png.

    python benchmarks/ntk_figures.py [--parts kernels bias sweeps selection cost] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, ROOT, machine, require_data
from PIL import Image

import specfit
from specfit.fresh.spectra import band_vectors, magnitudes, wasserstein
from specfit.models import build_model
from specfit.models.registry import get_entry
from specfit.signals.sampling import grid_coordinates
from specfit.tangent.experiments import (
    MappedMLP,
    extra_frequency_mapping,
    fit_held_out,
    lattice_split,
    mapping,
    power_law_mapping,
)
from specfit.tangent.figures import profiles_figure, selection_figure, spectral_bias_figure, sweeps_figure
from specfit.tangent.kernel import averaged_ntk, mapping_kernel
from specfit.tangent.measures import bandwidth, profile, profile_spectrum, stationarity
from specfit.tangent.spectral_bias import SpectralBiasCurves, sines, spectral_bias

OUT = RESULTS / "ntk"
FIGURES = ROOT / "docs" / "ntk"
SUITE = RESULTS / "suites" / "fresh-images-quick"
TUNING = ("kodim01", "kodim02", "kodim03")
REPORTING = ("kodim06", "kodim07", "kodim08", "kodim09", "kodim10")


def save(name: str, data: dict, figure: object | None = None, dpi: int = 72) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=1))
    if figure is not None:  # a 96-colour palette keeps each PNG well under 150 KB
        FIGURES.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        image = Image.open(buffer).convert("RGB").quantize(96)
        image.save(FIGURES / f"{name}.png", optimize=True)


def _profile(kernel: np.ndarray, size: int) -> tuple:
    offsets, line = profile(kernel, size, 1)
    frequencies, spectrum = profile_spectrum(line)
    return offsets, line, frequencies, spectrum


def kernels(args: argparse.Namespace) -> None:
    size, seeds = 128, args.seeds
    coords = grid_coordinates((size,))
    sets: dict[str, dict] = {"mapping": {}, "a_j = 1/j^p (NTK)": {}, "a_j = 1/j^p (mapping)": {},
                             "basic + one frequency": {}}
    record: dict[str, dict] = {}

    def ntk_of(title: str, label: str, make) -> None:
        kernel = averaged_ntk(lambda: MappedMLP(make(), 256, 3), coords, seeds).numpy()
        sets[title][label] = _profile(kernel, size)
        spectrum = sets[title][label][3]
        record.setdefault(title, {})[label] = {"stationarity": stationarity(kernel, size, 1),
                                               "bandwidth": bandwidth(spectrum),
                                               "spectrum": spectrum.tolist()}

    ntk_of("mapping", "none", lambda: mapping("none", 1))
    ntk_of("mapping", "basic", lambda: mapping("basic", 1))
    for sigma in (1.0, 2.0, 4.0, 8.0):
        ntk_of("mapping", f"Gaussian sigma={sigma:g}", lambda s=sigma: mapping("gaussian", 1, s))
    for power in (0.0, 0.5, 1.0, 1.5, 2.0):
        ntk_of("a_j = 1/j^p (NTK)", f"p={power:g}", lambda p=power: power_law_mapping(p, 64))
        kernel = mapping_kernel(power_law_mapping(power, 64), coords).numpy()
        sets["a_j = 1/j^p (mapping)"][f"p={power:g}"] = _profile(kernel, size)
    ntk_of("basic + one frequency", "basic", lambda: mapping("basic", 1))
    for extra in (2.0, 8.0, 32.0):
        ntk_of("basic + one frequency", f"+{extra:g} cycles", lambda e=extra: extra_frequency_mapping(e))
    save("kernels", {"protocol": f"1-D, {size} points in [-1, 1], ReLU MLP 3 x 256 (Glorot normal, linear "
                     f"output) behind the mapping, {seeds} initialisations; Gaussian m = 256; a_j = 1/j^p "
                     "with b_j = j/2 (j cycles over [-1, 1]), j <= 64", "kernels": record},
         profiles_figure(sets))


BIAS_MODELS = (("relu", "relu (none)", {}), ("ff-basic", "ff-basic", {}),
               ("ff-positional", "ff-positional scale=5", {"scale": 5.0}),
               ("ff-gaussian", "ff-gaussian sigma=8", {"sigma": 8.0}),
               *(("siren", f"siren omega_0={w:g}", {"omega_0": w}) for w in (10.0, 30.0, 90.0)))


def bias(args: argparse.Namespace) -> None:
    curves = []
    shape = {"width": 128, "hidden_layers": 2}
    for name, label, params in BIAS_MODELS:
        entry = get_entry(name)
        start = time.perf_counter()
        curves.append(spectral_bias(lambda n=name, p=params: build_model(n, 1, 1, {**shape, **p}), label,
                                    steps=args.bias_steps, value_range=entry.value_range))
        print(f"bias {label}: {time.perf_counter() - start:.0f} s", flush=True)
    save("spectral_bias", {"protocol": f"1-D, 128 periodic points, sum of sines at 1, 2, 4, 8, 16, 32 cycles "
                           f"over [-1, 1] (random phases), width 128, 2 hidden layers (3 hidden for the "
                           f"MLPs), plain gradient descent on 1/2 sum (f - y)^2, eta = 0.5 / lambda_max, "
                           f"{args.bias_steps} steps, seed 0",
                           "curves": [c.to_json() for c in curves]}, spectral_bias_figure(curves))


def _signal_1d(size: int = 256) -> torch.Tensor:
    """A 1-D test signal: sines at 1 .. 48 cycles with amplitudes 1/k (a natural-like spectrum), in
    [0.1, 0.9]."""
    coords = grid_coordinates((size,))
    frequencies = list(range(1, 49))
    raw = sines(coords, frequencies, seed=3, amplitudes=[1.0 / k for k in frequencies])
    return 0.5 + 0.4 * raw / raw.abs().max()


def _image(name: str) -> torch.Tensor:
    signal = specfit.load_signal(require_data(f"kodak/{name}.png"), resize=64)
    return torch.as_tensor(np.asarray(signal.values), dtype=torch.float32)


def sweeps(args: argparse.Namespace) -> None:
    steps = args.sweep_steps
    one = lattice_split(_signal_1d().unsqueeze(0))
    image = _image("kodim05")
    two = lattice_split(image)
    sigma_rows: dict[str, list] = {"1-D (256 samples)": [], "2-D (kodim05, 64 px)": []}
    for sigma in (0.5, 1, 2, 4, 8, 16, 32, 64):
        score = fit_held_out(lambda s=sigma: MappedMLP(mapping("gaussian", 1, s, 128), 128, 3), *one,
                             steps=steps)
        sigma_rows["1-D (256 samples)"].append({"sigma": sigma, **score.to_json()})
        print(f"1-D sigma {sigma}: {score}", flush=True)
    for sigma in (1, 2, 4, 8, 16, 32):
        params = {"width": 64, "features": 64, "sigma": sigma}
        score = fit_held_out(lambda p=params: build_model("ff-gaussian", 2, 3, p), *two, steps=steps)
        sigma_rows["2-D (kodim05, 64 px)"].append({"sigma": sigma, **score.to_json()})
        print(f"2-D sigma {sigma}: {score}", flush=True)
    depths, features = (1, 2, 4, 8), (2, 4, 8, 16, 64)
    table = [[fit_held_out(lambda d=d, m=m: MappedMLP(mapping("gaussian", 1, 8.0, m), 64, d), *one,
                           steps=steps).psnr_test for m in features] for d in depths]
    trainable = []
    for sigma in (2.0, 8.0):
        for flag in (0, 1):
            params = {"width": 64, "features": 64, "sigma": sigma, "trainable_b": flag}
            score = fit_held_out(lambda p=params: build_model("ff-gaussian", 2, 3, p), *two, steps=steps)
            trainable.append({"label": f"s={sigma:g} {'trained' if flag else 'fixed'}", "sigma": sigma,
                              "trainable_b": flag, **score.to_json()})
    depth_table = {"depths": list(depths), "features": list(features), "psnr_test": table}
    save("sweeps", {"protocol": f"Adam lr 1e-3, full batch, MSE, {steps} steps, seed 0; even samples "
                    "train, odd samples held out. 1-D: sines at 1..48 cycles over [-1, 1] with amplitudes "
                    "1/k, 256 samples, ReLU MLP 3 x 128 behind Gaussian features (m = 128; depth table: "
                    "width 64, sigma 8). 2-D: kodim05 at 64 px (RGB), ff-gaussian width 64 "
                    "(3 hidden layers), m = 64",
                    "sigma_sweep": sigma_rows, "depth_vs_features": depth_table, "trainable_b": trainable},
         sweeps_figure(sigma_rows, depth_table, trainable))


def _records() -> tuple[dict, dict]:
    """``(jobs, rows)``: each model's suite parameters, and per (image, model) the FreSh choice and
    the PSNR of every grid value, from the suite's records."""
    suite = json.loads((SUITE / "suite.json").read_text())
    jobs = {grid["job"]["model"]: grid["job"]["params"] for grid in suite["grids"]}
    rows = {}
    for grid in suite["grids"]:
        for summary in grid["summaries"]:
            image = Path(summary["signal"]).stem
            rows[image, summary["model"]] = {"fresh": summary["chosen"],
                                            "psnr": {r["value"]: r["psnr"] for r in summary["rows"]}}
    for model in jobs:
        stem = "ffgaussian" if model == "ff-gaussian" else model  # the file names of those records
        regret = RESULTS / f"selection_regret_{stem}_quick.json"
        if not regret.exists():
            continue
        for row in json.loads(regret.read_text())["rows"]:
            if row["objective"] != "fit":
                continue
            image = Path(row["image"]).stem
            train = next((SUITE / "records").glob(f"*-{image}-{model}-*-train-*.json"))
            psnr = {float(v["value"]): v["psnr"] for v in json.loads(train.read_text()).values()}
            rows[image, model] = {"fresh": row["chosen"]["fresh"], "psnr": psnr}
    return jobs, rows


def selection(args: argparse.Namespace) -> None:
    jobs, records = _records()
    out = []
    for (image, model), record in sorted(records.items()):
        entry = get_entry(model)
        signal = specfit.load_signal(require_data(f"kodak/{image}.png"), resize=64)
        target = specfit.spectrum_of(signal)
        height, width = signal.values.shape[1:]
        coords = grid_coordinates((height, width))
        centre = torch.tensor([(height // 2) * width + width // 2])
        grid = sorted(record["psnr"])
        distances = []
        for value in grid:
            params = {**jobs[model], entry.knob.name: value}
            row = averaged_ntk(lambda p=params, e=entry: e.create(2, 1, p), coords, args.seeds, rows=centre)
            vector = band_vectors(magnitudes(row.reshape(1, 1, height, width)), target.band)[0]
            distances.append(float(wasserstein(vector, torch.as_tensor(target.vector, dtype=vector.dtype))))
        chosen = grid[int(np.argmin(distances))]
        best = max(grid, key=lambda v: record["psnr"][v])
        fresh = float(record["fresh"])
        psnr = record["psnr"]
        out.append({"image": image, "model": model, "knob": entry.knob.name, "grid": grid,
                    "split": "tuning" if image in TUNING else "reporting", "fresh": fresh, "ntk": chosen,
                    "best": best, "ntk_distances": distances,
                    "regret_fresh": psnr[best] - psnr.get(fresh, math.nan),
                    "regret_ntk": psnr[best] - psnr[chosen]})
        print(f"{image} {model}: fresh {fresh:g}, ntk {chosen:g}, best {best:g}", flush=True)
    save("selection", {"protocol": "Kodak at 64 px (short side), the suite's networks (64 wide, 2 hidden "
                       "layers; ff-gaussian m = 64; hash grid 2^10 entries a level); NTK centre row on the "
                       f"image's grid, {args.seeds} initialisations; its spectrum vector in FreSh's band "
                       "against the image's (specfit.spectrum_of), W1 distance, smallest wins; regrets in dB "
                       "of full-image PSNR after 300 steps, from the suite's grid records",
                       "rows": out}, selection_figure(out))


def cost(args: argparse.Namespace) -> None:
    coords = grid_coordinates((64, 64))
    torch.manual_seed(0)
    model = build_model("relu", 2, 1)  # width 256, 3 hidden layers
    start = time.perf_counter()
    kernel = averaged_ntk(lambda: model, coords, 1)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(f"cost: {seconds:.1f} s for a {kernel.shape[0]}^2 kernel of {params} parameters", flush=True)
    save("cost", {"protocol": "full empirical NTK of relu (3 hidden layers of 256, "
                  f"{params} parameters) on a 64 x 64 grid (4096 points), one initialisation, float32 "
                  "products accumulated in float64; a shared machine: an upper bound", "seconds": seconds,
                  "points": int(kernel.shape[0]), "parameters": params})


PARTS = {"kernels": kernels, "bias": bias, "sweeps": sweeps, "selection": selection, "cost": cost}


def replot(name: str) -> None:
    """Draw a part's figure again from its record (bias, sweeps, selection), computing nothing."""
    stem = "spectral_bias" if name == "bias" else name
    record = json.loads((OUT / f"{stem}.json").read_text())
    if name == "bias":
        arrays = ("frequencies", "steps", "trained", "predicted")
        curves = [SpectralBiasCurves(c["label"], *(np.asarray(c[k]) for k in arrays), c["lr"],
                                     c["top_eigenvalue"]) for c in record["curves"]]
        figure = spectral_bias_figure(curves)
    elif name == "sweeps":
        figure = sweeps_figure(record["sigma_sweep"], record["depth_vs_features"], record["trainable_b"])
    elif name == "selection":
        figure = selection_figure(record["rows"])
    else:
        raise SystemExit(f"error: --replot draws bias, sweeps or selection, not {name}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    Image.open(buffer).convert("RGB").quantize(96).save(FIGURES / f"{stem}.png", optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--seeds", type=int, default=3, help="initialisations each kernel is averaged over")
    parser.add_argument("--bias-steps", type=int, default=1000)
    parser.add_argument("--sweep-steps", type=int, default=300)
    parser.add_argument("--replot", action="store_true",
                        help="draw the figures of --parts again from their records in results/ntk")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings, to check the script runs (writes under /tmp/ntk-quick)")
    args = parser.parse_args()
    if args.quick:
        global OUT, FIGURES
        OUT = FIGURES = Path("/tmp/ntk-quick")
        args.seeds, args.bias_steps, args.sweep_steps = 1, 20, 10
    if args.replot:
        for name in args.parts:
            replot(name)
        return
    for name in args.parts:
        start = time.perf_counter()
        PARTS[name](args)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
