"""A user's first fit of a real photo: the README's first command on a several-megapixel image.

Makes the photo from a Kodak image upscaled (default kodim01 to 3072 x 2048, written outside the
repository), runs ``specfit fit PHOTO`` exactly as the README gives it, in a scratch folder, and
records what it printed before training (working size, memory, expected time), the whole output
without progress-bar redraws, the wall time, the training time it reported and the machine's load.
Writes results/first_fit_photo.json. Run it under ``nice`` on a shared machine.

    python benchmarks/first_fit_photo.py [--source kodak/kodim01.png] [--size 3072x2048] [-- EXTRA FIT ARGS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, require_data, write_result
from PIL import Image


def make_photo(source: Path, size: tuple[int, int], path: Path) -> Path:
    """``source`` upscaled to ``size`` (width, height) with a Lanczos filter, as a PNG at ``path``."""
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.LANCZOS).save(path)
    return path


def shown_lines(stream: str) -> list[str]:
    """The lines a terminal keeps: each line's last redraw (the text after its last carriage
    return; ``str.splitlines`` would split at every redraw)."""
    lines = (line.rsplit("\r", 1)[-1].strip() for line in stream.split("\n"))
    return [line for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="kodak/kodim01.png", help="image under ../shared/data")
    parser.add_argument("--size", default="3072x2048", help="the photo's WIDTHxHEIGHT")
    parser.add_argument("--photo", default=None, help="where to write the photo (default: a scratch folder)")
    parser.add_argument("extra", nargs="*", help="options added to the command (after --)")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="specfit-first-fit-") as scratch:
        photo = Path(args.photo) if args.photo else Path(scratch) / "photo.png"
        make_photo(require_data("") / args.source, (width, height), photo)
        command = ["specfit", "fit", str(photo), *args.extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        load_before = os.getloadavg()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "specfit", *command[1:]], cwd=scratch, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        runs = sorted((Path(scratch) / "runs").glob("*/metrics.json"))
        metrics = json.loads(runs[0].read_text()) if runs else {}
    printed = shown_lines(done.stderr) + shown_lines(done.stdout)
    before = next((line for line in printed if line.startswith("before training:")), None)
    selection = metrics.get("selection") or {}
    record = {
        "command": " ".join(["specfit", "fit", f"photo.png ({width} x {height}, {args.source} upscaled)",
                             *args.extra]),
        "exit_code": done.returncode,
        "printed_before_training": before,
        "printed": printed,
        "wall_seconds": round(wall, 1),
        "train_seconds": metrics.get("train_seconds"),
        "fresh_seconds": selection.get("seconds"),
        "steps": metrics.get("steps"),
        "psnr": metrics.get("psnr"),
        "cpu_cores": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "note": "the machine is shared: a load average above the core count means the fit shared its cores",
    }
    path = write_result("first_fit_photo", record)
    print("\n".join(printed))
    print(f"wall time {wall:.0f} s; recorded in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
