"""The ``specfit`` command line: parses, calls the library, prints. See ``specfit --help``."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from specfit.errors import SpecfitError
from specfit.fresh.options import DEFAULT_OBJECTIVE, OBJECTIVES, SEARCHES, SPECTRA
from specfit.signals.limits import DEFAULT_MAX_SAMPLES
from specfit.signals.measure_options import DEFAULT_KSPACE_FRACTION, DEFAULT_PROJECTIONS, MEASURES
from specfit.util.formatting import shown
from specfit.version import __version__

DEFAULT_RESIZE = 256
DEFAULT_STEPS = 1000
DEMO_STEPS = 200
GRID_STEPS = 300


class _Parser(argparse.ArgumentParser):
    """argparse with one-line ``error:`` messages and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpecfitError(message)


MAX_GRID_VALUES = 1000
MAX_SEED = 2**32 - 1


def parse_grid(text: str) -> list[float]:
    """``"10,20,30"`` or ``"START:STOP:STEP"`` (inclusive) to a list of at most
    :data:`MAX_GRID_VALUES` finite floats."""
    malformed = SpecfitError(f"malformed grid {text!r}: use 10,20,30 or START:STOP:STEP")
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            count = (stop - start) / step + 1 if step > 0 else math.nan
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
            count = len(values)
    except ValueError:
        raise malformed from None
    if ":" in text and not (math.isfinite(start) and math.isfinite(count) and stop >= start):
        raise malformed
    if ":" not in text and not (values and all(math.isfinite(v) for v in values)):
        raise malformed
    if count > MAX_GRID_VALUES:
        raise SpecfitError(f"the grid {text!r} has {count:.3g} values; at most {MAX_GRID_VALUES}")
    if ":" in text:
        return [round(start + i * step, 10) for i in range(round(count - 1) + 1)]
    return values


