"""``specfit spectrum``: a signal's spectrum vector, as FreSh matches it."""

from __future__ import annotations

import argparse
import json
import sys

from specfit.cli.common import load, load_given, print_working_size, settings_given
from specfit.cli.parser import add_command, add_load_flags, examples, working_size_note

OPTIONS = ("bins", "spectrum", "shape_target", "video_spectrum")  # the settings the spectrum depends on


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.config.settings import FitSettings
    from specfit.config.tree import add_flags

    spec = add_command(sub, "spectrum", "print a signal's spectrum vector", examples(
        "specfit spectrum photo.png", "specfit spectrum song.wav --bins 32 --json"))
    spec.add_argument("signal", help="the signal file (as for specfit fit) whose spectrum to print")
    add_flags(spec, FitSettings, only=OPTIONS)
    spec.add_argument("--json", action="store_true", help="print the vector as JSON on stdout")
    add_load_flags(spec, {"resize": working_size_note()})
    spec.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from specfit.api import spectrum_of
    from specfit.config.settings import FitSettings

    given = settings_given(args)
    settings = FitSettings(**given)  # the defaults of the others
    options = load_given(args)
    signal = load(args.signal, options)
    result = spectrum_of(signal, settings.bins, settings.video_spectrum, settings.spectrum,
                         shape_target=settings.shape_target)
    band, vector = result.band, result.vector.tolist()
    if args.json:
        print(json.dumps({"bins": band.bins, "band": band.to_json(), "spectrum": vector}))
        return 0
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print_working_size(args.signal, options, signal)
    edge = f"frequency {band.edge:g} (cycles over the signal)"
    if result.edge_hz is not None:
        edge = f"{result.edge_hz:.0f} Hz"
    what = f"; {result.description}" if result.description is not None else ""
    print(f"{result.headline}, {band.bins} bins up to {edge} ({result.spectrum} spectrum{what})")
    for m, value in enumerate(vector, start=1):
        print(f"{m:4d}  {value:.6f}  {'#' * round(value * 400)}")
    return 0
