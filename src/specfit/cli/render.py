"""``specfit render``: draw a saved run at any resolution."""

from __future__ import annotations

import argparse
from pathlib import Path

from specfit.cli.common import settings_given
from specfit.cli.parser import add_command, examples


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.config.settings import FitSettings
    from specfit.config.tree import add_flags

    ren = add_command(sub, "render", "draw a saved run at any resolution", examples(
        "specfit render runs/photo-siren --size 2x            # twice the signal's size",
        "specfit render runs/photo-siren --size 1920x1080 --out big.png",
        "specfit render runs/bunny-siren --size 512           # a mesh from a 512^3 grid"))
    ren.add_argument("run_dir", metavar="RUN", help="a run folder written by specfit fit")
    ren.add_argument("--size", default=None,
                     help="images and video WIDTHxHEIGHT; audio: samples; volumes: DxHxW; shapes: grid "
                     "resolution; or a factor of the signal's size, e.g. 2x (default: the signal's; "
                     "shapes 256)")
    ren.add_argument("--out", default=None,
                     help="output file (default: RUN/render-SIZE.png/.wav/.mp4/.npy/.ply)")
    add_flags(ren, FitSettings, only=("device",))
    ren.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from specfit.config.settings import FitSettings
    from specfit.runs.render import render_run

    device = FitSettings(**settings_given(args)).device
    result = render_run(Path(args.run_dir), args.size, args.out, device)  # as typed: a trailing / is refused
    print(f"wrote {result.path} ({result.description})")
    return 0
