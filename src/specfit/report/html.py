"""A self-contained HTML report of one run: results, the signal type's views, FreSh, training and
provenance.

Figures are drawn with matplotlib (Agg) and inlined as base64 PNG, sounds as base64 WAV and the 3-D
view of a shape as a small script with its mesh inlined, so ``report.html`` is one file that opens
anywhere, offline. Every figure carries a one-line reading guide: what its axes are and what a good
fit looks like.
"""

from __future__ import annotations

import html
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from specfit.errors import SpecfitError
from specfit.figures import View, figure_uri, subplots
from specfit.kinds.kind import KIND_SETTINGS
from specfit.kinds.registry import get_kind

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}th{font-weight:600;white-space:nowrap}
img{max-width:100%}figure{margin:.6em 0 0}.note{color:#666;font-size:.9em;margin:.3em 0}
.guide{color:#444;font-size:.92em;margin:.35em 0 0;padding:.3em .6em;background:#f6f7f9;
border-left:3px solid #9ab}.guide b{color:#333}
.lead{color:#555;margin:.2em 0 1em}nav{font-size:.9em;color:#555}nav a{color:#2a5d9f;margin-right:.9em}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
.cmd{background:#f4f4f4;padding:.4em .6em;display:block;white-space:pre-wrap;overflow-wrap:anywhere}
details summary{cursor:pointer;color:#2a5d9f;margin:.5em 0}
audio{width:420px;max-width:100%;vertical-align:middle}.players th,.players td{vertical-align:middle}
.kv{columns:2 16em;column-gap:2em;font-size:.95em}.kv div{break-inside:avoid}.kv .k{color:#555}
"""

# A view a task or a model contributes: a figure (data-URI PNG) or HTML, with its reading guide.


# Reading guides for views given as plain ``(title, data-URI PNG)`` pairs (e.g. by a model's registry
# entry), by title.
_GUIDES = {
    "Spectrum of the network": (
        "left: amplitude of each integer frequency k of the trained network's output (log scale) against "
        "||k|| in cycles per period; crosses mark the most the network can generate there, the dashed line "
        "its band limit; for images the right panel maps log amplitude over (k_1, k_0) with the input "
        "frequencies circled. Good: the energy sits where the signal has detail, with no stray peaks "
        "beyond the band limit."),
}
_GENERIC_GUIDE = ("A view contributed by the model: compare the panels as their titles say; axes are "
                  "labelled on the figure.")


# --- sound ---------------------------------------------------------------------------------------


# --- FreSh ----------------------------------------------------------------------------------------

def _spectrum_x(spectra: dict) -> tuple[np.ndarray, str]:
    """The spectra plot's x values (the bins' upper edges) and label: physical units when known."""
    bins = np.arange(1, len(spectra["target"]) + 1, dtype=np.float64)
    axis = spectra.get("frequency_axis")
    if axis and axis.get("scale"):
        return bins * float(axis["scale"]), str(axis["label"])
    return bins, "spectrum bin (L1 frequency radius)"


def spectra_figure(spectra: dict) -> str:
    """:func:`spectra_plot` as a data-URI PNG."""
    return figure_uri(spectra_plot(spectra))


def spectra_plot(spectra: dict) -> Figure:
    """Target spectrum against the untrained model's mean spectrum at the chosen and default values,
    against frequency in physical units when the spectra say how (``frequency_axis``), else bins."""
    figure, axis = subplots(figsize=(7.5, 4))
    x, label = _spectrum_x(spectra)
    knob = spectra["knob"]
    axis.semilogy(x, spectra["target"], "k-", lw=2, label="target")
    axis.semilogy(x, spectra["chosen"], "-", color="C0",
                  label=f"untrained model, {knob} = {_num(spectra['chosen_value'])} (chosen)")
    axis.semilogy(x, spectra["default"], "--", color="C1",
                  label=f"untrained model, {knob} = {_num(spectra['default_value'])} (default)")
    axis.set_xlabel(label)
    axis.set_ylabel("share of spectral magnitude per bin")
    axis.set_xlim(0, x[-1] * 1.01)
    axis.legend(fontsize=9)
    axis.grid(alpha=0.3)
    return figure


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _chosen_row(spectra: dict) -> dict | None:
    """The table's row of the chosen value, when the search evaluated it."""
    return next((row for row in spectra["table"]
                 if row["value"] == spectra["chosen_value"] and row["w_mean"] is not None), None)


def _outcome(row: dict, best: dict | None, chosen: object) -> str:
    """What the search made of one candidate: ``"chosen"``, ``"tied"`` (its mean W within one
    standard error of the chosen value's, either one's error), ``"worse"``, ``"once"`` (evaluated
    with one initialisation while the search narrowed the grid) or ``"skipped"``."""
    if row["w_mean"] is None or not row["inits"]:
        return "skipped"
    if row["value"] == chosen:
        return "chosen"
    if row["inits"] < 2 or best is None or best["w_mean"] is None:
        return "once"
    error = max(best["w_stderr"] or 0.0, row["w_stderr"] or 0.0)
    return "tied" if row["w_mean"] - best["w_mean"] <= error else "worse"


def _values(rows: list[dict]) -> str:
    """``"120"``, ``"120 and 130"``, ``"10, 60 and 80"``."""
    names = [_num(row["value"]) for row in rows]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _w(row: dict) -> str:
    error = "" if row["w_stderr"] is None else f" ± {row['w_stderr']:.2g}"
    count = row["inits"]
    return f"mean W {row['w_mean']:.4g}{error} over {count} initialisation{'s' if count != 1 else ''}"


def choice_summary(spectra: dict, by_probes: bool = False) -> tuple[str, str]:
    """Why FreSh's choice won, from its table: a short headline for the figure (``"omega_0 = 110
    chosen; 120 tied within one standard error"``) and a paragraph (HTML) for above it.

    A value is tied with the chosen one when their mean distances differ by at most one standard
    error (the larger of the two): the search's tie rule (:mod:`specfit.fresh.search`), which sets
    such a value aside early because either choice is as good. ``by_probes``: the probes (short
    trainings of FreSh's best values) made the choice, not the least distance.
    """
    knob, chosen = spectra["knob"], spectra["chosen_value"]
    best = _chosen_row(spectra)
    by_outcome: dict[str, list[dict]] = {}
    for row in spectra["table"]:
        by_outcome.setdefault(_outcome(row, best, chosen), []).append(row)
    tied, worse = by_outcome.get("tied", []), by_outcome.get("worse", [])
    once, skipped = by_outcome.get("once", []), by_outcome.get("skipped", [])
    head = f"{knob} = {_num(chosen)} chosen" + (" by the probes" if by_probes else "")
    if best is None:
        return head, f"<b>{html.escape(head)}</b> (FreSh's search did not evaluate this value)."
    if tied:
        headline = f"{head}; {_values(tied)} tied within one standard error"
    elif worse:
        headline = f"{head}; every other value raced is more than one standard error worse"
    else:
        headline = head
    why = ("the best score of the short training runs below" if by_probes else
           "the least mean distance W among the values the search kept to the end")
    parts = [f"<b>{html.escape(head)}</b>: {why}; {html.escape(_w(best))}."]
    for row in tied:
        early = row["inits"] < best["inits"]
        aside = f"set aside after {row['inits']} initialisations, " if early else ""
        lower = (" its mean is lower, but on fewer initialisations, and"
                 if early and row["w_mean"] < best["w_mean"] else "")
        rest = "; the search spent no more initialisations on it" if early else ""
        parts.append(f"{html.escape(_num(row['value']))} is tied with it ({aside}{html.escape(_w(row))}):"
                     f"{lower} the two means differ by less than one standard error, so either value is as "
                     f"good a choice{rest}.")
    if worse:
        parts.append(f"Worse by more than one standard error: {html.escape(_values(worse))}.")
    if once:
        parts.append(f"Looked at with one initialisation while the search narrowed the grid: "
                     f"{html.escape(_values(once))}.")
    if skipped:
        parts.append(f"Not evaluated (away from the minimum): {len(skipped)} "
                     f"value{'s' if len(skipped) != 1 else ''}.")
    return headline, " ".join(parts)


def curve_figure(spectra: dict, by_probes: bool = False) -> str:
    """:func:`curve_plot` as a data-URI PNG."""
    return figure_uri(curve_plot(spectra, by_probes))


def curve_plot(spectra: dict, by_probes: bool = False) -> Figure:
    """Mean Wasserstein distance versus knob value, with standard errors, under the headline of
    :func:`choice_summary` (why the chosen value won).

    Values evaluated with every initialisation are filled blue points and the chosen one an orange
    star; candidates dropped early by the race (fewer initialisations) are hollow grey markers, one
    legend entry per initialisation count; values the search never evaluated (0 initialisations) are
    grey ticks on the bottom axis.
    """
    table = spectra["table"]
    evaluated = [row for row in table if row["w_mean"] is not None and row["inits"]]
    skipped = [row for row in table if row["w_mean"] is None or not row["inits"]]
    chosen, default = spectra["chosen_value"], spectra["default_value"]
    full = spectra.get("inits") or max((row["inits"] for row in evaluated), default=0)
    numeric = all(_numeric(row["value"]) for row in table)
    index = {str(row["value"]): i for i, row in enumerate(table)}

    def x(value: object) -> float:
        return float(value) if numeric else float(index.get(str(value), -1))

    def points(rows: list[dict]) -> tuple[list[float], list[float], list[float]]:
        return ([x(r["value"]) for r in rows], [r["w_mean"] for r in rows],
                [r["w_stderr"] or 0.0 for r in rows])

    figure, axis = subplots(figsize=(7.0, 4.2))
    if evaluated:  # the curve's shape, through every evaluated value
        xs, ys, _ = points(evaluated)
        axis.plot(xs, ys, "-", color="0.75", lw=1, zorder=1)
    is_chosen = [row for row in evaluated if row["value"] == chosen]
    kept = [row for row in evaluated if row["inits"] >= full and row["value"] != chosen]
    if kept:
        axis.errorbar(*points(kept), fmt="o", ms=6, capsize=3, color="C0", zorder=3,
                      label=f"evaluated with all {full} initialisations")
    if is_chosen:
        xs, ys, es = points(is_chosen)
        axis.errorbar(xs, ys, yerr=es, fmt="*", ms=13, capsize=3, color="C1", mec="k", mew=0.6, zorder=5,
                      label=f"chosen {_num(chosen)} ({is_chosen[0]['inits']} initialisations)")
    markers = "sD^v<>ph"
    dropped = sorted({row["inits"] for row in evaluated if row["inits"] < full and row["value"] != chosen},
                     reverse=True)
    for number, count in enumerate(dropped):
        rows = [row for row in evaluated if row["inits"] == count and row["value"] != chosen]
        axis.errorbar(*points(rows), fmt=markers[number % len(markers)], ms=6, capsize=2, mfc="white",
                      mec="0.4", color="0.55", ecolor="0.65", zorder=2,
                      label="looked at once (1 initialisation)" if count == 1 else
                      f"set aside after {count} initialisations")
    if skipped:
        axis.plot([x(r["value"]) for r in skipped], [0.04] * len(skipped), "|", color="0.45", ms=12, mew=1.5,
                  clip_on=False, transform=axis.get_xaxis_transform(), zorder=4,
                  label=f"not evaluated ({len(skipped)} value{'s' if len(skipped) != 1 else ''} "
                        "the search skipped)")
    if (numeric and _numeric(default)) or str(default) in index:
        axis.axvline(x(default), color="C2", ls="--", lw=1.2, label=f"default {_num(default)}")
    values = [row["value"] for row in table]
    positive = [v for v in values if _numeric(v) and v > 0]
    if numeric and len(positive) == len(values) and max(positive) / min(positive) > 50:
        axis.set_xscale("log")  # log-spaced grids, e.g. a hash grid's N_max or audio's omega_0
    if not numeric:
        axis.set_xticks(range(len(table)), [str(v) for v in values], rotation=45)
    axis.set_xlabel(f"{spectra['knob']} (candidate values)")
    axis.set_ylabel("mean W, target vs untrained spectra")
    axis.set_title(choice_summary(spectra, by_probes)[0], loc="left", fontsize=10.5, fontweight="bold")
    axis.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axis.grid(alpha=0.3)
    return figure


def heatmap_figure(spectra: dict) -> str:
    """:func:`heatmap_plot` as a data-URI PNG."""
    return figure_uri(heatmap_plot(spectra))


def heatmap_plot(spectra: dict) -> Figure:
    """Mean Wasserstein distance of every pair of a two-knob search (``spectra["table_2d"]``): one
    row per value of the second knob, one column per value of the first, in grid order. Pairs the
    search skipped are left blank (hatched); the chosen pair is a star, the default pair a ring."""
    table = spectra["table_2d"]
    means = np.array([[np.nan if w is None else w for w in row] for row in table["w_mean"]], dtype=float)
    rows, columns = table["rows"], table["columns"]
    figure, axis = subplots(figsize=(max(5.0, 0.45 * len(columns) + 2.5), max(2.6, 0.45 * len(rows) + 1.6)))
    # hatching behind the grid shows through where a pair has no mean
    axis.add_patch(Rectangle((-0.5, -0.5), len(columns), len(rows), facecolor="0.92", edgecolor="0.7",
                             hatch="//", lw=0, zorder=0))
    shown = axis.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto", origin="lower",
                        interpolation="nearest", zorder=1)
    figure.colorbar(shown, ax=axis, label="mean W (lower is closer)", fraction=0.05, pad=0.02)

    def position(values: list, value: object) -> int | None:
        return next((i for i, v in enumerate(values) if v == value), None)

    marks = [(spectra["chosen_value"], spectra["second_chosen"], "*", 15, "C1", "chosen"),
             (spectra["default_value"], spectra.get("second_default"), "o", 11, "none", "default")]
    for first, second, marker, size, face, label in marks:
        x, y = position(columns, first), position(rows, second)
        if x is not None and y is not None:
            axis.plot(x, y, marker, ms=size, mfc=face, mec="k" if face != "none" else "C3", mew=1.6, zorder=3,
                      label=f"{label} ({spectra['knob']} {first}, {spectra['second_knob']} {second})")
    axis.set_xticks(range(len(columns)), [str(v) for v in columns], rotation=45)
    axis.set_yticks(range(len(rows)), [str(v) for v in rows])
    axis.set_xlabel(f"{spectra['knob']} (first knob)")
    axis.set_ylabel(f"{spectra['second_knob']} (second knob)")
    axis.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(0.0, -0.28), frameon=False, ncol=2)
    return figure


def _by_value(curves: list[dict]) -> list[dict]:
    """The probes' curves in increasing knob value (as proposed for a non-numeric knob)."""
    if all(_numeric(curve["value"]) for curve in curves):
        return sorted(curves, key=lambda curve: curve["value"])
    return curves


def probes_figure(probes: dict) -> str:
    """:func:`probes_plot` as a data-URI PNG."""
    return figure_uri(probes_plot(probes))


def probes_plot(probes: dict) -> Figure:
    """The probes' curves: the objective's score against optimiser steps for every candidate they
    trained, rung ends as dotted lines, the winner thick with a star at its last point; a candidate
    set aside at a rung ends there (a hollow circle)."""
    figure, axis = subplots(figsize=(7.5, 4.2))
    knob, chosen = probes["knob"], probes["chosen"]
    last_rung = max(len(curve["rung_scores"]) for curve in probes["curves"])
    for end in probes["rungs"][:last_rung]:
        axis.axvline(end, color="0.6", ls=":", lw=1)
    for number, curve in enumerate(_by_value(probes["curves"])):
        steps = curve["steps"]
        scores = [math.nan if score is None else score for score in curve["scores"]]
        won = curve["value"] == chosen
        fresh = curve["value"] == probes.get("fresh_chosen")
        tags = [tag for tag, yes in (("chosen", won), ("FreSh's spectra", fresh)) if yes]
        label = f"{knob} = {_num(curve['value'])}" + (f" ({', '.join(tags)})" if tags else "")
        colour = "C1" if won else f"C{(number + 2) % 10}"
        axis.plot(steps, scores, "-", color=colour, lw=2.6 if won else 1.2, marker=".", ms=5, label=label,
                  zorder=4 if won else 2)
        if steps:
            axis.plot(steps[-1], scores[-1], "*" if won else "o", ms=14 if won else 7, color=colour,
                      mfc=colour if won else "white", mec="k" if won else colour, zorder=5)
    axis.set_xlabel("optimiser steps of the probe")
    validation = probes.get("on") == "validation"
    what = "validation part of the training samples" if validation else "training samples"
    axis.set_ylabel(f"{str(probes.get('score', 'psnr')).upper()} on the {what}")
    axis.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axis.grid(alpha=0.3)
    return figure


def history_figure(history: list[dict]) -> str:
    """The training score (PSNR, or IoU for shapes) on all, training and held-out samples versus step."""
    figure, axis = subplots(figsize=(7.5, 4))
    steps = [h["step"] for h in history]
    name = "iou" if "iou" in history[0] else "psnr"
    for key, label in ((name, "all"), (f"{name}_train", "training"), (f"{name}_test", "held-out")):
        points = [h.get(key) for h in history]
        if any(p is not None for p in points):
            axis.plot(steps, [math.nan if p is None else p for p in points], "o-" if len(steps) < 30 else "-",
                      ms=3, label=label)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("IoU" if name == "iou" else "PSNR (dB)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    axis.grid(alpha=0.3)
    return figure_uri(figure)


def _training_view(history: list[dict], fit: dict) -> View:
    """The training curve, or, for a run with one evaluation only (shorter than one evaluation
    interval), a sentence and that evaluation's scores: one point is no curve."""
    if len(history) > 1:
        return View("Training", history_figure(history), _history_guide(history))
    only = history[0]
    name = "iou" if "iou" in only else "psnr"
    every = fit.get("eval_every")
    interval = f" of {every} steps" if every else ""
    cells = [(label, _num(only[key]) if only.get(key) is not None else "-")
             for key, label in ((name, "all"), (f"{name}_train", "training"), (f"{name}_test", "held-out"))]
    unit = "IoU" if name == "iou" else "PSNR (dB)"
    head = "".join(f"<th>{unit}, {label}</th>" for label, _ in cells)
    values = "".join(f"<td>{value}</td>" for _, value in cells)
    table = f"<table><tr><th>step</th>{head}</tr><tr><td>{only['step']}</td>{values}</tr></table>"
    guide = (f"<b>How to read:</b> this run was evaluated once, at step {only['step']}: it is shorter than "
             f"one evaluation interval{interval}, so there is no training curve to draw. Train for more "
             "steps, or evaluate more often (<code>--eval-every</code>), to see one.")
    return View("Training", None, guide, extra=table)


def _spectra_guide(spectra: dict) -> str:
    axis = spectra.get("frequency_axis")
    what = (f"x: {axis['label']}, each point the upper edge of a bin" if axis else
            "x: spectrum bin (the DFT's L1 frequency radius; the physical scale was not recorded)")
    return (f"<b>How to read:</b> {html.escape(what)}; y: the share of the spectrum's magnitude in that bin "
            "(log scale; each curve sums to 1). Black is the signal, the others untrained models at two "
            f"{html.escape(spectra['knob'])} values. Good: the chosen curve follows the black one across "
            "the band; a curve far below it at high frequencies starts too smooth, far above too noisy.")


def spectra_notes(spectra: dict) -> str:
    """What the spectra plot's shape owes to FreSh's band rather than to the signal (plain text; empty
    without a recorded band): the axis ends at the band edge, and bins that span a fractional
    number of integer frequency radii hold alternately ``floor`` and ``ceil`` of them, which
    draws a regular sawtooth in every curve."""
    band = spectra.get("band") or {}
    if not band.get("bins"):
        return ""
    x, _ = _spectrum_x(spectra)
    axis = spectra.get("frequency_axis")
    where = (f"{x[-1]:.4g} {'Hz' if axis.get('unit') == 'Hz' else 'cycles'} ({band['bins']} bins)" if axis
             else f"bin {band['bins']}")
    notes = [f"The axis ends at the band edge, {where}: FreSh compares the spectra only up to there."]
    width = float(band.get("width") or 1.0)
    if width > 1 and abs(width - round(width)) > 1e-6:
        low, high = math.floor(width), math.ceil(width)
        notes.append(f"Each bin spans {width:.3g} integer frequency radii, so bins hold {low} or {high} "
                     "of them in turn: the regular sawtooth in every curve comes from that, not from the "
                     "signal.")
    return " ".join(notes)


def _curve_guide(spectra: dict) -> str:
    knob = html.escape(spectra["knob"])
    return (f"<b>How to read:</b> x: candidate {knob} values; y: mean Wasserstein distance between the "
            "signal's spectrum and untrained models' spectra (lower is closer), bars one standard error. "
            "The star is the chosen value, filled blue points were evaluated with every initialisation, "
            "hollow grey ones were set aside early by the search (worse, or tied, after the "
            "initialisations the legend gives), so their means are rougher; grey ticks at the "
            "bottom are values never evaluated. Good: a clear dip at the chosen value, inside the grid "
            "rather than at its edge.")


def _heatmap_guide(spectra: dict) -> str:
    knob, second = html.escape(spectra["knob"]), html.escape(spectra["second_knob"])
    return (f"<b>How to read:</b> x: candidate {knob} values; y: candidate {second} values; colour: mean "
            "Wasserstein distance between the signal's spectrum and the untrained models' spectra for that "
            "pair (darker is lower, closer); hatched cells are pairs the search skipped. For each "
            f"{second} value the search of {knob} ran on its own, so each row is one curve like the one "
            "below. The star is the chosen pair (the least distance), the ring the default pair. Good: a "
            f"clear dark valley with the star inside the grid; rows that look alike mean {second} "
            "hardly changes the untrained spectra.")


def _table_2d(spectra: dict) -> str:
    """The distances of every pair as a collapsible table: rows the second knob, columns the first."""
    table = spectra["table_2d"]
    head = "".join(f"<th>{_fmt(value)}</th>" for value in table["columns"])
    rows = []
    for second, means, errors, inits in zip(table["rows"], table["w_mean"], table["w_stderr"], table["inits"],
                                            strict=True):
        cells = []
        for first, mean, error, count in zip(table["columns"], means, errors, inits, strict=True):
            chosen = (first, second) == (spectra["chosen_value"], spectra["second_chosen"])
            text = "-" if mean is None else f"{mean:.4g}" + ("" if error is None else f" ± {error:.2g}")
            cells.append(f"<td>{'<b>' if chosen else ''}{text} ({count}){'</b>' if chosen else ''}</td>")
        rows.append(f"<tr><th>{_fmt(second)}</th>{''.join(cells)}</tr>")
    corner = f"{html.escape(spectra['second_knob'])} \\ {html.escape(spectra['knob'])}"
    return ("<details><summary>FreSh's table: mean W ± standard error (initialisations) of every pair, "
            f"the chosen one in bold</summary><table><tr><th>{corner}</th>{head}</tr>" + "".join(rows)
            + "</table></details>")


def _probes_guide(probes: dict) -> str:
    knob = html.escape(probes["knob"])
    score = html.escape(str(probes.get("score", "psnr")).upper())
    on = "a validation part of the training samples (never the held-out ones)" \
        if probes.get("on") == "validation" else "the training samples"
    return (f"<b>How to read:</b> x: optimiser steps of each probe; y: {score} on {on}, what the fit's "
            f"objective ({html.escape(str(probes.get('objective')))}) compares. Each line is one {knob} "
            "value FreSh's spectra ranked among the best, trained briefly from the fit's own initial "
            "weights; dotted lines are the ends of the rungs, where the better half went on from where it "
            "was and the others stopped (hollow circles). The thick line with the star is the value then "
            "trained in full. Good: the winner leads clearly at the last rung; lines that cross late mean "
            "the short probes could not tell those values apart.")


def _probes_table(probes: dict) -> str:
    """The probes as a collapsible table: each candidate's score at the end of every rung."""
    rungs = probes["rungs"]
    head = "".join(f"<th>after {end} steps</th>" for end in rungs)
    rows = []
    for curve in _by_value(probes["curves"]):
        cells = [_fmt(score) if score is not None else "-" for score in curve["rung_scores"]]
        cells += ["-"] * (len(rungs) - len(cells))
        mark = " (chosen)" if curve["value"] == probes["chosen"] else ""
        rows.append(f"<tr><td>{_fmt(curve['value'])}{mark}</td>" + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    cost = (f"{probes['steps']} network-steps in {_num(probes['seconds'])} s, "
            f"{'stacked' if probes.get('stacked') else 'one network after another'}")
    return (f"<details><summary>The probes' table: every candidate ({html.escape(cost)})</summary><table>"
            f"<tr><th>{html.escape(probes['knob'])}</th>{head}</tr>" + "".join(rows) + "</table></details>")


def _history_guide(history: list[dict]) -> str:
    if "iou" in history[0]:
        return ("<b>How to read:</b> x: optimiser step; y: intersection over union of the predicted and true "
                "inside on the training points and on held-out points (1 is perfect). Good: rising and "
                "levelling off near 1, held-out close to training.")
    return ("<b>How to read:</b> x: optimiser step; y: PSNR in dB (higher is better; +3 dB halves the "
            "squared error) on all, training and held-out samples. Good: still rising or level at the end; "
            "held-out far below training means the model fits the samples but not between them.")


def _fresh_table(spectra: dict) -> str:
    """The FreSh candidates as a collapsible table, with each one's fate in the search."""
    full, chosen = spectra.get("inits"), spectra["chosen_value"]
    best = _chosen_row(spectra)
    fates = {"skipped": "not evaluated (skipped by the search)", "chosen": "chosen",
             "once": "looked at once while the search narrowed the grid",
             "tied": f"tied with {_num(chosen)} within one standard error",
             "worse": f"worse than {_num(chosen)} by more than one standard error"}
    rows = []
    for row in spectra["table"]:
        outcome = _outcome(row, best, chosen)
        fate = fates[outcome]
        if outcome in ("tied", "worse") and full and row["inits"] < full:
            fate += f" (set aside after {row['inits']})"
        mean = "-" if row["w_mean"] is None else f"{row['w_mean']:.4g}"
        stderr = "-" if row["w_stderr"] is None else f"{row['w_stderr']:.2g}"
        rows.append(f"<tr><td>{_fmt(row['value'])}</td><td>{mean}</td><td>{stderr}</td><td>{row['inits']}"
                    f"</td><td>{html.escape(fate)}</td></tr>")
    head = (f"<tr><th>{html.escape(spectra['knob'])}</th><th>mean W</th><th>std. error</th>"
            "<th>initialisations</th><th>outcome</th></tr>")
    return ("<details><summary>FreSh's table: every candidate</summary><table>" + head + "".join(rows)
            + "</table></details>")


# --- results and provenance --------------------------------------------------------------------------

def _num(value: object) -> str:
    """A number for a table: 4 significant digits for floats."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt(value: object) -> str:
    return html.escape(_num(value))


def _inline(value: object) -> str:
    """A setting's value, compact: mappings as ``key = value`` pairs, lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) if value else "-"
    if isinstance(value, list | tuple):
        return ", ".join(_inline(v) for v in value) if value else "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(rows: list[tuple[str, str]]) -> str:
    """A two-column table of ``(label, HTML value)``."""
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


# Settings of FitSettings with their labels (others are shown under their own names).
_SETTING_LABELS = {
    "model": "model", "params": "hyperparameters set by the user", "fresh": "FreSh on",
    "grid": "FreSh grid", "inits": "FreSh initialisations per value", "bins": "spectrum bins",
    "spectrum": "spectrum band", "objective": "FreSh objective", "search": "FreSh search",
    "split": "split", "holdout": "held-out fraction", "seed": "seed", "device": "device asked for",
    "shape_target": "shape target", "video_spectrum": "video spectrum", "compaction": "compaction",
}
_FIT_LABELS = {
    "steps": "steps", "lr": "learning rate", "schedule": "learning-rate schedule", "batch_size": "batch size",
    "eval_every": "evaluate every (steps)", "compile": "torch.compile",
}


# FitSettings that only FreSh reads: left out of the provenance of a run without FreSh.
_FRESH_SETTINGS = ("grid", "inits", "bins", "spectrum", "objective", "search", "two_knobs")


def _kind_options(kind: object) -> frozenset[str] | None:
    """The options and settings that apply to signals of ``kind`` (``None``: all, or unknown)."""
    try:
        return get_kind(str(kind)).options if kind else None
    except SpecfitError:  # a kind from a plugin that is not installed here
        return None


def _grid_text(values: list) -> str:
    """A grid compactly: ``"10 to 200 in steps of 10 (20 values)"`` when evenly spaced."""
    if len(values) > 3 and all(_numeric(v) for v in values):
        steps = {round(b - a, 9) for a, b in pairwise(values)}
        if len(steps) == 1:
            return (f"{_num(values[0])} to {_num(values[-1])} in steps of {_num(steps.pop())} "
                    f"({len(values)} values)")
    return ", ".join(_num(v) for v in values)


def _fresh_used(selection: dict) -> dict[str, str]:
    """What FreSh used where the user left a setting to its default: the grid, the bins, the band
    and the objective, from a run's saved selection."""
    used = {}
    if selection.get("table"):
        used["grid"] = _grid_text([row["value"] for row in selection["table"]])
    if selection.get("bins"):
        used["bins"] = str(selection["bins"])
    band = selection.get("band") or {}
    if selection.get("spectrum"):
        edge = f" up to {band['edge']:.4g} cycles over the signal" if band.get("edge") else ""
        bins = f", {band['bins']} bins{edge}" if band.get("bins") else ""
        used["spectrum"] = f"{selection['spectrum']}{bins}"
    if selection.get("objective"):
        used["objective"] = str(selection["objective"])
    return used


def provenance_rows(config: dict, metrics: dict) -> list[tuple[str, str]]:
    """``(label, HTML value)`` rows of how the run was made: command line, date, seed, model and
    every hyperparameter, the user's settings, the signal and how it was loaded, versions and
    hardware. Entries an older run lacks are left out, or said to be unrecorded."""
    rows: list[tuple[str, str]] = []
    if "command" in config:
        command = config["command"]
        rows.append(("command line", f"<code class='cmd'>{html.escape(str(command))}</code>" if command
                     else "fitted from Python (no command line)"))
    else:
        rows.append(("command line", "not recorded (a run from an older specfit)"))
    if config.get("created"):
        rows.append(("date", html.escape(str(config["created"]).replace("T", " "))))
    settings = config.get("settings") or {}
    if "seed" in settings:
        seed, fit_seed = settings["seed"], (settings.get("fit") or {}).get("seed")
        extra = f" (training options' seed {fit_seed})" if fit_seed not in (None, seed) else ""
        rows.append(("seed", html.escape(f"{seed}{extra}")))
    model = config.get("model") or metrics.get("model")
    if model:
        rows.append(("model", html.escape(str(model))))
    if config.get("params"):
        rows.append(("hyperparameters (all, as trained)", html.escape(_inline(config["params"]))))
    details = {name: config[name] for name in ("in_features", "out_features", "value_range", "convention",
                                               "coordinates") if config.get(name) not in (None, "")}
    if details:
        rows.append(("model inputs and outputs", html.escape(_inline(details))))
    applies = _kind_options((config.get("signal") or {}).get("kind"))
    if settings:
        used = _fresh_used(metrics.get("selection") or {}) if settings.get("fresh", True) else {}

        def shown(key: str, value: object) -> str:  # None: what the signal type or model uses
            if value is None:
                return used.get(key) or ("none" if key == "compaction" else "default")
            return "none" if value in ({}, []) else _inline(value)

        def kept(key: str) -> bool:
            if key == "fit" or (applies is not None and key in KIND_SETTINGS and key not in applies):
                return False
            return settings.get("fresh", True) or key not in _FRESH_SETTINGS

        user = [(_SETTING_LABELS.get(k, k.replace("_", " ")), shown(k, v))
                for k, v in settings.items() if kept(k)]
        user += [(_FIT_LABELS.get(k, k.replace("_", " ")), shown(k, v))
                 for k, v in (settings.get("fit") or {}).items() if k != "seed"]
        cells = "".join(f"<div><span class='k'>{html.escape(k)}:</span> {html.escape(v)}</div>"
                        for k, v in user)
        rows.append(("settings", f"<div class='kv'>{cells}</div>"))
    signal = config.get("signal") or {}
    if signal:
        shown = {k: v for k, v in signal.items() if k != "meta" and v is not None}
        shown.update({k: v for k, v in (signal.get("meta") or {}).items() if not isinstance(v, dict | list)})
        rows.append(("signal", html.escape(_inline(shown))))
    load = {k: v for k, v in (config.get("load") or {}).items()
            if v not in (None, False) and (applies is None or k in applies)}
    if load:
        rows.append(("loaded with", html.escape(_inline(load))))
    versions = config.get("versions") or {}
    if versions:
        rows.append(("versions", html.escape(", ".join(f"{k} {v}" for k, v in versions.items()))))
    hardware = config.get("hardware")
    if isinstance(hardware, dict) and hardware:
        labels = {"device": "device", "cpu": "CPU", "cores": "cores", "threads": "threads"}
        parts = [f"{label}: {_inline(hardware[key])}" for key, label in labels.items()
                 if hardware.get(key) not in (None, "")]
        parts.append(f"GPU: {_inline(hardware['gpu'])}" if hardware.get("gpu") else "GPU: none")
        parts += [f"{k}: {_inline(v)}" for k, v in hardware.items() if k not in (*labels, "gpu")]
        rows.append(("hardware", "<br>".join(html.escape(p) for p in parts)))
    elif metrics.get("device"):
        rows.append(("hardware", html.escape(f"device {metrics['device']} (no details recorded)")))
    training = []
    if metrics.get("steps_per_second"):
        training.append(f"{metrics['steps_per_second']:.3g} steps/s")
    if "compiled" in metrics:
        training.append("compiled" if metrics["compiled"] else "not compiled")
    if metrics.get("interrupted"):
        training.append("interrupted by the user (the best model so far was kept)")
    if training:
        rows.append(("training run", html.escape(", ".join(training))))
    return rows


_MODES = {"fresh": "chosen by FreSh", "set": "set by the user", "default": "the model's default"}

# Metrics shown in the report's table when present, with their labels.
_METRIC_ROWS = (
    ("ssim", "SSIM"),
    ("psnr_grad", "gradient PSNR (dB, all pixels)"),
    ("psnr_frames_min", "worst frame PSNR (dB)"),
    ("iou_uniform", "IoU, uniform points"),
    ("iou_boundary", "IoU, boundary points"),
    ("chamfer", "Chamfer distance (original units)"),
    ("psnr_fbp", "filtered back-projection PSNR (dB)"),
    ("psnr_zero_filled", "zero-filled inverse DFT PSNR (dB)"),
)


def _triple(metrics: dict, keys: tuple[str, str, str]) -> str:
    return " / ".join(_num(metrics[k]) if metrics.get(k) is not None else "-" for k in keys)


def result_rows(metrics: dict, config: dict) -> list[tuple[str, str]]:
    """``(label, text)`` rows of what the fit reached."""
    knob = metrics.get("knob")
    mode = _MODES.get(metrics["mode"], metrics["mode"])
    if (metrics.get("selection") or {}).get("probes"):
        mode = "chosen by FreSh-guided probes"
    rows = [
        ("signal", str((config.get("signal") or {}).get("kind", "image"))),
        ("model", str(metrics["model"])),
        (f"knob ({knob})" if knob else "knob", f"{_num(metrics['value'])} ({mode}; default "
                                               f"{_num(metrics.get('default_value'))})" if knob else
         "none: this model has no frequency setting for FreSh to choose"),
    ]
    if (metrics.get("selection") or {}).get("second_knob"):
        selection = metrics["selection"]
        second = selection["second_knob"]
        rows.append((f"second knob ({second})",
                     f"{second} = {selection['second_chosen']} (chosen by FreSh with {knob})"))
    if metrics.get("selection"):
        rows.append(("FreSh time (s)", _num(metrics["selection"]["seconds"])))
        probes = metrics["selection"].get("probes")
        if probes:
            rows.append(("probes: time (s), network-steps, FreSh's spectra chose",
                         f"{_num(probes['seconds'])}, {probes['steps']}, {_num(probes['fresh_chosen'])}"))
    if metrics.get("psnr") is not None:
        rows.append(("PSNR all / training / held-out (dB)",
                     _triple(metrics, ("psnr", "psnr_train", "psnr_test"))))
    if metrics.get("snr") is not None:
        rows.append(("waveform SNR all / training / held-out (dB)",
                     _triple(metrics, ("snr", "snr_train", "snr_test"))))
    rows += [(label, _num(metrics[key])) for key, label in _METRIC_ROWS if metrics.get(key) is not None]
    compaction = metrics.get("compaction")
    if compaction:
        before, after = compaction["before"], compaction["after"]
        rows += [
            ("compaction: input frequencies", f"{before['inputs']} -> {after['inputs']}"),
            ("compaction: parameters (trainable + frozen frequencies)",
             f"{before['with_frequencies']} -> {after['with_frequencies']}"),
            ("compaction: PSNR training / held-out (dB)",
             f"{_num(before['psnr_train'])} / {_num(before['psnr_test'])} -> "
             f"{_num(after['psnr_train'])} / {_num(after['psnr_test'])}"),
        ]
    split = metrics.get("split") or {}
    if split.get("split") and "train_samples" in split:
        rows.append(("samples: training / held-out",
                     f"{split['train_samples']} / {split.get('test_samples', 0)} (split {split['split']})"))
    rows += [
        ("steps (best at)", f"{metrics['steps']} ({metrics['best_step']})"),
        ("training time (s)", _num(metrics["train_seconds"])),
        ("parameters", str(metrics["params"])),
        ("device", str(metrics["device"])),
    ]
    return rows


def _as_view(view: View | tuple[str, str]) -> View:
    if isinstance(view, View):
        return view
    title, uri = view
    return View(title, uri, "<b>How to read:</b> " + html.escape(_GUIDES.get(title, _GENERIC_GUIDE)))


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _section(view: View) -> list[str]:
    parts = [f"<h2 id='{_anchor(view.title)}'>{html.escape(view.title)}</h2>"]
    if view.lead:
        parts.append(view.lead)
    if view.image is not None:
        parts.append(f"<figure><img src='{view.image}' alt='{html.escape(view.title)}'>"
                     f"<figcaption class='guide'>{view.guide}</figcaption></figure>")
    if view.extra:
        parts.append(view.extra)
    if view.image is None:
        parts.append(f"<p class='guide'>{view.guide}</p>")
    return parts


def write_report(
    path: Path, metrics: dict, config: dict, spectra: dict | None,
    views: list[View | tuple[str, str]],
) -> None:
    """Write ``report.html``: a table of results, then ``views`` from the signal's task (a
    :class:`View`, or a ``(title, data-URI PNG)`` pair), the FreSh spectra and curve (and the heat
    map of both knobs' distances when FreSh chose two), the probes'
    curves (``search="probes"``), the training curve and the run's provenance. Every figure has a
    reading guide under it."""
    sections = [_as_view(view) for view in views]
    if spectra is not None:
        notes = spectra_notes(spectra)
        sections.append(View("Spectra at initialisation", spectra_figure(spectra), _spectra_guide(spectra),
                             lead=f"<p class='lead'>{html.escape(notes)}</p>" if notes else ""))
        if spectra.get("table_2d"):
            sections.append(View(f"FreSh: distance over {spectra['knob']} and {spectra['second_knob']}",
                                 heatmap_figure(spectra),
                                 _heatmap_guide(spectra), extra=_table_2d(spectra)))
        at = f" at {spectra['second_knob']} = {spectra['second_chosen']}" if spectra.get("table_2d") else ""
        by_probes = bool((metrics.get("selection") or {}).get("probes"))
        sections.append(View(f"FreSh: distance versus {spectra['knob']}{at}",
                             curve_figure(spectra, by_probes), _curve_guide(spectra),
                             extra=_fresh_table(spectra),
                             lead=f"<p class='lead'>{choice_summary(spectra, by_probes)[1]}</p>"))
    probes = (metrics.get("selection") or {}).get("probes")
    if probes:
        sections.append(View("Probes: score versus training steps", probes_figure(probes),
                             _probes_guide(probes), extra=_probes_table(probes)))
    if metrics.get("history"):
        history = metrics["history"]
        sections.append(_training_view(history, (config.get("settings") or {}).get("fit") or {}))
    signal = config.get("signal") or {}
    title = f"specfit: {signal.get('name', 'signal')} with {metrics['model']}"
    links = [("results", "Results"), *((_anchor(v.title), v.title) for v in sections),
             ("provenance", "Provenance")]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if metrics.get("summary"):
        parts.append(f"<p class='lead'>{html.escape(metrics['summary'])}</p>")
    parts.append("<nav>" + "".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in links) + "</nav>")
    parts += ["<h2 id='results'>Results</h2>",
              _table([(k, html.escape(v)) for k, v in result_rows(metrics, config)])]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in metrics.get("notes") or []]
    for section in sections:
        parts += _section(section)
    parts += ["<h2 id='provenance'>Provenance: how this run was made</h2>",
              _table(provenance_rows(config, metrics))]
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts))