def _seed(text: str) -> int:
    """An argparse type: a whole number in ``[0, 2**32 - 1]``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: use a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {text} is out of range (0 to {MAX_SEED})")
    return value


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["KNOB=VALUE", ...]`` to a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SpecfitError(f"malformed --set {item!r}: use KNOB=VALUE")
        out[key.strip()] = value.strip()
    return out


def _load(args: argparse.Namespace):
    """The signal named on the command line, read with the loading options given there."""
    from specfit.kinds.kind import LoadOptions
    from specfit.kinds.load import load_signal

    resize = args.resize
    if args.signal is None and resize is None:
        resize = DEFAULT_RESIZE
    options = LoadOptions(
        kind=args.kind, resize=resize, max_seconds=args.max_seconds, sample_rate=args.sample_rate,
        max_frames=args.max_frames, frame_step=args.frame_step, allow_open=args.allow_open,
        max_samples=args.max_samples, measure=args.task, projections=args.projections,
        kspace_fraction=args.kspace_fraction, **getattr(args, "config_load", {}),
    )
    if options.frame_step < 1:
        raise SpecfitError(f"--frame-step must be at least 1, got {options.frame_step}")
    return load_signal(args.signal, options)


def _task(args: argparse.Namespace):
    from specfit.kinds.registry import task_for

    return task_for(_load(args), args.shape_target, args.video_spectrum)


def _unique_out(signal_name: str, model: str) -> Path:
    base = Path("runs") / f"{signal_name}-{model}"
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = base.with_name(f"{base.name}-{k}"), k + 1
    return candidate


def cmd_models(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from specfit.models.params import specs
    from specfit.models.registry import models

    registry = models()

    if args.json:
        rows = []
        for e in registry.values():
            knob = None if e.knob is None else {
                "name": e.knob.name, "default": e.knob.default, "grid": list(e.knob.grid)}
            rows.append({"name": e.name, "summary": e.summary, "lr": e.lr, "value_range": e.value_range,
                         "convention": e.convention, "defaults": e.defaults, "knob": knob,
                         "adam_betas": list(e.adam_betas), "adam_eps": e.adam_eps,
                         "selection_overrides": e.selection_overrides, "reference": e.reference,
                         "params": [{**asdict(spec), "kind": spec.kind.__name__}
                                    for spec in specs(e.params).values()]})
        print(json.dumps(rows, indent=2))
        return 0
    for e in registry.values():
        print(f"{e.name:<14} {e.summary}")
        if e.knob:
            g = e.knob.grid
            print(f"{'':<14} knob {e.knob.name} (default {shown(e.knob.default)}); FreSh grid "
                  f"{shown(g[0])}..{shown(g[-1])} "
                  f"({len(g)} values): {e.knob.description}")
        else:
            print(f"{'':<14} no frequency knob (FreSh does not apply)")
        shape = ", ".join(f"{k}={v}" for k, v in e.defaults.items() if not e.knob or k != e.knob.name)
        values = "[-1, 1]" if e.value_range == "signed" else "[0, 1]"
        adam = "" if e.adam_betas == (0.9, 0.999) else f" (Adam betas {e.adam_betas}, eps {e.adam_eps:g})"
        print(f"{'':<14} lr {e.lr:g}{adam}; values in {values}; {shape}")
        if e.selection_overrides:
            print(f"{'':<14} FreSh evaluates spectra with {e.selection_overrides}")
        print(f"{'':<14} convention: {e.convention}; {e.reference}")
    return 0


def cmd_spectrum(args: argparse.Namespace) -> int:
    import torch

    task = _task(args)
    from specfit.config.settings import FitSettings

    spectrum = FitSettings(spectrum=args.spectrum).resolved_spectrum(task.kind)
    target = task.fresh_target("unit", torch.device("cpu"), spectrum, "fit", args.bins)
    measured, values = target.measured, target.values  # CT, MRI, NeRF: the spectrum of the measurements
    band, notes, vector = target.spectrum_vector()  # a clip: the mean of its frames' spectra
    vector = vector.tolist()
    if args.json:
        print(json.dumps({"bins": band.bins, "band": band.to_json(), "spectrum": vector}))
        return 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    edge = f"frequency {band.edge:g} (cycles over the signal)"
    if task.kind == "audio":
        edge = f"{band.edge * task.signal.meta['sample_rate'] / values.shape[1]:.0f} Hz"
    what = f"; {measured.description}" if measured is not None else ""
    print(f"{task.headline()}, {band.bins} bins up to {edge} ({spectrum} spectrum{what})")
    for m, value in enumerate(vector, start=1):
        print(f"{m:4d}  {value:.6f}  {'#' * round(value * 400)}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from specfit.api import select

    grid = parse_grid(args.grid) if args.grid is not None else None
    progress = _ProgressBars(quiet=args.json)
    try:
        selection = select(_load(args), args.model, grid, args.inits, args.bins, seed=args.seed,
                           device=args.device, race=not args.no_race, shape_target=args.shape_target,
                           video_spectrum=args.video_spectrum, spectrum=args.spectrum,
                           objective=args.objective, search=args.search, split=args.split,
                           holdout=args.holdout, progress=progress, **parse_sets(args.set))
    finally:
        progress.close()
    if args.json:
        print(json.dumps(selection.to_json()))
        return 0
    print(f"{'value':>10} {'mean W':>9} {'stderr':>8} {'inits':>5}")
    for row in selection.table:
        mark = "  <- chosen" if row.value == selection.chosen else ""
        if row.inits:
            stderr = "-" if row.w_stderr is None else f"{row.w_stderr:.4f}"
            print(f"{shown(row.value):>10} {row.w_mean:9.4f} {stderr:>8} {row.inits:5d}{mark}")
        else:
            print(f"{shown(row.value):>10} {'-':>9} {'-':>8} {0:5d}  (skipped by the search)")
    print(f"{selection.knob} = {shown(selection.chosen)} ({selection.seconds:.1f} s, "
          f"{selection.spectrum} spectrum, {selection.bins} bins, objective {selection.objective})")
    for note in selection.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


class _Bar:
    """A tqdm bar on stderr, or nothing when stdout carries JSON.

    Its speed and time left are measured from the first unit done on, so that one-time costs
    (building, compiling, the first kernels) do not inflate the first estimates.
    """

    def __init__(self, enabled: bool, desc: str, unit: str, total: int | None = None) -> None:
        self.bar = None
        self.started = False
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                            mininterval=0.5, smoothing=0)

    def update_to(self, done: int, total: int | None = None) -> None:
        if self.bar is None:
            return
        if total is not None:
            self.bar.total = total
        if not self.started and done > 0:  # time from here: the rate excludes the start-up
            self.started = True
            self.bar.initial = done
            self.bar.start_t = self.bar.last_print_t = self.bar._time()
        self.bar.n = done
        self.bar.refresh()

    def postfix(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _settings(args: argparse.Namespace):
    """The fit's settings from the command line."""
    from specfit.config.settings import FitSettings
    from specfit.training.compaction import CompactionPlan
    from specfit.training.loop import FitOptions

    if args.steps is not None:
        steps = args.steps
    elif args.command == "grid":
        steps = GRID_STEPS
    else:
        steps = DEMO_STEPS if args.signal is None else DEFAULT_STEPS
    options = FitOptions(steps=steps, lr=args.lr, schedule=args.schedule, batch_size=args.batch_size,
                         eval_every=args.eval_every, compile=args.compile, seed=args.seed,
                         checkpoint_every=getattr(args, "checkpoint_every", 500))
    compaction = None
    if getattr(args, "prune_to", None) is not None or getattr(args, "densify", 0):
        compaction = CompactionPlan(target_inputs=args.prune_to, densify=args.densify,
                                    ramp_steps=args.ramp_steps, finetune_steps=args.finetune_steps,
                                    **({} if args.prune_alpha is None else {"alpha": args.prune_alpha}))
    settings = FitSettings(
        model=args.model, params={**getattr(args, "config_params", {}), **parse_sets(args.set)},
        fresh=not getattr(args, "no_fresh", False),
        grid=parse_grid(args.grid) if args.grid is not None else None, inits=args.inits, bins=args.bins,
        spectrum=args.spectrum, objective=args.objective, search=args.search, split=args.split,
        holdout=args.holdout, seed=args.seed, device=args.device, fit=options,
        shape_target=args.shape_target, video_spectrum=args.video_spectrum, compaction=compaction,
    )
    settings.check()
    return settings


