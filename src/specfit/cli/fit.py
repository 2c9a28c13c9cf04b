"""``specfit fit``: choose the knob by FreSh, train, write a run folder (or one per signal).

A run of one signal also gets ``log.txt``, what the command showed on the terminal (continued by
``--resume``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from specfit.cli.common import (
    command_line,
    expand_sources,
    fit_settings,
    load,
    load_given,
    notes_as_flags,
    settings_given,
    shrunk_from,
)
from specfit.cli.parser import add_command, add_load_flags, examples, setting_notes, working_size_note
from specfit.cli.progress import ProgressBars, progress_for, terminal_log

DEFAULT_RESIZE = 256  # the bundled image's short side
DEMO_STEPS = 200  # the bundled image's steps

EXAMPLES = examples(
    "specfit fit                                   # the bundled image, FreSh picks omega_0",
    "specfit fit photo.png --model finer --steps 2000",
    "specfit fit song.wav --max-seconds 5 --set omega_0=3000   # the knob set: no FreSh",
    "specfit fit photos/ --resize 128 --out runs/photos       # every image, one run each",
    "specfit fit --config experiment.toml --steps 500          # options override the file",
    "specfit fit --config runs/photo-siren/config.json         # fit a saved run again",
    "specfit fit photo.png --steps 2000 --print-config > fit.toml  # a config file to start from",
    "specfit fit --resume runs/photo-siren --steps 4000        # continue from its checkpoint",
)


FOLDER_FIT = "<the folder fit in --out>"  # --resume given without a run folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    from specfit.config.settings import FitSettings
    from specfit.config.tree import add_flags, leaves

    fit = add_command(sub, "fit", "choose the knob by FreSh, train, write a run folder", EXAMPLES)
    fit.add_argument("signals", nargs="*", metavar="SIGNAL",
                     help="image, .npy, .wav, video, NIfTI, mesh or NeRF scene (.npz) file, a folder of "
                     "them, or a built-in phantom (none: the bundled cameraman image)")
    fit.add_argument("--config", default=None, metavar="FILE",
                     help="read the fit from a TOML, YAML or JSON file with the fields of a run's "
                     "config.json (signal.source, load, settings); options given here override it")
    fit.add_argument("--resume", default=None, nargs="?", const=FOLDER_FIT, metavar="RUN",
                     help="continue RUN from its checkpoint to its step count (or --steps); given without "
                     "RUN after several SIGNALs, continue that folder fit in --out: runs with a "
                     "checkpoint go on (runs trained together, together), the others start")
    steps = leaves(FitSettings)["steps"].fit_default
    add_flags(fit, FitSettings, notes={
        **setting_notes(), "steps": f"default {steps}; {DEMO_STEPS} for the bundled image"})
    fit.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    fit.add_argument("--print-config", action="store_true",
                     help="print the fit this command line asks for as a TOML config file, every setting "
                     "with its help, and fit nothing (a file to start from: edit it, then --config FILE)")
    add_load_flags(fit, {"resize": f"{working_size_note()}; {DEFAULT_RESIZE} for the bundled image"})
    output = fit.add_argument_group("output")
    output.add_argument("--out", default=None,
                        help="run folder (default: runs/NAME-MODEL, numbered when taken); with several "
                        "signals, the folder that holds their runs and summary.csv (default: runs)")
    output.add_argument("--overwrite", action="store_true",
                        help="replace an existing run in --out (otherwise refused; only a specfit run is "
                        "ever replaced)")
    output.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="log the training curves for TensorBoard under DIR/RUN_NAME (needs the "
                        "tensorboard extra)")
    output.add_argument("--together", default="auto", choices=("auto", "on", "off"),
                        help="several images of one size: train them as one stacked computation where the "
                        "model allows it (auto: on a GPU; on a CPU it is no faster, so one after another)")
    fit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.resume is not None and args.resume is not FOLDER_FIT:
        return _resume(args)
    sources, settings, options = asked(args)
    if args.print_config:
        return _print_config(sources, settings, options)
    if len(sources) > 1:
        return _fit_many(args, sources, settings, options)
    if args.resume is FOLDER_FIT:
        from specfit.errors import SpecfitError

        raise SpecfitError("--resume without a run folder continues a fit of several signals; give the "
                           "run folder to continue one run (--resume RUN)")
    return _fit_one(args, sources[0], settings, options)


def _print_config(sources: list[str | None], settings: Any, options: dict[str, object]) -> int:
    from specfit.config.file import FitRequest, fit_config_toml
    from specfit.errors import SpecfitError

    if len(sources) > 1:
        raise SpecfitError("--print-config writes the config of one fit; give one SIGNAL (or none)")
    from dataclasses import replace

    from specfit.models.registry import get_entry, resolve_params

    resolved = resolve_params(get_entry(settings.model), settings.params)  # --set's words as numbers
    settings = replace(settings, params={name: resolved[name] for name in settings.params})
    print(fit_config_toml(FitRequest(sources[0], options, settings)), end="")
    return 0


def asked(args: argparse.Namespace) -> tuple[list[str | None], Any, dict[str, object]]:
    """What the command line asks to fit: the signals (``[None]``: the bundled image), the checked
    settings and the loading options; options given on the command line override those of a
    ``--config`` file, which override the command's defaults."""
    request = None
    if args.config is not None:
        from specfit.config.file import read_fit_config

        request = read_fit_config(args.config)
    named = args.signals or ([request.source] if request is not None and request.source else [])
    sources = expand_sources(named)
    bundled = sources == [None]
    settings = fit_settings({"steps": DEMO_STEPS} if bundled else {},
                            request.options() if request is not None else {}, settings_given(args))
    options = {**({"resize": DEFAULT_RESIZE} if bundled else {}),
               **(request.load if request is not None else {}), **load_given(args)}
    return sources, settings, options


