"""The spectrum of an integer sine network (:class:`~specfit.models.tuner.IntegerSineNet`), trained or not.

Frequencies are integer vectors ``k`` in cycles per period ``p`` along each axis: the term
``cos(2 pi k . x / p + phase)``. A real sinusoid at ``k`` is the same as one at ``-k``, so every
frequency is reported once, by its half-space representative (first non-zero coordinate positive);
the mean (``k = 0``) is left out.

- :func:`generable_frequencies`: what the first hidden layer can generate up to a given order, with
  the TUNER paper's per-term amplitude bound ``prod_j (c_j / 2)^|k_j| / |k_j|!``.
- :func:`measured_spectrum`: the amplitudes the network actually has, by an FFT over one period.
- :func:`plot_sine_spectrum`: both in one figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from specfit.errors import SpecfitError
from specfit.figures import subplots
from specfit.models.evaluate import predict
from specfit.models.tuner import IntegerSineNet, in_half_space
from specfit.util.files import staged_file

MAX_ORDER = 2
FLOOR = 1e-12  # amplitudes below this are not plotted (log scale)


def column_bounds(model: IntegerSineNet, nominal: bool = False) -> torch.Tensor:
    """``(m,)`` bound ``c_j`` of column ``j`` of ``omega_0 W_eff`` (the first hidden layer).

    ``nominal=False`` (the default): measured, ``max_i |omega_0 W_eff[i, j]|`` of the current weights
    (a trained network rarely sits at its bounds, and the uniform baseline has none). ``nominal=True``:
    the configured bound (``column_bounds``; ``|c|`` for the learned variant; ``inf`` when unbounded).
    """
    if nominal:
        if model.bound == "learned":
            return model.hidden[0].c.detach().abs()
        return model.column_bounds.detach().clone()
    return (model.omega_0 * model.first_hidden_weight().detach()).abs().amax(0)


def generable_frequencies(
    model: IntegerSineNet, max_order: int = MAX_ORDER, nominal: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer combinations ``sum_j k_j K_j`` of the input frequencies of order ``sum_j |k_j| <= max_order``.

    Order 1: ``K_j`` with bound ``c_j / 2``; order 2: ``K_i +- K_j`` (``i != j``) with bound
    ``c_i c_j / 4`` and ``2 K_j`` with bound ``c_j^2 / 8``. The bound is the TUNER paper's bound on one
    hidden neuron's coefficient ``prod_j J_{k_j}(omega_0 W_ij)``, with ``c_j`` from
    :func:`column_bounds` (the largest over the neurons); the real amplitude of one neuron is at
    most twice it, and distinct combinations landing on the same ``k`` are merged by taking the
    largest bound (not summed). ``max_order`` is 1 or 2.

    Returns:
        ``frequencies`` ``(n, d)`` long, half-space representatives, distinct, sorted; ``bound`` ``(n,)``.
    """
    if max_order not in (1, 2):
        raise SpecfitError(f"max_order must be 1 or 2, got {max_order}")
    rows = model.frequencies.detach().round().long()
    half = column_bounds(model, nominal).to(torch.float64) / 2
    parts, bounds = [rows], [half]
    if max_order == 2:
        i, j = torch.triu_indices(len(rows), len(rows), offset=1, device=rows.device)
        pair = half[i] * half[j]
        parts += [rows[i] + rows[j], rows[i] - rows[j], 2 * rows]
        bounds += [pair, pair, half**2 / 2]
    vectors, values = torch.cat(parts), torch.cat(bounds)
    vectors = torch.where(in_half_space(vectors).unsqueeze(1), vectors, -vectors)
    nonzero = vectors.abs().sum(1) > 0
    vectors, values = vectors[nonzero], values[nonzero]
    unique, inverse = torch.unique(vectors, dim=0, return_inverse=True)
    merged = torch.full((len(unique),), -math.inf, dtype=values.dtype, device=values.device)
    merged = merged.scatter_reduce(0, inverse, values, reduce="amax")
    return unique, merged


def default_samples(model: IntegerSineNet) -> int:
    """Samples per period: ``4 k_max + 2`` with ``k_max`` the larger of the band limit and the largest
    ``||K_j||_inf``, so every order-2 frequency (up to ``2 k_max``) is below the Nyquist bin."""
    top = int(model.frequencies.abs().max()) if model.frequencies.numel() else 0
    return 4 * max(model.band_limit, top) + 2


def spectrum_grid(
    model: IntegerSineNet, samples_per_period: int | None = None, channel: int = 0
) -> np.ndarray:
    """Amplitude ``|F_k| * 2 / N^d`` on the full ``(N,) * d`` FFT lattice (unshifted: index ``i`` is
    frequency ``i`` for ``i < N/2``, ``i - N`` above), output ``channel`` over one period per axis.

    Exact for integer ``k`` below the Nyquist bin because ``f`` is ``p``-periodic; the value at
    ``k = 0`` is twice the mean. Evaluates ``N^d`` points (mind ``d = 3``).
    """
    dims = model.frequencies.shape[1]
    if dims not in (1, 2, 3):
        raise SpecfitError(f"the spectrum view supports 1 to 3 input dimensions, got {dims}")
    n = default_samples(model) if samples_per_period is None else int(samples_per_period)
    if n < 2:
        raise SpecfitError(f"samples_per_period must be at least 2, got {n}")
    if not 0 <= channel < model.out_features:
        raise SpecfitError(f"channel must be in [0, {model.out_features}), got {channel}")
    device = model.frequencies.device
    axis = torch.arange(n, dtype=torch.float64, device=device) * (model.period / n)
    mesh = torch.meshgrid(*([axis] * dims), indexing="ij")
    coords = torch.stack([g.reshape(-1) for g in mesh], dim=1).to(model.frequencies.dtype)
    values = predict(model, coords)[:, channel].double().cpu().numpy().reshape((n,) * dims)
    return np.abs(np.fft.fftn(values)) * (2.0 / n**dims)