class _ProgressBars:
    """Shows :class:`~specfit.events.Event` objects as progress bars on stderr (nothing when quiet)."""

    BARS: ClassVar[dict[str, tuple[str, str]]] = {
        "select": ("FreSh", "init"), "train": ("fit", "step"), "compact": ("compact", "step")}

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.phase: object = None
        self.bar = _Bar(False, "", "")

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.phase is not self.phase:
            self.close()
            self.phase = event.phase
            if event.message and event.phase.value in ("select", "train", "compact"):
                print(event.message, file=sys.stderr)
            if event.phase.value == "evaluate":
                print("evaluating the trained model (scores, reconstruction, report figures)",
                      file=sys.stderr)
        if self.bar.bar is None and event.phase.value in self.BARS and event.total is not None:
            self.bar = _Bar(True, *self.BARS[event.phase.value], event.total)  # once its size is known
        if event.record:
            self.bar.postfix(_score_text(event.record))
        else:
            self.bar.update_to(event.done, event.total)

    def status(self, text: str) -> None:
        """A line saying what runs now, for work without a bar (e.g. writing the report)."""
        self.close()
        if not self.quiet:
            print(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _score_text(record: dict) -> str:
    name = "iou" if "iou" in record else "psnr"
    unit, digits = ("", 4) if name == "iou" else (" dB", 2)
    test = record[f"{name}_test"]
    return (f"{name.upper()} train {record[f'{name}_train']:.{digits}f}{unit}"
            + (f", held-out {test:.{digits}f}{unit}" if test is not None else ""))


def _command_line(args: argparse.Namespace) -> str:
    """The command line as typed (recorded in the run's config and report)."""
    import shlex

    return shlex.join(["specfit", *args.argv])


def cmd_fit(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    sources = expand_sources(args.signals)
    if len(sources) > 1:
        return _fit_many(args, sources)
    args.signal = sources[0]
    return _fit_one(args)


def expand_sources(items: list[str]) -> list[str | None]:
    """The signals named on the command line: files as given, folders as the signal files they
    hold (sorted, hidden files skipped); none at all is the bundled image (``[None]``)."""
    from specfit.kinds.registry import suffix_of, supported_suffixes

    if not items:
        return [None]
    suffixes = supported_suffixes()
    sources: list[str | None] = []
    for item in items:
        path = Path(item)
        if not path.is_dir():
            sources.append(item)
            continue
        found = sorted(str(entry) for entry in path.iterdir()
                       if entry.is_file() and not entry.name.startswith(".") and suffix_of(entry) in suffixes)
        if not found:
            raise SpecfitError(f"{item} holds no signal files ({', '.join(suffixes)})")
        sources.extend(found)
    return sources


def _fit_one(args: argparse.Namespace) -> int:
    from specfit.fitting.pipeline import plan_fit, run_plan
    from specfit.runs.checkpoints import FolderCheckpoints
    from specfit.runs.folder import check_writable_parent, refuse_existing, run_lock

    settings = _settings(args)
    plan = plan_fit(_load(args), settings)
    plan.command = _command_line(args)
    task = plan.task
    out = Path(args.out) if args.out else _unique_out(task.name, plan.entry.name)
    refuse_existing(out, args.overwrite)
    check_writable_parent(out)
    if not args.json:
        print(f"fitting {task.headline()} with {plan.entry.name}", file=sys.stderr)
        for note in task.notes:
            print(f"note: {note}", file=sys.stderr)
    progress = _progress(args, out.name)
    with run_lock(out):
        try:
            run = run_plan(plan, progress, FolderCheckpoints(out))
            progress.status(f"writing {out}/ (reconstruction and report)")
            run.save(out)
        finally:
            progress.close()
    return _print_run(args, run, out, task.notes)


def _resume(args: argparse.Namespace) -> int:
    from specfit.api import resume
    from specfit.runs.checkpoints import FolderCheckpoints
    from specfit.runs.folder import run_lock

    out = Path(args.resume)
    if args.signals or args.config:
        raise SpecfitError("--resume continues a run with its own signal and settings; give only --steps, "
                           "--tensorboard or --json with it")
    progress = _progress(args, out.name)
    with run_lock(out):
        try:
            sink = FolderCheckpoints(out, continuing=True)
            run = resume(out, args.steps, progress, sink, _command_line(args))
            progress.status(f"writing {out}/ (reconstruction and report)")
            run.save(out)
        finally:
            progress.close()
    return _print_run(args, run, out, [])


def _progress(args: argparse.Namespace, name: str):
    """Progress bars on stderr (none with --json), and TensorBoard logs with --tensorboard."""
    bars = _ProgressBars(quiet=args.json)
    if args.tensorboard is None:
        return bars
    from specfit.training.tensorboard import TensorBoardLog

    return _Both(bars, TensorBoardLog(Path(args.tensorboard) / name))


class _Both:
    """Progress shown on the terminal and logged for TensorBoard."""

    def __init__(self, bars: _ProgressBars, log) -> None:
        self.bars, self.log = bars, log

    def __call__(self, event) -> None:
        self.bars(event)
        self.log(event)

    def status(self, text: str) -> None:
        self.bars.status(text)

    def close(self) -> None:
        self.bars.close()
        self.log.close()


def _print_run(args: argparse.Namespace, run, out: Path, printed_notes: list[str]) -> int:
    metrics = run.metrics.to_json()
    if args.json:
        print(json.dumps({**{k: v for k, v in metrics.items() if k != "history"}, "out": str(out)}))
        return 0
    for note in metrics["notes"]:
        if note not in printed_notes:  # loading notes were printed before the fit
            print(f"note: {note}", file=sys.stderr)
    if metrics["selection"]:
        sel = metrics["selection"]
        print(f"FreSh chose {sel['knob']} = {shown(sel['chosen'])} in {sel['seconds']:.1f} s "
              f"(default {shown(metrics['default_value'])})")
    print(f"{metrics['summary']}, {metrics['steps']} steps in {metrics['train_seconds']:.1f} s")
    print(f"outputs in {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0


def _fit_many(args: argparse.Namespace, sources: list[str]) -> int:
    """Fit every signal (one run each under --out) and write the summary table."""
    from specfit.fitting.batch import fit_many, summary_rows, write_summary

    settings = _settings(args)
    if args.tensorboard is not None:
        from specfit.training.tensorboard import require_tensorboard

        require_tensorboard()
    parent = Path(args.out) if args.out else Path("runs")
    progress = _ProgressBars(quiet=args.json)
    from specfit.util.runtime import resolve_device

    on_gpu = resolve_device(args.device).type == "cuda"
    together = args.together == "on" or (args.together == "auto" and on_gpu)

    def load(source: str):
        return _load(argparse.Namespace(**{**vars(args), "signal": source}))

    def on_done(index: int, source: str, out: Path, run) -> None:
        if args.tensorboard is not None:  # each run's curves, once it is written
            from specfit.training.tensorboard import TensorBoardLog

            log = TensorBoardLog(Path(args.tensorboard) / out.name)
            for record in run.history:
                log.record(record)
            log.close()
        if not args.json:
            progress.close()
            print(f"[{index + 1}/{len(sources)}] {source} -> {out}/", file=sys.stderr)

    try:
        results = fit_many(sources, load, settings, parent, overwrite=args.overwrite, batched=together,
                           progress=progress, command=_command_line(args), on_done=on_done)
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


def _load_options(args: argparse.Namespace) -> dict:
    """The loading options given on the command line, as :func:`specfit.load_signal` takes them."""
    return {"kind": args.kind, "resize": args.resize, "max_seconds": args.max_seconds,
            "sample_rate": args.sample_rate, "max_frames": args.max_frames, "frame_step": args.frame_step,
            "allow_open": args.allow_open, "max_samples": args.max_samples, "measure": args.task,
            "projections": args.projections, "kspace_fraction": args.kspace_fraction}


def cmd_grid(args: argparse.Namespace) -> int:
    from specfit.bench.grid import grid_search

    settings = _settings(args)
    folder = Path(args.out) if args.out else Path("runs") / f"grid-{args.model}"
    for source in args.signals:  # refuse a bad file before any work
        _load(argparse.Namespace(**{**vars(args), "signal": source}))
    done = 0

    def on_done(task, result, cached) -> None:
        nonlocal done
        done += 1
        if not args.json:
            state = "recorded earlier" if cached else "done"
            print(f"[{done}] {task.key}: {state}", file=sys.stderr)

    summaries = grid_search(args.signals, settings, folder, settings.grid, _load_options(args), args.group,
                            args.workers, args.ray, on_done, batched=not args.sequential)
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


def cmd_bench(args: argparse.Namespace) -> int:
    from specfit.bench.suites import get_suite, run_suite, suite_markdown, write_results_page

    get_suite(args.suite, args.profile)  # a bad name fails before any work
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


def cmd_render(args: argparse.Namespace) -> int:
    from specfit.runs.render import render_run

    result = render_run(Path(args.run_dir), args.size, Path(args.out) if args.out else None, args.device)
    print(f"wrote {result.path} ({result.description})")
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (unless it is empty or the text gives it) and keeps
    the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == [] or default == argparse.SUPPRESS
        if "default" in text or empty or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


FIT_EXAMPLES = _examples(
    "specfit fit                                   # the bundled image, FreSh picks omega_0",
    "specfit fit photo.png --model finer --steps 2000",
    "specfit fit song.wav --max-seconds 5 --set omega_0=3000   # the knob set: no FreSh",
    "specfit fit photos/ --resize 128 --out runs/photos       # every image, one run each",
    "specfit fit --config experiment.toml --steps 500          # options override the file",
    "specfit fit --config runs/photo-siren/config.json         # fit a saved run again",
    "specfit fit --resume runs/photo-siren --steps 4000        # continue from its checkpoint",
)


def build_parser() -> argparse.ArgumentParser:
    from specfit.bench.suites import SUITES
    from specfit.config.settings import DEVICES
    from specfit.models.registry import models
    from specfit.signals.sampling import SPLITS
    from specfit.tasks.base import SHAPE_TARGETS, VIDEO_SPECTRA
    from specfit.training.loop import COMPILE_MODES, SCHEDULES

    model_names = ", ".join(models())
    parser = _Parser(prog="specfit", formatter_class=_HelpFormatter,
                     description="Fit implicit neural representations; choose the embedding frequency "
                     "by FreSh.",
                     epilog=_examples("specfit fit photo.png", "specfit select photo.png --model finer",
                                      "specfit render runs/photo-siren --size 2x", "specfit models",
                                      "specfit COMMAND --help    # options and examples of a command"))
    parser.add_argument("--version", action="version", version=f"specfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def command(name: str, text: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", epilog=examples,
                              formatter_class=_HelpFormatter)

    def load_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("loading the signal")
        g.add_argument("--resize", type=int, default=None, metavar="PIXELS",
                       help="images and video frames: short side in pixels (default for the bundled image: "
                       f"{DEFAULT_RESIZE}; files keep their size); volumes: longest axis")
        g.add_argument("--kind", default=None, choices=("image", "volume"),
                       help="type of a .npy array (default: by its shape)")
        g.add_argument("--max-seconds", type=float, default=None, metavar="S",
                       help="audio: keep the first S seconds")
        g.add_argument("--sample-rate", type=int, default=None, metavar="HZ", help="audio: resample to HZ")
        g.add_argument("--max-frames", type=int, default=None, metavar="N",
                       help="video: keep the first N frames")
        g.add_argument("--frame-step", type=int, default=1, metavar="N", help="video: keep every N-th frame")
        g.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, metavar="N",
                       help="refuse a file that claims more grid samples than N (pixels x frames, voxels, "
                       "audio frames)")
        g.add_argument("--allow-open", action="store_true",
                       help="meshes: accept a mesh that is not watertight (winding-number inside test)")
        g.add_argument("--shape-target", default="occupancy", choices=SHAPE_TARGETS,
                       help="meshes: fit occupancy or signed distance")
        g.add_argument("--video-spectrum", default="frames", choices=VIDEO_SPECTRA,
                       help="video: FreSh compares mean per-frame spectra (frames) or the 3-D spectrum (3d)")
        g.add_argument("--task", default=None, choices=MEASURES,
                       help="fit the signal only through measurements: ct (an image through parallel-beam "
                       "projections) or mri (a volume through part of its 3-D k-space); the signal may "
                       "also be a built-in phantom: shepp-logan, phantom-SEED, phantom3d-SEED")
        g.add_argument("--projections", type=int, default=DEFAULT_PROJECTIONS, metavar="N",
                       help="--task ct: projection angles over 180 degrees")
        g.add_argument("--kspace-fraction", type=float, default=DEFAULT_KSPACE_FRACTION, metavar="F",
                       help="--task mri: share of the k-space coefficients sampled, variable density")

    def signal_options(p: argparse.ArgumentParser) -> None:
        load_options(p)
        p.add_argument("--device", default="auto", choices=DEVICES, help="auto picks CUDA when present")
        p.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, selection and split")

    def fresh_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("FreSh (choosing the knob)")
        g.add_argument("--grid", default=None, help="candidate values: 10,20,30 or START:STOP:STEP "
                       "(default: the model's grid, see `specfit models`)")
        g.add_argument("--inits", type=int, default=10, help="initialisations per candidate value")
        g.add_argument("--bins", type=int, default=None, help="spectrum size (default 64, fewer for a "
                       "narrow band or a small signal)")
        g.add_argument("--spectrum", default=None, choices=SPECTRA,
                       help="FreSh's band: signal (follows the signal's content; the default for audio "
                       "and images) or published (the lowest 64 frequencies, as in the FreSh paper; the "
                       "default for video, volumes and shapes)")
        g.add_argument("--objective", default=None, choices=OBJECTIVES,
                       help="what FreSh's choice serves: fit (the training samples) or generalize "
                       f"(held-out samples); default: {DEFAULT_OBJECTIVE} when samples are held out, "
                       "else fit")
        g.add_argument("--search", default="bracket", choices=SEARCHES,
                       help="bracket (coarse to fine on the U-shaped distance curve) or full (every value)")

    def training_options(p: argparse.ArgumentParser, steps_help: str) -> None:
        p.add_argument("--model", default="siren", metavar="MODEL", help=f"one of {model_names}")
        p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                       help="set a hyperparameter (repeatable); setting the knob skips FreSh")
        g = p.add_argument_group("training")
        g.add_argument("--steps", type=int, default=None, help=steps_help)
        g.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
        g.add_argument("--schedule", default="none", choices=SCHEDULES, help="learning-rate schedule")
        g.add_argument("--batch-size", type=int, default=None, metavar="N",
                       help="random samples per step (default: all, or the signal type's batch)")
        g.add_argument("--eval-every", type=int, default=25, metavar="N", help="evaluate every N steps")
        g.add_argument("--compile", default="auto", choices=COMPILE_MODES,
                       help="torch.compile (auto: for runs of 300 steps or more)")
        g.add_argument("--split", default="holdout", choices=SPLITS,
                       help="samples held out of training: none (all), a random fraction (holdout) or "
                       "odd pixels (lattice)")
        g.add_argument("--holdout", type=float, default=0.1, help="held-out fraction for --split holdout")
        fresh_options(p)
        p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
        signal_options(p)

    fit = command("fit", "choose the knob by FreSh, train, write a run folder", FIT_EXAMPLES)
    fit.add_argument("signals", nargs="*", metavar="SIGNAL",
                     help="image, .npy, .wav, video, NIfTI, mesh or NeRF scene (.npz) file, a folder of "
                     "them, or a built-in phantom (none: the bundled cameraman image)")
    fit.add_argument("--config", default=None, metavar="FILE",
                     help="read the fit from a TOML, YAML or JSON file with the fields of a run's "
                     "config.json (signal.source, load, settings); options given here override it")
    fit.add_argument("--resume", default=None, metavar="RUN",
                     help="continue RUN from its checkpoint to its step count (or --steps)")
    training_options(fit, f"optimiser steps (default {DEFAULT_STEPS}; {DEMO_STEPS} for the bundled image)")
    fit.add_argument("--no-fresh", action="store_true", help="train the knob's default value")
    output = fit.add_argument_group("output")
    output.add_argument("--out", default=None,
                        help="run folder (default: runs/NAME-MODEL, numbered when taken); with several "
                        "signals, the folder that holds their runs and summary.csv (default: runs)")
    output.add_argument("--overwrite", action="store_true",
                        help="replace an existing run in --out (otherwise refused; only a specfit run is "
                        "ever replaced)")
    output.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                        help="save the training state every N steps, and when interrupted (0: only then)")
    output.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="log the training curves for TensorBoard under DIR/RUN_NAME (needs the "
                        "tensorboard extra)")
    output.add_argument("--together", default="auto", choices=("auto", "on", "off"),
                        help="several images of one size: train them as one stacked computation where the "
                        "model allows it (auto: on a GPU; on a CPU it is no faster, so one after another)")
    compaction = fit.add_argument_group("compaction (tuner models)")
    compaction.add_argument("--prune-to", type=int, default=None, metavar="M",
                            help="after training, prune the input frequencies down to M")
    compaction.add_argument("--densify", type=int, default=0, metavar="K",
                            help="after training, add K inputs at twice the strongest frequencies")
    compaction.add_argument("--ramp-steps", type=int, default=500, metavar="N",
                            help="steps of ramped L1 penalty on the weakest inputs before pruning")
    compaction.add_argument("--finetune-steps", type=int, default=500, metavar="N",
                            help="steps after pruning")
    compaction.add_argument("--prune-alpha", type=float, default=None, metavar="A",
                            help="final L1 weight of the ramp on the weakest inputs, next to the mean "
                            "squared error (default 0.01)")
    fit.set_defaults(func=cmd_fit)

    grid = command("grid", "train every value of the knob's grid and compare with FreSh's choice", _examples(
        "specfit grid photo.png --model siren --steps 300",
        "specfit grid a.png b.png --grid 10:100:10 --workers 2 --out runs/grid-siren",
        "specfit grid a.png --ray auto    # on a Ray cluster"))
    grid.add_argument("signals", nargs="+", metavar="SIGNAL", help="signal files (same options for all)")
    training_options(grid, f"optimiser steps per value (default {GRID_STEPS})")
    grid.add_argument("--out", default=None, help="results folder (default: runs/grid-MODEL); "
                      "running the same command again resumes from it")
    grid.add_argument("--workers", type=int, default=1, help="local worker processes")
    grid.add_argument("--group", type=int, default=None,
                      help="values trained per task (default: a signal's whole grid in one task)")
    grid.add_argument("--sequential", action="store_true",
                      help="train one value after another (default: together, where the model allows it)")
    grid.add_argument("--ray", default=None, metavar="ADDRESS",
                      help="run the tasks on a Ray cluster (auto, local or an address)")
    grid.set_defaults(func=cmd_grid)

    bench = command("bench", "run a named reproduction suite (resumes where it stopped)", _examples(
        "specfit bench fresh-images                  # the quick profile, on 2 CPU cores",
        "specfit bench tuner --profile paper         # the published protocol, on a GPU"))
    bench.add_argument("suite", choices=tuple(SUITES), help="the suite")
    bench.add_argument("--profile", default="quick", choices=("quick", "paper"),
                       help="quick (2 CPU cores) or paper (the published protocol, a GPU)")
    bench.add_argument("--data", default="../shared/data",
                       help="folder holding kodak/, natural/, audio/, video/, volume/ and meshes/")
    bench.add_argument("--out", default=None, help="records folder (default: results/suites/SUITE-PROFILE)")
    bench.add_argument("--page", default="docs/results.md",
                       help="results page written from every suite recorded beside --out ('' for none)")
    bench.add_argument("--workers", type=int, default=1, help="local worker processes")
    bench.add_argument("--ray", default=None, metavar="ADDRESS", help="run on a Ray cluster")
    bench.add_argument("--spectrum", default=None, choices=SPECTRA,
                       help="a FreSh variant: re-select on the trained grids with this spectrum")
    bench.add_argument("--objective", default=None, choices=OBJECTIVES, help="a FreSh variant's objective")
    bench.add_argument("--search", default=None, choices=SEARCHES, help="a FreSh variant's search")
    bench.add_argument("--json", action="store_true", help="print the suite's record as JSON")
    bench.set_defaults(func=cmd_bench)

    sel = command("select", "FreSh selection only: print the distance table", _examples(
        "specfit select photo.png                    # SIREN's omega_0",
        "specfit select song.wav --model finer --search full --json"))
    sel.add_argument("signal")
    sel.add_argument("--model", default="siren", metavar="MODEL", help=f"one of {model_names}")
    fresh_options(sel)
    sel.add_argument("--split", default="holdout", choices=SPLITS,
                     help="the split training would use (held-out samples stay out of the target)")
    sel.add_argument("--holdout", type=float, default=0.1, help="held-out fraction for --split holdout")
    sel.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                     help="fix another hyperparameter, e.g. convention=siren")
    sel.add_argument("--no-race", action="store_true", help="give every value all initialisations")
    sel.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    signal_options(sel)
    sel.set_defaults(func=cmd_select)

    spec = command("spectrum", "print a signal's spectrum vector", _examples(
        "specfit spectrum photo.png", "specfit spectrum song.wav --bins 32 --json"))
    spec.add_argument("signal")
    spec.add_argument("--bins", type=int, default=None, help="spectrum size (default 64)")
    spec.add_argument("--spectrum", default=None, choices=SPECTRA,
                      help="signal or published (default: signal for audio and images, published otherwise)")
    spec.add_argument("--json", action="store_true", help="print the vector as JSON on stdout")
    load_options(spec)
    spec.set_defaults(func=cmd_spectrum)

    ren = command("render", "draw a saved run at any resolution", _examples(
        "specfit render runs/photo-siren --size 2x            # twice the signal's size",
        "specfit render runs/photo-siren --size 1920x1080 --out big.png",
        "specfit render runs/bunny-siren --size 512           # a mesh from a 512^3 grid"))
    ren.add_argument("run_dir", metavar="RUN")
    ren.add_argument("--size", default=None,
                     help="images and video WIDTHxHEIGHT; audio: samples; volumes: DxHxW; shapes: grid "
                     "resolution; or a factor of the signal's size, e.g. 2x (default: the signal's; "
                     "shapes 256)")
    ren.add_argument("--out", default=None,
                     help="output file (default: RUN/render-SIZE.png/.wav/.mp4/.npy/.ply)")
    ren.add_argument("--device", default="auto", choices=DEVICES, help="auto picks CUDA when present")
    ren.set_defaults(func=cmd_render)

    mod = command("models", "list models, knobs, defaults and FreSh grids", _examples(
        "specfit models", "specfit models --json"))
    mod.add_argument("--json", action="store_true", help="print the registry as JSON on stdout")
    mod.set_defaults(func=cmd_models)
    parser.commands = {"fit": fit}  # type: ignore[attr-defined]  # for --config (see _parse)
    return parser


@contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """Collect library warnings and log records instead of letting them reach stderr.

    They are printed as ``warning:`` lines after a command that succeeds, and dropped when it
    fails, so that an error stands alone on its line.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    root = logging.getLogger()
    handler = Collect(logging.WARNING)
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield messages
        messages.extend(str(w.message) for w in caught)
    finally:
        root.removeHandler(handler)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's stop) behaves like Ctrl-C: training stops and the run is written."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (Python's, or torch's on CPU or GPU)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate" in text


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; for ``fit --config FILE`` the file's fields become the defaults that the
    options given on the command line override."""
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fit" and args.config is not None:
        from specfit.config.file import read_fit_config

        request = read_fit_config(args.config)
        parser.commands["fit"].set_defaults(**config_defaults(request))
        args = parser.parse_args(argv)
    args.argv = argv
    return args


# Settings of a config file (dotted names) -> the fit command's options (argparse names).
SETTING_OPTIONS = {
    "model": "model", "grid": "grid", "inits": "inits", "bins": "bins", "spectrum": "spectrum",
    "objective": "objective", "search": "search", "split": "split", "holdout": "holdout", "seed": "seed",
    "device": "device", "shape_target": "shape_target", "video_spectrum": "video_spectrum",
    "fit.steps": "steps", "fit.lr": "lr", "fit.schedule": "schedule", "fit.batch_size": "batch_size",
    "fit.eval_every": "eval_every", "fit.compile": "compile", "fit.checkpoint_every": "checkpoint_every",
    "compaction.target_inputs": "prune_to", "compaction.densify": "densify",
    "compaction.ramp_steps": "ramp_steps", "compaction.finetune_steps": "finetune_steps",
    "compaction.alpha": "prune_alpha",
}
LOAD_OPTIONS = {"kind": "kind", "resize": "resize", "max_seconds": "max_seconds",
                "sample_rate": "sample_rate", "max_frames": "max_frames", "frame_step": "frame_step",
                "allow_open": "allow_open",
                "max_samples": "max_samples", "measure": "task", "projections": "projections",
                "kspace_fraction": "kspace_fraction"}


