"""Time to quality: seconds and steps until a fit reaches stated PSNRs on its training samples.

Contenders, each run in a Python process of its own (as a user runs them), interleaved, repeated:

- ``published``: the plain eager loop of published SIREN code: a 3 x 256 SIREN with the paper's
  initialisation and omega_0 = 30 (3000 for audio, the paper's audio setting), Adam at 1e-4, every
  sample in every step, MSE; written here from the paper's description;
- ``weight-scaling``: the same loop with the first and hidden weights multiplied by alpha = 2.5 at
  initialisation (Yeom et al., ICLR 2025, arXiv 2410.04779; their image setting);
- ``specfit``: ``specfit fit SIGNAL --split all --resize full --target-psnr DB`` (every sample of
  the prepared file, as the published loops see them) with everything else at its
  defaults (FreSh chooses omega_0): its time includes FreSh's selection and, where the run
  compiles its step, the compilation; ``specfit-bfloat16``: the same with ``--precision bfloat16``.

Every contender trains on all samples of the same file (an image resized so that its longer
side has ``--sizes`` pixels and saved as PNG, or a clip of audio saved as WAV) and stops at the
first step whose training PSNR reaches the target (the published loops read it from their loss,
which costs nothing; specfit reads it from its loss and confirms it by an evaluation). A run that
has not reached a target within ``--max-seconds`` is recorded as not reaching it. The machine's
float32 matrix-multiply rate (a 65536 x 256 by 256 x 256 product) is measured in the same run and
printed beside each step rate: ``of limit`` is the step rate over the rate the step's matrix
products would reach at that limit. Medians over ``--repeats``. Writes
``results/time_to_quality.json`` (``--out NAME``: ``results/NAME.json``). Never asserts a timing.

    python benchmarks/time_to_quality.py                      # kodim07 at 256 px, 1 s of audio
    python benchmarks/time_to_quality.py --sizes 256 512 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, matmul_gflops, siren_step_gflop, write_result
from PIL import Image
from scipy.io import wavfile

ALPHA = 2.5
PUBLISHED_OMEGA = {"image": 30.0, "audio": 3000.0}
SPECFIT = {"specfit": (), "specfit-bfloat16": ("--precision", "bfloat16")}

# The published loop, standalone: argv = file, omega_0, alpha, targets (comma-separated), max seconds,
# device.
PUBLISHED_LOOP = r"""
import json, math, sys, time
import numpy as np, torch
from torch import nn

path, omega, alpha = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
targets, max_seconds, device = [float(t) for t in sys.argv[4].split(",")], float(sys.argv[5]), sys.argv[6]
if path.endswith(".wav"):
    from scipy.io import wavfile
    rate, wave = wavfile.read(path)
    values = torch.tensor(wave, dtype=torch.float32)[:, None]
    coords = torch.linspace(-1, 1, len(wave))[:, None]
    peak = 2.0
else:
    from PIL import Image
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    h, w = image.shape[:2]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    coords = torch.stack([xs, ys], -1).reshape(-1, 2)
    values = torch.tensor(image).reshape(-1, 3) * 2 - 1
    peak = 2.0


class SineLayer(nn.Module):
    def __init__(self, n_in, n_out, omega, first):
        super().__init__()
        self.omega, self.linear = omega, nn.Linear(n_in, n_out)
        bound = 1 / n_in if first else math.sqrt(6 / n_in) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)
            self.linear.weight.mul_(alpha)

    def forward(self, x):
        return torch.sin(self.omega * self.linear(x))


torch.manual_seed(0)
final = nn.Linear(256, values.shape[1])
with torch.no_grad():
    bound = math.sqrt(6 / 256) / 30.0
    final.weight.uniform_(-bound, bound)
net = nn.Sequential(SineLayer(coords.shape[1], 256, omega, True), SineLayer(256, 256, 30.0, False),
                    SineLayer(256, 256, 30.0, False), SineLayer(256, 256, 30.0, False), final).to(device)
coords, values = coords.to(device), values.to(device)
optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
reached, step, start = {}, 0, time.perf_counter()
while len(reached) < len(targets) and time.perf_counter() - start < max_seconds:
    optimiser.zero_grad()
    loss = ((net(coords) - values) ** 2).mean()
    loss.backward()
    optimiser.step()
    step += 1
    psnr = 10 * math.log10(peak * peak / loss.item())  # of the parameters before this step
    for target in targets:
        if target not in reached and psnr >= target:
            reached[target] = {"step": step - 1, "seconds": time.perf_counter() - start}
seconds = time.perf_counter() - start
print(json.dumps({"reached": {str(k): v for k, v in reached.items()}, "steps": step,
                  "steps_per_second": step / seconds}))
