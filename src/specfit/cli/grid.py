"""``specfit grid``: train every value of the knob's grid and compare with FreSh's choice."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from specfit.cli.common import fit_settings, load, load_given, settings_given
from specfit.cli.parser import add_command, add_load_flags, examples, setting_notes

GRID_STEPS = 300  # steps per value
# Not options of a grid search: FreSh always runs, nothing is checkpointed or compacted.
NOT_GRID = ("fresh", "checkpoint_every")
GRID_SET = ("hyperparameters of the model by name, as `specfit models` lists them (KNOB=VALUE, repeatable), "
            "kept for every value of the grid; the knob itself is trained at each value of --grid")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.config.settings import FitSettings
    from specfit.config.tree import add_flags, leaves

    grid = add_command(sub, "grid", "train every value of the knob's grid and compare with FreSh's choice",
                       examples("specfit grid photo.png --model siren --steps 300",
                                "specfit grid a.png b.png --grid 10:100:10 --workers 2 --out runs/grid-siren",
                                "specfit grid a.png --ray auto    # on a Ray cluster"))
    grid.add_argument("signals", nargs="+", metavar="SIGNAL", help="signal files (same options for all)")
    compaction = tuple(leaf.name for leaf in leaves(FitSettings).values()
                       if leaf.key.startswith("compaction."))
    add_flags(grid, FitSettings, skip=(*NOT_GRID, *compaction), defaults={"steps": GRID_STEPS},
              notes=setting_notes(), texts={"params": GRID_SET})
    grid.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    add_load_flags(grid, {"resize": "default: full, the file's own size"})
    grid.add_argument("--out", default=None, help="results folder (default: runs/grid-MODEL); "
                      "running the same command again resumes from it")
    grid.add_argument("--workers", type=int, default=1, help="local worker processes")
    grid.add_argument("--group", type=int, default=None,
                      help="values trained per task (default: a signal's whole grid in one task)")
    grid.add_argument("--sequential", action="store_true",
                      help="train one value after another (default: together, where the model allows it)")
    grid.add_argument("--ray", default=None, metavar="ADDRESS",
                      help="run the tasks on a Ray cluster (auto, local or an address)")
    grid.set_defaults(run=run)


def asked(args: argparse.Namespace) -> tuple[Any, dict[str, object]]:
    """The checked settings and the loading options of the command line: every loading option
    that has a flag, at its value here (the records' keys hold them all, but those declared
    ``written_when_set`` only when set)."""
    from specfit.config.tree import leaves
    from specfit.kinds.kind import LoadOptions, recorded

    given = load_given(args)
    options = recorded({leaf.name: given.get(leaf.name, leaf.default)
                        for leaf in leaves(LoadOptions).values() if leaf.flag})
    return fit_settings({"steps": GRID_STEPS}, settings_given(args)), options


def run(args: argparse.Namespace) -> int:
    from specfit.bench.grid import grid_search

    settings, options = asked(args)
    folder = Path(args.out) if args.out else Path("runs") / f"grid-{settings.model}"
    for source in args.signals:  # refuse a bad file before any work
        load(source, options)
    done = 0

    def on_done(task, result, cached) -> None:
        nonlocal done
        done += 1
        if not args.json:
            state = "recorded earlier" if cached else "done"
            print(f"[{done}] {task.key}: {state}", file=sys.stderr)

    summaries = grid_search(args.signals, settings, folder, settings.grid, options, args.group, args.workers,
                            args.ray, on_done, batched=not args.sequential)
    if args.json:
        print(json.dumps(summaries))
        return 0
    for summary in summaries:
        _print_grid(summary)
    print(f"records in {folder}/")
    return 0


def _print_grid(summary: dict) -> None:
    objectives = summary["objectives"]
    keys = [o["key"] for o in objectives.values()]
    print(f"\n{summary['signal']} ({summary['model']}, {summary['knob']})")
    print(f"{'value':>10} {'mean W':>9} {'stderr':>8} " + " ".join(f"{k:>12}" for k in keys) + f" {'s':>7}")
    for row in summary["rows"]:
        marks = ("F" if row["value"] == summary["chosen"] else " ") + (
            "D" if row["value"] == summary["default"] else " ")
        cells = " ".join(f"{row.get(k):12.3f}" if row.get(k) is not None else f"{'-':>12}" for k in keys)
        w = "-" if row["w_mean"] is None else f"{row['w_mean']:.4f}"
        stderr = "-" if row["w_stderr"] is None else f"{row['w_stderr']:.4f}"
        print(f"{row['value']!s:>10} {w:>9} {stderr:>8} {cells} {row.get('seconds', 0.0):7.1f} {marks}")
    for name, o in objectives.items():
        regret = "-" if o["fresh_regret"] is None else f"{o['fresh_regret']:.3f}"
        default = "-" if o["default_regret"] is None else f"{o['default_regret']:.3f}"
        rho = "-" if o["spearman"] is None else f"{o['spearman']:.2f}"
        print(f"{name}: best {summary['knob']} = {o['best_value']} ({o['best']:.3f}); "
              f"FreSh's regret {regret}, the default's {default}; Spearman(-W, score) {rho}")
    print(f"FreSh chose {summary['chosen']} (F) in {summary['selection_seconds']:.1f} s; the grid "
          f"trained in {summary['grid_seconds']:.1f} s; D marks the default")
