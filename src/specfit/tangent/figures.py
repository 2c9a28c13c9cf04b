"""Figures of kernels, spectral bias and the Fourier-feature experiments (matplotlib, no pyplot).

Every function returns a :class:`matplotlib.figure.Figure`; :func:`specfit.figures.figure_uri`
inlines one in a page, ``figure.savefig`` writes a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from specfit.figures import subplots
from specfit.tangent.analysis import NTKResult
from specfit.tangent.spectral_bias import SpectralBiasCurves

SHOWN_PSNR = 60  # PSNRs drawn no higher: an exactly fitted training set reads 120 dB
# One kernel as drawn: label -> (offsets, profile, frequencies, spectrum)
Profile = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def result_figure(result: NTKResult) -> Figure:
    """Four panels of one model's NTK: the kernel matrix, its profile through the centre, the
    profile's spectrum and the eigenvalues."""
    figure, axes = subplots(1, 4, figsize=(15, 3.4))
    shown = axes[0].imshow(result.kernel, cmap="viridis")
    figure.colorbar(shown, ax=axes[0], fraction=0.046)
    axes[0].set_title(f"K ({result.size ** result.dims} points, {result.dims}-D)")
    axes[0].set_xlabel("point j")
    axes[0].set_ylabel("point i")
    axes[1].plot(result.offsets, result.profile, color="C0")
    axes[1].set_title("profile k(v_c, v_c + d e_1)")
    axes[1].set_xlabel("offset d")
    axes[2].semilogy(result.frequencies, np.maximum(result.spectrum, 1e-8), color="C1")
    axes[2].set_title("spectrum of the profile")
    axes[2].set_xlabel("cycles over [-1, 1]")
    values = np.maximum(result.eigenvalues, 1e-12 * max(result.eigenvalues[0], 1e-300))
    axes[3].semilogy(np.arange(1, values.size + 1), values, color="C2")
    axes[3].set_title(f"eigenvalues (stationarity {result.stationarity:.3f})")
    axes[3].set_xlabel("index, largest first")
    figure.tight_layout()
    return figure


