"""A self-contained HTML report of one run: images, spectra, the FreSh curve, PSNR versus step.

Figures are drawn with matplotlib (Agg) and inlined as base64 PNG, so ``report.html`` is one file
that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
img{max-width:100%}.note{color:#666;font-size:.9em}
"""


def subplots(*args: object, figsize: tuple[float, float], **kwargs: object) -> tuple[Figure, Any]:
    """``matplotlib.pyplot.subplots`` without pyplot: no global figure registry, no backend switch."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(*args, **kwargs)


def figure_uri(figure: Figure) -> str:
    """``figure`` as a data-URI PNG for the self-contained report."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def show_error(figure: Figure, axis: Axes, error: np.ndarray, title: str = "|error|") -> None:
    """Draw a non-negative ``(H, W)`` error map (inferno, from 0 to its maximum) with a colour bar."""
    shown = axis.imshow(error, cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
    axis.set_title(title)
    axis.axis("off")
    figure.colorbar(shown, ax=axis, fraction=0.046)


def show_image(axis: Axes, image: torch.Tensor, title: str) -> None:
    """Draw a ``(C, H, W)`` image in [0, 1] (1 channel grey, 2 grey + alpha, 3-4 colour) without axes."""
    array = image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        axis.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=1)
    elif array.shape[2] == 2:
        axis.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=1, alpha=array[:, :, 1])
    else:
        axis.imshow(array)
    axis.set_title(title)
    axis.axis("off")


def spectra_figure(spectra: dict) -> str:
    """Target spectrum against the untrained model's mean spectrum at the chosen and default values."""
    figure, axis = subplots(figsize=(7, 4))
    bins = np.arange(1, len(spectra["target"]) + 1)
    knob = spectra["knob"]
    axis.semilogy(bins, spectra["target"], "k-", lw=2, label="target")
    axis.semilogy(bins, spectra["chosen"], "-", label=f"init, {knob}={spectra['chosen_value']} (chosen)")
    axis.semilogy(bins, spectra["default"], "--", label=f"init, {knob}={spectra['default_value']} (default)")
    axis.set_xlabel("spectrum bin (L1 frequency radius)")
    axis.set_ylabel("normalised magnitude")
    axis.legend()
    axis.grid(alpha=0.3)
    return figure_uri(figure)


def curve_figure(spectra: dict) -> str:
    """Mean Wasserstein distance versus knob value, with standard errors."""
    table = [row for row in spectra["table"] if row["w_mean"] is not None]  # skipped values have none
    values = [row["value"] for row in table]
    figure, axis = subplots(figsize=(7, 4))
    axis.errorbar(values, [r["w_mean"] for r in table], yerr=[r["w_stderr"] or 0.0 for r in table],
                  fmt="o-", ms=4, capsize=2)
    axis.axvline(spectra["chosen_value"], color="C1", label=f"chosen {spectra['chosen_value']}")
    if isinstance(spectra["default_value"], int | float):
        axis.axvline(spectra["default_value"], color="C2", ls="--",
                     label=f"default {spectra['default_value']}")
    positive = [v for v in values if isinstance(v, int | float) and v > 0]
    if len(positive) == len(values) and max(positive) / min(positive) > 50:
        axis.set_xscale("log")  # log-spaced grids, e.g. a hash grid's N_max
    axis.set_xlabel(spectra["knob"])
    axis.set_ylabel("mean W (target vs init)")
    axis.legend()
    axis.grid(alpha=0.3)
    return figure_uri(figure)


def history_figure(history: list[dict]) -> str:
    """The training score (PSNR, or IoU for shapes) on all, training and held-out samples versus step."""
    figure, axis = subplots(figsize=(7, 4))
    steps = [h["step"] for h in history]
    name = "iou" if "iou" in history[0] else "psnr"
    for key, label in ((name, "all"), (f"{name}_train", "training"), (f"{name}_test", "held-out")):
        points = [h[key] for h in history]
        if any(p is not None for p in points):
            axis.plot(steps, points, "o-" if len(steps) < 30 else "-", ms=3, label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("IoU" if name == "iou" else "PSNR (dB)")
    axis.legend()
    axis.grid(alpha=0.3)
    return figure_uri(figure)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


# Metrics shown in the report's table when present, with their labels.
_METRIC_ROWS = (
    ("ssim", "SSIM"),
    ("psnr_grad", "gradient PSNR (dB, all pixels)"),
    ("psnr_frames_min", "worst frame PSNR (dB)"),
    ("iou_uniform", "IoU, uniform points"),
    ("iou_boundary", "IoU, boundary points"),
    ("chamfer", "Chamfer distance (original units)"),
)


def write_report(
    path: Path, metrics: dict, config: dict, spectra: dict | None, views: list[tuple[str, str]],
) -> None:
    """Write ``report.html``: a table of metrics, then ``views`` (title, data-URI PNG) from the
    signal's task, the FreSh spectra and curve, and the training curve."""
    rows = [
        ("signal", config["signal"].get("kind", "image")),
        ("model", metrics["model"]),
        ("knob", f"{metrics['knob']} = {metrics['value']} ({metrics['mode']})"
         if metrics["knob"] else "none"),
    ]
    if metrics["selection"]:
        rows.append(("FreSh time (s)", _fmt(metrics["selection"]["seconds"])))
    if metrics.get("psnr") is not None:
        rows.append(("PSNR all / training / held-out (dB)",
                     " / ".join(_fmt(metrics[k]) if metrics[k] is not None else "-"
                                for k in ("psnr", "psnr_train", "psnr_test"))))
    rows += [(label, _fmt(metrics[key])) for key, label in _METRIC_ROWS if metrics.get(key) is not None]
    compaction = metrics.get("compaction")
    if compaction:
        before, after = compaction["before"], compaction["after"]
        rows += [
            ("compaction: input frequencies", f"{before['inputs']} -> {after['inputs']}"),
            ("compaction: parameters (trainable + frozen frequencies)",
             f"{before['with_frequencies']} -> {after['with_frequencies']}"),
            ("compaction: PSNR training / held-out (dB)",
             f"{_fmt(before['psnr_train'])} / {_fmt(before['psnr_test'])} -> "
             f"{_fmt(after['psnr_train'])} / {_fmt(after['psnr_test'])}"),
        ]
    rows += [
        ("steps (best at)", f"{metrics['steps']} ({metrics['best_step']})"),
        ("training time (s)", _fmt(metrics["train_seconds"])),
        ("parameters", metrics["params"]),
        ("device", metrics["device"]),
    ]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>specfit report</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>specfit: {html.escape(config['signal']['name'])} with {html.escape(metrics['model'])}</h1>",
        "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
        + "</table>",
    ]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in metrics["notes"]]
    for title, uri in views:
        parts += [f"<h2>{html.escape(title)}</h2>", f"<img src='{uri}' alt='{html.escape(title)}'>"]
    if spectra is not None:
        parts += [
            "<h2>Spectra at initialisation</h2>",
            f"<img src='{spectra_figure(spectra)}' alt='spectra'>",
            "<h2>FreSh: distance versus knob</h2>",
            f"<img src='{curve_figure(spectra)}' alt='FreSh curve'>",
        ]
    if metrics["history"]:
        parts += ["<h2>Training</h2>", f"<img src='{history_figure(metrics['history'])}' alt='training'>"]
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts))
