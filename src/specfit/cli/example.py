"""``specfit example``: write an example signal to try the commands on (no network, no data folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specfit.cli.parser import add_command, examples


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.signals.examples import EXAMPLES

    example = add_command(sub, "example", "write an example signal to fit (no network or data folder needed)",
                          examples("specfit example                          # the examples",
                                   "specfit example astronaut                # writes astronaut.png",
                                   "specfit example chord --out sound.wav    # a synthetic sound"))
    example.add_argument("name", nargs="?", choices=tuple(EXAMPLES), metavar="NAME",
                         help=f"the example: {', '.join(EXAMPLES)} (none: list them)")
    example.add_argument("--out", default=None, metavar="FILE",
                         help="the file to write (default: NAME.png or NAME.wav in the current folder)")
    example.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from specfit.errors import SpecfitError
    from specfit.runs.outputs import check_output_file
    from specfit.signals.examples import EXAMPLES, write_example
    from specfit.util.files import staged_file

    if args.name is None:
        for name, example in EXAMPLES.items():
            print(f"{name + example.suffix:<16} {example.description}")
        return 0
    suffix = EXAMPLES[args.name].suffix
    path = Path(args.out) if args.out else Path(args.name + suffix)
    if path.suffix.lower() != suffix:
        raise SpecfitError(f"--out must end in {suffix} for the example {args.name}, got {path}")
    if path.exists():
        raise SpecfitError(f"{path} exists; give another --out")
    path = check_output_file(path, "--out")
    with staged_file(path) as staged:
        write_example(args.name, staged)
    print(f"wrote {path.name if args.out is None else args.out}: {EXAMPLES[args.name].description}",
          file=sys.stderr)
    return 0
