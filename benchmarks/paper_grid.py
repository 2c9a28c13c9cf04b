"""One model's grid of a suite's paper profile (the published protocol), on the images given.

Trains the model's knob grid exactly as ``specfit bench SUITE --profile paper`` does for that row,
into the suite's records folder (so the suite resumes from them), and prints each image's regret
of FreSh's choice. Meant for a GPU, where the paper profile runs in minutes.

    python benchmarks/paper_grid.py --model siren --images kodak/kodim06.png kodak/kodim07.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from specfit.bench.grid import grid_search
from specfit.bench.suites import GridJob, _settings, _source, get_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="fresh-images")
    parser.add_argument("--model", default="siren")
    parser.add_argument("--images", nargs="+", default=["kodak/kodim06.png"])
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    suite = get_suite(args.suite, "paper")
    jobs = [job for job in suite.jobs if isinstance(job, GridJob) and job.model == args.model]
    if not jobs:
        raise SystemExit(f"error: the {args.suite} suite has no grid of {args.model}")
    records = Path("results/suites") / f"{args.suite}-paper" / "records"
    for job in jobs:
        started = time.perf_counter()
        settings = _settings(job.model, job.params, job.steps, job.fit)
        sources = [_source(Path(args.data), image) for image in args.images]
        summaries = grid_search(sources, settings, records, job.grid, job.load)
        print(f"{job.label}: {time.perf_counter() - started:.0f} s")
        for image, summary in zip(args.images, summaries, strict=True):
            regrets = {name: objective["fresh_regret"] for name, objective in summary["objectives"].items()}
            print(f"  {image}: FreSh chose {summary['chosen']}; its regret (dB) by objective: {regrets}")


if __name__ == "__main__":
    main()