def config_defaults(request) -> dict[str, object]:
    """A :class:`~specfit.config.file.FitRequest` as defaults of the fit command's options."""
    given = request.given
    defaults: dict[str, object] = {
        option: given[name] for name, option in SETTING_OPTIONS.items() if name in given}
    if isinstance(defaults.get("grid"), list):
        defaults["grid"] = ",".join(repr(float(v)) for v in defaults["grid"])
    defaults.update({option: request.load[name] for name, option in LOAD_OPTIONS.items()
                     if name in request.load})
    if "fresh" in given:
        defaults["no_fresh"] = not given["fresh"]
    defaults["config_params"] = dict(request.settings.params)
    defaults["config_load"] = {k: v for k, v in request.load.items() if k not in LOAD_OPTIONS}
    defaults["signals"] = [] if request.source is None else [request.source]
    return defaults


def _run(argv: list[str] | None) -> int:
    try:
        args = _parse(argv)
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except SpecfitError as exc:
        message = str(exc)
        if exc.setting and message.startswith(exc.setting):  # name the option the user typed
            message = "--" + exc.setting.replace("_", "-") + message[len(exc.setting):]
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `specfit models | head`: the reader is gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        message = "out of memory; try a smaller --resize, --batch-size or model"
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, 130 when interrupted)."""
    from specfit.util.runtime import tune_allocator

    tune_allocator()
    with _captured_warnings() as messages, _sigterm_as_interrupt():
        code = _run(argv)
    if code == 130:  # interrupted: a second Ctrl-C must not print a traceback while Python exits
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(number, signal.SIG_IGN)
    if code == 0:
        for message in dict.fromkeys(messages):
            print(f"warning: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