"""


def published(path: Path, kind: str, alpha: float, targets: list[float], max_seconds: float,
              device: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PUBLISHED_LOOP, str(path), str(PUBLISHED_OMEGA[kind]), str(alpha),
         ",".join(map(str, targets)), str(max_seconds), device],
        capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def specfit_fit(path: Path, target: float, max_steps: int, folder: Path, device: str,
                extra: tuple[str, ...] = ()) -> dict:
    """``specfit fit`` to one target; its time is FreSh's selection plus training to the target."""
    out = folder / f"run-{target:g}-{time.monotonic_ns()}"
    subprocess.run([sys.executable, "-m", "specfit", "fit", str(path), "--split", "all", "--target-psnr",
                    str(target), "--steps", str(max_steps), "--device", device, "--resize", "full",
                    "--out", str(out), *extra],
                   capture_output=True, text=True, check=True, cwd=ROOT)
    metrics = json.loads((out / "metrics.json").read_text())
    selection = (metrics.get("selection") or {}).get("seconds", 0.0)
    reached = metrics.get("target")
    return {"chosen": metrics.get("value"), "selection_seconds": selection,
            "steps_per_second": metrics.get("steps_per_second"), "compiled": metrics.get("compiled"),
            "psnr_train": metrics.get("psnr_train"),
            "reached": None if reached is None else {"step": reached["step"],
                                                     "seconds": selection + reached["seconds"]}}


def prepare(source: str, kind: str, size: int, seconds: float, folder: Path) -> tuple[Path, int, int, int]:
    """The signal as a file every contender reads: ``(path, samples, in_features, out_features)``."""
    if kind == "audio":
        rate, wave = wavfile.read(source)
        clip = np.asarray(wave[: int(rate * seconds)], dtype=np.float32)
        path = folder / f"{Path(source).stem}-{seconds:g}s.wav"
        wavfile.write(path, rate, clip)
        return path, len(clip), 1, 1
    image = Image.open(source).convert("RGB")
    scale = size / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    path = folder / f"{Path(source).stem}-{size}.png"
    image.save(path)
    return path, image.width * image.height, 2, 3


def measure(label: str, path: Path, kind: str, samples: int, targets: list[float], repeats: int,
            max_seconds: float, max_steps: int, folder: Path, device: str) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in ("published", "weight-scaling", *SPECFIT)}
    for repeat in range(repeats):
        runs["published"].append(published(path, kind, 1.0, targets, max_seconds, device))
        runs["weight-scaling"].append(published(path, kind, ALPHA, targets, max_seconds, device))
        for name, extra in SPECFIT.items():
            per_target = {str(t): specfit_fit(path, t, max_steps, folder, device, extra) for t in targets}
            rates = [r["steps_per_second"] for r in per_target.values() if r["steps_per_second"]]
            runs[name].append({"reached": {t: r["reached"] for t, r in per_target.items() if r["reached"]},
                               "runs": per_target, "steps_per_second": statistics.median(rates)})
        print(f"{label} repeat {repeat + 1}: " + json.dumps(
            {name: {t: round(r["seconds"], 1) for t, r in found[-1]["reached"].items()}
             for name, found in runs.items()}), flush=True)
    table = {}
    for name, found in runs.items():
        row = {"steps_per_second": statistics.median(r["steps_per_second"] for r in found)}
        for target in map(str, targets):
            hits = [r["reached"].get(target) for r in found]
            row[target] = None if any(h is None for h in hits) else {
                "seconds": statistics.median(h["seconds"] for h in hits),
                "step": statistics.median(h["step"] for h in hits)}
        table[name] = row
    return {"signal": label, "samples": samples, "targets": targets, "table": table, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--image", default="kodak/kodim07.png")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256])
    parser.add_argument("--audio", default="audio/bach.wav", help="'' to skip")
    parser.add_argument("--audio-seconds", type=float, default=1.0)
    parser.add_argument("--targets", type=float, nargs="*", default=[25.0, 30.0, 35.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (every contender)")
    parser.add_argument("--out", default="time_to_quality", help="record name under results/")
    args = parser.parse_args()
    data = Path(args.data)
    rates = [matmul_gflops(args.device)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        signals = [(f"{Path(args.image).stem} at {size} px", "image", str(data / args.image), size)
                   for size in args.sizes]
        if args.audio:
            label = f"{Path(args.audio).stem}, {args.audio_seconds:g} s"
            signals.append((label, "audio", str(data / args.audio), 0))
        for label, kind, source, size in signals:
            path, samples, n_in, n_out = prepare(source, kind, size, args.audio_seconds, folder)
            row = measure(label, path, kind, samples, args.targets, args.repeats,
                          args.max_seconds, args.max_steps, folder, args.device)
            rates.append(matmul_gflops(args.device))
            row["step_gflop"] = siren_step_gflop(samples, n_in, n_out)
            rows.append(row)
    limit = statistics.median(rates)
    for row in rows:
        for contender in row["table"].values():
            contender["of_limit"] = contender["steps_per_second"] * row["step_gflop"] / limit
    record = {"matmul_gflops": limit, "matmul_gflops_runs": rates, "rows": rows,
              "command": "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])}
    write_result(args.out, record)
    print(f"float32 matrix-multiply rate: {limit:.0f} GFLOP/s")
    for row in rows:
        print(f"\n{row['signal']}")
        for name, contender in row["table"].items():
            cells = []
            for target in map(str, args.targets):
                hit = contender[target]
                cells.append(f"{target} dB: " + ("not reached" if hit is None
                                                  else f"{hit['seconds']:.1f} s ({hit['step']:.0f} steps)"))
            rate = f"{contender['steps_per_second']:6.2f} steps/s ({contender['of_limit']:.2f} of limit)"
            print(f"  {name:15s} {rate}  " + "; ".join(cells))


if __name__ == "__main__":
    main()
