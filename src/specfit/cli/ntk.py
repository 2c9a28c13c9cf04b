"""``specfit ntk``: a model's empirical neural tangent kernel on a small grid, and its measures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from specfit.cli.parser import add_command, examples


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmd = add_command(sub, "ntk", "show a model's neural tangent kernel: eigenvalues, profile, stationarity",
                      examples("specfit ntk relu", "specfit ntk ff-gaussian --set sigma=4 --json",
                               "specfit ntk siren --dims 2 --size 24 --out ntk-siren    # page with figures",
                               "specfit ntk hashgrid --set n_max=256 --set log2_table=12 --seeds 2"))
    cmd.add_argument("model", help="the model, as `specfit models` lists them")
    cmd.add_argument("--dims", type=int, default=1, choices=(1, 2), help="grid dimensions")
    cmd.add_argument("--size", type=int, default=None,
                     help="grid points per axis (default: 128 in 1-D, 24 in 2-D)")
    cmd.add_argument("--set", dest="params", action="append", default=[], metavar="KNOB=VALUE",
                     help="a hyperparameter of the model by name, as `specfit models` lists them "
                     "(repeatable)")
    cmd.add_argument("--seeds", type=int, default=3, help="initialisations the kernel is averaged over")
    cmd.add_argument("--seed", type=int, default=0, help="the first initialisation's seed")
    cmd.add_argument("--json", action="store_true",
                     help="print eigenvalues, stationarity, profile and its spectrum as JSON on stdout")
    cmd.add_argument("--out", default=None, metavar="DIR",
                     help="write report.html, kernel.png and ntk.json into DIR")
    cmd.add_argument("--overwrite", action="store_true",
                     help="replace a folder an earlier specfit ntk wrote in --out (otherwise refused)")
    cmd.set_defaults(run=run)


def _params(items: list[str]) -> dict[str, str]:
    from specfit.errors import SpecfitError

    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SpecfitError(f"--set takes KNOB=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _check_out(out: Path, overwrite: bool) -> None:
    """The output policy (``specfit.runs.outputs``): ``out`` is new, empty, or a page this command
    wrote, which only ``--overwrite`` replaces."""
    from specfit.errors import SpecfitError
    from specfit.runs.outputs import OutputFolder, check_writable
    from specfit.tangent.page import FILES, RECORD

    OutputFolder("an NTK page", FILES, "--out", lambda folder: (folder / RECORD).is_file()).check(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SpecfitError(f"{out} exists; give --overwrite to replace it, or another --out")
    check_writable(out)


def run(args: argparse.Namespace) -> int:
    from specfit.api import ntk
    from specfit.tangent.page import write_page

    out = None if args.out is None else Path(args.out)
    if out is not None:
        _check_out(out, args.overwrite)  # before any work
    result = ntk(args.model, args.dims, args.size, seeds=args.seeds, seed=args.seed, **_params(args.params))
    if out is not None:
        write_page(result, out)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    print(f"NTK of {result.model} ({params}) on {result.size ** result.dims} points ({result.size} per "
          f"axis, {result.dims}-D), {result.seeds} initialisations, {result.seconds:.1f} s")
    print(f"stationarity {result.stationarity:.4f} (0: a function of v1 - v2)")
    print(f"bandwidth {result.bandwidth:g} cycles over [-1, 1] (99 % of the profile's spectral energy "
          "beyond the constant)")
    top = ", ".join(f"{value:.4g}" for value in result.eigenvalues[:8])
    print(f"eigenvalues, largest first: {top}, ...")
    if out is not None:
        print(f"wrote {out / 'report.html'}")
    return 0
