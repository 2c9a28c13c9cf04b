"""WINNER's noise scales from a target's spectral centroid.

WINNER (Chandravamsi et al., "Spectral Bottleneck in Sinusoidal Representation Networks: Noise is
All You Need", arXiv 2509.09719) adds Gaussian noise to the uniformly drawn weights of a SIREN's
first two layers (SIREN's ``winner_s0`` and ``winner_s1``, :mod:`specfit.models.sine`), with the
scales ``s_0`` and ``s_1`` set from the spectral centroid of the target signal: the brighter the
signal, the more noise. :func:`winner_scales` computes them from a signal as training sees it, so
that a suite or a user can set them per signal, as FreSh sets omega_0.

The rule, with the constants of the authors' published code (the paper fits them empirically):

1. Each channel is flattened in row-major order (the order of the sampling grid) to one sequence of
   ``N`` values; its centroid is ``sum_k f_k |X_k| / sum_k |X_k|`` over its one-sided DFT ``X``
   (``k = 0 .. N // 2``, the mean included), ``f_k = k / N`` cycles per sample; a channel whose
   DFT is zero has centroid 0.
2. The normalised centroid ``c`` is twice the mean over the ``C`` channels (1 = the Nyquist
   frequency), and the rule reads ``x = c / C**2``: the authors' code divides the channel mean by
   ``C`` once when it computes the centroid and once more in the rule.
3. One spatial axis (audio): ``s_0 = 3500 (1 - exp(-7 x))``, ``s_1 = 3 x``. Two spatial axes
   (images): ``s_0 = 50 (1 - exp(-5 x))``, ``s_1 = 0.4 x``.

Where specfit differs from the paper, and why:

- The noise is ``N(0, (s/omega)^2)`` with each layer's own frequency (``omega_0`` for the first
  layer, ``hidden_omega_0`` for the second), where the paper divides both by its omega_0 = 30: so
  ``s`` stays the spread of the layer's effective frequencies ``omega W`` whatever omega_0 FreSh or
  the user chose. At omega_0 = 30 the two agree. The paper pairs the noise with omega_0 = 30 even
  for audio; with specfit's larger audio omega_0 the uniform part of the first layer already spans
  higher frequencies, so the same ``s_0`` adds relatively less.
- Images are flattened row by row, as the authors' code does, so their centroid is essentially the
  horizontal one (with a little energy at multiples of ``1 / W`` from the jumps between rows). A
  2-D radial centroid would describe an image better, but the constants were fitted to this one,
  and a different centroid would give scales the paper never tested.
- The paper's experiments are mainly audio, with images second; it gives no rule for three
  spatial axes (video, volumes), so those are refused rather than given an untested rule.
- The centroid is computed from the values training fits (SIREN's: in [-1, 1], as in the paper),
  not from the file's pixel values; a shift of the value range changes the mean's weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from specfit.errors import SpecfitError

# (s_0 ceiling, s_0 rate, s_1 slope) of the published rule, by number of spatial axes.
WINNER_RULES = {1: (3500.0, 7.0, 3.0), 2: (50.0, 5.0, 0.4)}


@dataclass(frozen=True)
class WinnerScales:
    """WINNER's noise scales for one signal.

    Attributes:
        centroid: the normalised spectral centroid ``c`` in [0, 1] (1 = the Nyquist frequency),
            the mean over channels.
        s0: the first layer's noise scale (SIREN's ``winner_s0``).
        s1: the first hidden layer's noise scale (SIREN's ``winner_s1``).
    """

    centroid: float
    s0: float
    s1: float


def spectral_centroid(values: torch.Tensor) -> float:
    """The normalised spectral centroid of ``values`` ``(C, *spatial)``: each channel flattened in
    row-major order, ``sum f |X| / sum |X|`` over its one-sided DFT in cycles per sample, averaged
    over channels and doubled, so that 0 is constant and 1 the Nyquist frequency."""
    if values.ndim < 2 or values.shape[0] == 0 or values[0].numel() < 2:
        raise SpecfitError(f"the spectral centroid needs a signal (C, *spatial) of at least 2 samples, "
                           f"got shape {tuple(values.shape)}")
    sequences = values.detach().to(torch.float64).reshape(values.shape[0], -1)
    magnitudes = torch.fft.rfft(sequences, dim=-1).abs()
    frequencies = torch.fft.rfftfreq(sequences.shape[-1], dtype=torch.float64)
    weights = magnitudes.sum(dim=-1)
    centroids = (magnitudes * frequencies).sum(dim=-1) / weights.clamp_min(torch.finfo(torch.float64).tiny)
    return float(2.0 * torch.where(weights > 0, centroids, 0.0).mean())


def winner_scales(values: torch.Tensor) -> WinnerScales:
    """WINNER's ``s_0`` and ``s_1`` for a signal ``values`` ``(C, *spatial)`` as training sees it
    (one spatial axis: audio; two: an image), by the published rule (module docstring)."""
    axes = values.ndim - 1
    if axes not in WINNER_RULES:
        raise SpecfitError(f"WINNER's noise scales are published for 1-D (audio) and 2-D (image) signals, "
                           f"not for {axes} spatial axes")
    ceiling, rate, slope = WINNER_RULES[axes]
    centroid = spectral_centroid(values)
    x = centroid / values.shape[0] ** 2
    return WinnerScales(centroid, ceiling * (1.0 - math.exp(-rate * x)), slope * x)