def _unique_out(signal_name: str, model: str) -> Path:
    base = Path("runs") / f"{signal_name}-{model}"
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = base.with_name(f"{base.name}-{k}"), k + 1
    return candidate


def _fit_one(args: argparse.Namespace, source: str | None, settings: Any, options: dict) -> int:
    from specfit.api import check_fit, fit_plan
    from specfit.runs.checkpoints import FolderCheckpoints
    from specfit.runs.folder import check_writable_parent, refuse_existing, run_lock

    plan = check_fit(load(source, options), settings)
    task = plan.task
    out = Path(args.out) if args.out else _unique_out(task.name, plan.entry.name)
    refuse_existing(out, args.overwrite)
    check_writable_parent(out)
    with terminal_log(out):
        if not args.json:
            print(f"fitting {task.headline()} with {plan.entry.name}", file=sys.stderr)
            for note in task.notes:
                print(f"note: {note}", file=sys.stderr)
            print(cost_line(plan, shrunk_from(source, options, plan.signal)), file=sys.stderr)
        progress = progress_for(args.json, args.tensorboard, out.name)
        with run_lock(out):
            try:
                with notes_as_flags():
                    fitted = fit_plan(plan, progress, FolderCheckpoints(out), command_line(args))
                progress.status(f"writing {out}/ (reconstruction and report)")
                fitted.save(out)
            finally:
                progress.close()
        return _print_run(args, fitted, out, task.notes)


def cost_line(plan: Any, original: tuple[int, int] | None) -> str:
    """What the fit will cost, before it starts: the working size (with the file's own size when
    it was shrunk to it, ``original``), the memory training needs and its expected time."""
    from specfit.fitting.estimate import estimate_fit
    from specfit.kinds.load import FULL_SIZE
    from specfit.models.memory import human_bytes
    from specfit.util.formatting import duration

    estimate = estimate_fit(plan)
    size = ""
    if original is not None:
        height, width = plan.signal.spatial_shape
        size = (f"working size {height} x {width} of the {original[0]} x {original[1]} image (--resize "
                f"{FULL_SIZE} keeps it); ")
    steps = f"{estimate.steps} steps of {estimate.step_seconds:.2g} s on {plan.device.type}, timed now"
    fresh = "; FreSh's choice first" if plan.mode == "fresh" else ""
    return (f"before training: {size}about {human_bytes(estimate.memory_bytes)} of memory; training should "
            f"take about {duration(estimate.seconds)} ({steps}{fresh})")


