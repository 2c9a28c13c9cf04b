"""``specfit select``: FreSh alone, the distance table of the knob's candidate values."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from specfit.cli.common import (
    fit_settings,
    load,
    load_given,
    notes_as_flags,
    print_working_size,
    settings_given,
)
from specfit.cli.parser import add_command, add_load_flags, examples, setting_notes, working_size_note
from specfit.cli.progress import ProgressBars

if TYPE_CHECKING:
    from specfit.fresh.search import Selection


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.config.settings import NOT_SELECTION, FitSettings
    from specfit.config.tree import add_flags

    sel = add_command(sub, "select", "FreSh selection only: print the distance table", examples(
        "specfit select photo.png                    # SIREN's omega_0",
        "specfit select song.wav --model finer --search full --json"))
    sel.add_argument("signal", help="the signal file (as for specfit fit) whose knob FreSh chooses")
    add_flags(sel, FitSettings, skip=NOT_SELECTION, notes=setting_notes())
    sel.add_argument("--no-race", action="store_true", help="give every value all initialisations")
    sel.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    add_load_flags(sel, {"resize": working_size_note()})
    sel.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from specfit.api import select_settings
    from specfit.util.formatting import shown

    settings = fit_settings(settings_given(args))
    options = load_given(args)
    signal = load(args.signal, options)
    progress = ProgressBars(quiet=args.json)
    try:
        with notes_as_flags():
            selection = select_settings(signal, settings, race=not args.no_race, progress=progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(selection.to_json()))
        return 0
    if selection.table_2d is None:
        print_table(selection)
    else:
        print_table_2d(selection)
    chosen = ", ".join(f"{knob} = {shown(value)}" for knob, value in selection.pair.items())
    print(f"{chosen} ({selection.seconds:.1f} s, "
          f"{selection.spectrum} spectrum, {selection.bins} bins, objective {selection.objective})")
    for note in selection.notes:
        print(f"note: {note}", file=sys.stderr)
    print_working_size(args.signal, options, signal)
    return 0


def print_table(selection: Selection) -> None:
    """One line per candidate value: mean W, its standard error, the initialisations."""
    from specfit.util.formatting import shown

    print(f"{'value':>10} {'mean W':>9} {'stderr':>8} {'inits':>5}")
    for row in selection.table:
        mark = "  <- chosen" if row.value == selection.chosen else ""
        if row.inits:
            stderr = "-" if row.w_stderr is None else f"{row.w_stderr:.4f}"
            print(f"{shown(row.value):>10} {row.w_mean:9.4f} {stderr:>8} {row.inits:5d}{mark}")
        else:
            print(f"{shown(row.value):>10} {'-':>9} {'-':>8} {0:5d}  (skipped by the search)")


def print_table_2d(selection: Selection) -> None:
    """The mean W of every pair: one line per value of the second knob, one column per value of
    the first; ``-`` for a pair the search skipped, ``*`` after the chosen pair."""
    from specfit.util.formatting import shown

    table = selection.table_2d
    corner = f"{selection.second_knob} \\ {selection.knob}"
    width = max(8, *(len(shown(value)) + 1 for value in table.columns))
    label = max(len(corner), *(len(shown(value)) for value in table.rows))
    print(f"mean W of each pair ({selection.inits} initialisations at most; - skipped by the search)")
    print(f"{corner:>{label}}" + "".join(f"{shown(value):>{width}}" for value in table.columns))
    for second, cells in zip(table.rows, table.cells, strict=True):
        line = []
        for cell in cells:
            mark = "*" if (second, cell.value) == (selection.second_chosen, selection.chosen) else ""
            line.append(f"{'-' if cell.w_mean is None else f'{cell.w_mean:.4f}'}{mark}".rjust(width))
        print(f"{shown(second):>{label}}" + "".join(line))