def profiles_figure(sets: Mapping[str, Mapping[str, Profile]]) -> Figure:
    """One row per set of kernels (titled by its key): the profiles (each normalised to 1 at the
    centre) and their spectra, one line per kernel."""
    figure, axes = subplots(len(sets), 2, figsize=(10, 3.0 * len(sets)), squeeze=False)
    for (left, right), (title, profiles) in zip(axes, sets.items(), strict=True):
        for index, (label, (offsets, line, frequencies, spectrum)) in enumerate(profiles.items()):
            centre = line[len(line) // 2]
            left.plot(offsets, line / centre if centre else line, color=f"C{index}", label=label, lw=1.2)
            right.semilogy(frequencies, np.maximum(spectrum, 1e-6), color=f"C{index}", lw=1.2)
        left.set_title(f"{title}: profile k(v_c, v_c + d) / k(v_c, v_c)", fontsize=9)
        right.set_title(f"{title}: spectrum of the profile (max 1)", fontsize=9)
        right.set_ylim(1e-6, 2)
        left.legend(fontsize=7, loc="upper right")
    axes[-1][0].set_xlabel("offset d")
    axes[-1][1].set_xlabel("cycles over [-1, 1]")
    figure.tight_layout()
    return figure


def spectral_bias_figure(curves: Sequence[SpectralBiasCurves]) -> Figure:
    """One panel per model: error at each target frequency over steps (solid: training; dashed: the
    NTK's prediction), log-log."""
    columns = min(4, len(curves))
    rows = -(-len(curves) // columns)
    figure, axes = subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
    for axis, curve in zip(axes.flat, curves, strict=False):
        steps = np.maximum(curve.steps, 0.5)
        for index, frequency in enumerate(curve.frequencies):
            colour = f"C{index}"
            axis.loglog(steps, np.maximum(curve.trained[:, index], 1e-4), color=colour, lw=1.3,
                        label=f"{frequency:g}")
            axis.loglog(steps, np.maximum(curve.predicted[:, index], 1e-4), color=colour, lw=1, ls="--")
        axis.set_title(curve.label, fontsize=9)
        axis.set_ylim(1e-3, 3)
        axis.set_xlabel("step")
    for axis in axes.flat[len(curves):]:
        axis.axis("off")
    axes.flat[0].set_ylabel("relative error at frequency")
    axes.flat[0].legend(title="cycles", fontsize=6, title_fontsize=7, loc="lower left")
    figure.tight_layout()
    return figure


def sweeps_figure(sigma_rows: Mapping[str, Sequence[dict]], depth_table: Mapping[str, object],
                  trainable: Sequence[dict]) -> Figure:
    """The training experiments: PSNR against sigma (1-D and 2-D, train and held out), held-out
    PSNR over depth x features, fixed against trainable B."""
    figure, axes = subplots(1, 4, figsize=(16, 3.4))
    for axis, (label, rows) in zip(axes[:2], sigma_rows.items(), strict=True):
        sigma = [row["sigma"] for row in rows]
        train = [min(row["psnr_train"], SHOWN_PSNR) for row in rows]
        axis.plot(sigma, train, "o-", label=f"train (shown up to {SHOWN_PSNR} dB)", color="C0")
        axis.plot(sigma, [row["psnr_test"] for row in rows], "s-", label="held out", color="C3")
        axis.set_xscale("log")
        axis.set_xlabel("sigma")
        axis.set_ylabel("PSNR (dB)")
        axis.set_title(f"sigma sweep, {label}", fontsize=9)
        axis.legend(fontsize=7)
    table = np.asarray(depth_table["psnr_test"], dtype=np.float64)
    shown = axes[2].imshow(table, cmap="magma", origin="lower", aspect="auto")
    figure.colorbar(shown, ax=axes[2], fraction=0.046, label="held-out PSNR")
    axes[2].set_xticks(range(len(depth_table["features"])), [str(f) for f in depth_table["features"]])
    axes[2].set_yticks(range(len(depth_table["depths"])), [str(d) for d in depth_table["depths"]])
    axes[2].set_xlabel("Fourier features m")
    axes[2].set_ylabel("hidden layers")
    axes[2].set_title("depth vs features (1-D)", fontsize=9)
    for (i, j), value in np.ndenumerate(table):
        axes[2].text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=6, color="w")
    labels = [row["label"] for row in trainable]
    x = np.arange(len(labels))
    axes[3].bar(x - 0.2, [row["psnr_train"] for row in trainable], 0.4, label="train", color="C0")
    axes[3].bar(x + 0.2, [row["psnr_test"] for row in trainable], 0.4, label="held out", color="C3")
    axes[3].set_xticks(x, labels, fontsize=7)
    axes[3].set_ylabel("PSNR (dB)")
    low = min(min(row["psnr_test"] for row in trainable), min(row["psnr_train"] for row in trainable))
    axes[3].set_ylim(low - 3, None)
    axes[3].set_title("fixed vs trainable B", fontsize=9)
    axes[3].legend(fontsize=7)
    figure.tight_layout()
    return figure


def selection_figure(rows: Sequence[dict]) -> Figure:
    """FreSh's chosen value against the value whose NTK spectrum best covers the signal's, per model
    (log axes; the diagonal is agreement)."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    figure, axes = subplots(1, len(models), figsize=(3.2 * len(models), 3.1), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        mine = [row for row in rows if row["model"] == model]
        grid = mine[0]["grid"]
        for split, marker in (("tuning", "o"), ("reporting", "s")):
            chosen = [row for row in mine if row["split"] == split]
            axis.scatter([row["fresh"] for row in chosen], [row["ntk"] for row in chosen], marker=marker,
                         label=split, alpha=0.7)
            axis.scatter([row["fresh"] for row in chosen if row.get("best") is not None],
                         [row["best"] for row in chosen if row.get("best") is not None], marker="x",
                         color="k", s=18, label="grid best" if split == "tuning" else None)
        axis.plot([grid[0], grid[-1]], [grid[0], grid[-1]], color="0.6", lw=0.8)
        if grid[0] > 0:  # a grid from 0 (FINER's bias range) stays linear
            axis.set_xscale("log")
            axis.set_yscale("log")
        axis.set_title(f"{model} ({mine[0]['knob']})", fontsize=9)
        axis.set_xlabel("FreSh's choice")
    axes[0][0].set_ylabel("NTK choice (o, s); grid best (x)")
    axes[0][0].legend(fontsize=6)
    figure.tight_layout()
    return figure