def _resume(args: argparse.Namespace) -> int:
    from specfit.api import resume
    from specfit.errors import SpecfitError
    from specfit.runs.checkpoints import FolderCheckpoints
    from specfit.runs.folder import run_lock

    out = Path(args.resume)
    ignored = _not_for_resume(args)
    if ignored:
        raise SpecfitError(f"--resume continues a run with its own signal and settings, so {ignored} cannot "
                           "apply; give only --steps, --tensorboard or --json with it")
    with terminal_log(out, continued=True):
        progress = progress_for(args.json, args.tensorboard, out.name)
        with run_lock(out):
            try:
                sink = FolderCheckpoints(out, continuing=True)
                with notes_as_flags():
                    continued = resume(out, settings_given(args).get("steps"), progress, sink,
                                       command_line(args))
                progress.status(f"writing {out}/ (reconstruction and report)")
                continued.save(out)
            finally:
                progress.close()
        return _print_run(args, continued, out, [])


def _not_for_resume(args: argparse.Namespace) -> str | None:
    """The first option given with ``--resume RUN`` that a continued run cannot honour (its
    signal, a config file, a setting other than --steps, a loading or output option)."""
    from specfit.config.settings import FitSettings
    from specfit.config.tree import leaves
    from specfit.kinds.kind import LoadOptions

    if args.signals:
        return f"SIGNAL {args.signals[0]}"
    declared = {**leaves(FitSettings), **leaves(LoadOptions)}
    given = [declared[name].flag for name in {**settings_given(args), **load_given(args)} if name != "steps"]
    given += [flag for flag, value, default in (
        ("--config", args.config, None), ("--out", args.out, None), ("--overwrite", args.overwrite, False),
        ("--together", args.together, "auto")) if value != default]
    return given[0] if given else None


def _print_run(args: argparse.Namespace, fitted: Any, out: Path, printed_notes: list[str]) -> int:
    from specfit.runs.format import LOG
    from specfit.util.formatting import shown

    metrics = fitted.metrics.to_json()
    if args.json:
        print(json.dumps({**{k: v for k, v in metrics.items() if k != "history"}, "out": str(out)}))
        return 0
    for note in metrics["notes"]:
        if note not in printed_notes:  # loading notes were printed before the fit
            print(f"note: {note}", file=sys.stderr)
    if metrics["selection"]:
        sel, probes = metrics["selection"], metrics["selection"].get("probes")
        fresh = probes["fresh_chosen"] if probes else sel["chosen"]
        line = f"FreSh chose {sel['knob']} = {shown(fresh)}"
        if sel.get("second_knob"):
            line += f" and {sel['second_knob']} = {shown(sel['second_chosen'])}"
        line += f" in {sel['seconds']:.1f} s"
        if probes:
            line += f"; the probes chose {shown(sel['chosen'])} in {probes['seconds']:.1f} s"
        print(f"{line} (default {shown(metrics['default_value'])})")
    print(f"{metrics['summary']}, {metrics['steps']} steps in {metrics['train_seconds']:.1f} s")
    names = {path.name for path in out.iterdir()} | {LOG}  # the log is written once this is printed
    print(f"outputs in {out}/ ({', '.join(sorted(names))})")
    return 0


def _fit_many(args: argparse.Namespace, sources: list[str], settings: Any, options: dict) -> int:
    """Fit every signal (one run each under --out) and write the summary table."""
    from specfit.fitting.batch import fit_many, summary_rows, write_summary
    from specfit.util.runtime import resolve_device

    if args.tensorboard is not None:
        from specfit.training.tensorboard import require_tensorboard

        require_tensorboard()
    parent = Path(args.out) if args.out else Path("runs")
    progress = ProgressBars(quiet=args.json)
    on_gpu = resolve_device(settings.device).type == "cuda"
    together = args.together == "on" or (args.together == "auto" and on_gpu)

    def on_done(index: int, source: str, out: Path, fitted: Any) -> None:
        if args.tensorboard is not None:  # each run's curves, once it is written
            from specfit.training.tensorboard import TensorBoardLog

            log = TensorBoardLog(Path(args.tensorboard) / out.name)
            for record in fitted.history:
                log.record(record)
            log.close()
        if not args.json:
            progress.close()
            print(f"[{index + 1}/{len(sources)}] {source} -> {out}/", file=sys.stderr)

    try:
        results = fit_many(sources, lambda source: load(source, options), settings, parent,
                           overwrite=args.overwrite, batched=together, progress=progress,
                           command=command_line(args), on_done=on_done, resume=args.resume is FOLDER_FIT)
    finally:
        progress.close()
    rows = summary_rows(results)
    table = write_summary(parent, rows)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(table)
    print(f"summary in {parent / 'summary.csv'}")
    return 0
