"""``specfit bench``: run a named reproduction suite (it resumes where it stopped)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from specfit.cli.parser import add_command, examples


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.bench.suites import SUITES
    from specfit.fresh.options import OBJECTIVES, SEARCHES, SPECTRA

    bench = add_command(sub, "bench", "run a named reproduction suite (resumes where it stopped)", examples(
        "specfit bench fresh-images --data ~/inr-data              # the quick profile, on 2 CPU cores",
        "specfit bench tuner --profile paper --data ~/inr-data     # the published protocol, on a GPU",
        "specfit bench fresh-images --data ../shared/data --page docs/results.md  # in specfit's repository"))
    bench.add_argument("suite", choices=tuple(SUITES), help="the suite")
    bench.add_argument("--profile", default="quick", choices=("quick", "paper"),
                       help="quick (2 CPU cores) or paper (the published protocol, a GPU)")
    bench.add_argument("--data", required=True, metavar="FOLDER",
                       help="folder holding the data sets the suite reads: kodak/, natural/, audio/, video/, "
                       "volume/, meshes/, nerf/ (specfit downloads none; required)")
    bench.add_argument("--out", default=None, help="records folder (default: results/suites/SUITE-PROFILE)")
    bench.add_argument("--page", default=None, metavar="FILE",
                       help="also write a Markdown results page from every suite recorded beside --out (in "
                       "specfit's repository: docs/results.md; default: no page)")
    bench.add_argument("--workers", type=int, default=1, help="local worker processes")
    bench.add_argument("--ray", default=None, metavar="ADDRESS", help="run on a Ray cluster")
    # A FreSh variant re-selects on the trained grids: these are not the fit's settings (none: the suite's).
    bench.add_argument("--spectrum", default=None, choices=SPECTRA,
                       help="a FreSh variant: re-select on the trained grids with this spectrum")
    bench.add_argument("--objective", default=None, choices=OBJECTIVES, help="a FreSh variant's objective")
    bench.add_argument("--search", default=None, choices=SEARCHES, help="a FreSh variant's search")
    bench.add_argument("--json", action="store_true", help="print the suite's record as JSON")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from specfit.bench.suites import (
        check_results_page,
        get_suite,
        run_suite,
        suite_markdown,
        write_results_page,
    )

    get_suite(args.suite, args.profile)  # a bad name fails before any work
    if args.page:
        check_results_page(Path(args.page))  # a page specfit did not write is refused before any work
    folder = Path(args.out) if args.out else Path("results") / "suites" / f"{args.suite}-{args.profile}"

    def on_done(task, result, cached) -> None:
        if not args.json:
            print(f"{task.key}: {'recorded earlier' if cached else 'done'}", file=sys.stderr)

    fresh = {"spectrum": args.spectrum, "objective": args.objective, "search": args.search}
    result = run_suite(args.suite, args.profile, Path(args.data), folder, args.workers, args.ray, on_done,
                       fresh)
    if args.page:
        write_results_page(sorted(folder.parent.iterdir()), Path(args.page))
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    print("\n".join(suite_markdown(result)))
    return 0