def _lattice(n: int, dims: int) -> torch.Tensor:
    """Integer frequency of every FFT bin, ``(n^d, d)`` in the FFT's row-major order."""
    freq = torch.from_numpy(np.round(np.fft.fftfreq(n) * n).astype(np.int64))
    mesh = torch.meshgrid(*([freq] * dims), indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=1)


def measured_spectrum(
    model: IntegerSineNet, samples_per_period: int | None = None, channel: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's own amplitudes: FFT of output ``channel`` (default the first) over one period.

    ``N = samples_per_period`` samples per axis (default :func:`default_samples`, which must exceed
    twice the highest frequency with noticeable amplitude, else it aliases). Amplitude of the real
    sinusoid at ``k`` is ``|F_k| * 2 / N^d``.

    Returns:
        ``frequencies`` ``(n, d)`` long (half-space, ``0 < |k_i| < N/2``, Nyquist bins dropped) and
        ``amplitude`` ``(n,)`` float64, in FFT order.
    """
    amplitude = spectrum_grid(model, samples_per_period, channel)
    n, dims = amplitude.shape[0], amplitude.ndim
    lattice = _lattice(n, dims)
    keep = in_half_space(lattice) & (lattice.abs() < n / 2).all(1)
    return lattice[keep], torch.from_numpy(amplitude.reshape(-1))[keep]


def sine_spectrum_figure(
    model: IntegerSineNet, max_order: int = MAX_ORDER, trained: bool | None = None,
    samples_per_period: int | None = None, channel: int = 0,
) -> Figure:
    """The spectrum view: measured amplitudes and order-``max_order`` bounds against ``||k||`` (log scale),
    the band limit as a vertical line; for ``d = 2`` also the log-amplitude on the ``(k_0, k_1)``
    lattice with the input frequencies marked.

    The bounds are drawn in output units: the per-neuron bound of :func:`generable_frequencies`
    times ``2 sum_i |a_i|``, ``a`` the last layer's weights of ``channel`` (valid for one hidden layer;
    a guide otherwise). ``trained`` (if known) goes into the title.
    """
    frequencies, amplitude = measured_spectrum(model, samples_per_period, channel)
    generable, bound = (t.cpu() for t in generable_frequencies(model, max_order))
    scale = 2.0 * float(model.last.weight.detach()[channel].abs().sum())
    dims = frequencies.shape[1]
    panels = 2 if dims == 2 else 1
    figure, axes = subplots(1, panels, squeeze=False, figsize=(5.5 * panels, 4.2))
    ax = axes[0, 0]
    shown = amplitude > FLOOR
    ax.scatter(frequencies[shown].double().norm(dim=1), amplitude[shown], s=6, alpha=0.6, label="measured")
    finite = torch.isfinite(bound) & (bound * scale > FLOOR)
    ax.scatter(generable[finite].double().norm(dim=1), (bound * scale)[finite], s=14, marker="x",
               alpha=0.5, label=f"order <= {max_order} bound")
    ax.axvline(model.band_limit, color="k", linestyle="--", linewidth=1,
               label=f"band limit B = {model.band_limit}")
    ax.set_yscale("log")
    ax.set_xlabel("||k|| (cycles per period)")
    ax.set_ylabel(f"amplitude (channel {channel})")
    ax.legend(fontsize=8)
    state = {True: " (trained)", False: " (untrained)", None: ""}[trained]
    ax.set_title(f"integer sine network spectrum{state}")
    if dims == 2:
        grid = np.fft.fftshift(spectrum_grid(model, samples_per_period, channel))
        half = grid.shape[0] // 2
        extent = (-half - 0.5, grid.shape[1] - half - 0.5, -half - 0.5, grid.shape[0] - half - 0.5)
        image = axes[0, 1].imshow(np.log10(np.maximum(grid, FLOOR)), extent=extent, origin="lower",
                                  cmap="magma")
        rows = model.frequencies.detach().cpu()
        axes[0, 1].scatter(rows[:, 1], rows[:, 0], s=8, facecolors="none", edgecolors="cyan", linewidths=0.6,
                           label="input frequencies")
        axes[0, 1].set_xlabel("k_1 (axis 1)")
        axes[0, 1].set_ylabel("k_0 (axis 0)")
        axes[0, 1].set_title("log10 amplitude")
        axes[0, 1].legend(fontsize=8, loc="upper right")
        figure.colorbar(image, ax=axes[0, 1])
    figure.tight_layout()
    return figure


def plot_sine_spectrum(
    model: IntegerSineNet, path: Path, max_order: int = MAX_ORDER, trained: bool | None = None,
    samples_per_period: int | None = None, channel: int = 0,
) -> None:
    """Write :func:`sine_spectrum_figure` to ``path`` as a PNG (atomically)."""
    figure = sine_spectrum_figure(model, max_order, trained, samples_per_period, channel)
    with staged_file(Path(path)) as temp:
        figure.savefig(temp, format="png", dpi=110)
