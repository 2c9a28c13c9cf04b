"""Fourier-feature mappings (Tancik et al. 2020).

Every mapping takes ``(N, d)`` coordinates and returns ``(N, out_features)``. With a frequency
matrix ``B`` of shape ``(m, d)``, ``gamma(v) = [cos(2 pi B v), sin(2 pi B v)]`` (all cosines first,
then all sines). The frequency matrices are buffers, so they are saved with the model and frozen;
the Gaussian mapping's may instead be a parameter trained with the network (``trainable``), saved
under the same name.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class IdentityEncoding(nn.Module):
    """``gamma(v) = v`` (the "none" mapping)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return coords


class _MatrixEncoding(nn.Module):
    """``[cos(2 pi B v), sin(2 pi B v)]`` for a frozen ``B`` of shape ``(m, d)``."""

    def __init__(self, frequencies: torch.Tensor, trainable: bool = False) -> None:
        super().__init__()
        if trainable:
            self.frequencies = nn.Parameter(frequencies.float())
        else:
            self.register_buffer("frequencies", frequencies.float())
        self.out_features = 2 * frequencies.shape[0]

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        projected = (2.0 * math.pi) * (coords @ self.frequencies.T)
        return torch.cat([torch.cos(projected), torch.sin(projected)], dim=-1)


class BasicEncoding(_MatrixEncoding):
    """``B = I / period``: ``[cos 2 pi v / period, sin 2 pi v / period]``.

    The published basic mapping is ``period = 1`` on coordinates in [0, 1). On specfit's default
    coordinates in [-1, 1] that would map ``v`` and ``v + 1`` to the same features, so the default
    is ``period = 2``: the published mapping of ``(v + 1) / 2`` up to a sign. Use ``period = 1``
    with the lattice split, whose coordinates are in [0, 1).
    """

    def __init__(self, in_features: int, period: float = 2.0) -> None:
        super().__init__(torch.eye(in_features) / period)


class PositionalEncoding(_MatrixEncoding):
    """Tancik's positional encoding: per axis, ``m/2`` frequencies ``2**linspace(0, scale, m/2) - 1``.

    ``features`` is the total number of frequency vectors ``m`` (split evenly over the axes).
    """

    def __init__(self, in_features: int, features: int = 256, scale: float = 6.0) -> None:
        per_axis = max(1, features // in_features)
        values = 2.0 ** torch.linspace(0.0, float(scale), per_axis) - 1.0
        rows = []
        for axis in range(in_features):
            block = torch.zeros(per_axis, in_features)
            block[:, axis] = values
            rows.append(block)
        super().__init__(torch.cat(rows))


class GaussianEncoding(_MatrixEncoding):
    """Random Fourier features: ``B`` of shape ``(features, d)`` with entries ``N(0, sigma^2)``, frozen
    unless ``trainable`` (then a parameter that gradient descent moves with the network's weights)."""

    def __init__(self, in_features: int, features: int = 256, sigma: float = 10.0, trainable: bool = False
                 ) -> None:
        super().__init__(torch.randn(features, in_features) * float(sigma), trainable)


class NerfPositionalEncoding(nn.Module):
    """NeRF's encoding: ``[v, sin(2^k pi v), cos(2^k pi v)]`` for ``k = 0 .. octaves - 1``, per axis."""

    def __init__(self, in_features: int, octaves: int = 10, include_input: bool = True) -> None:
        super().__init__()
        self.register_buffer("scales", math.pi * 2.0 ** torch.arange(int(octaves), dtype=torch.float32))
        self.include_input = include_input
        self.out_features = in_features * (2 * int(octaves) + int(include_input))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        projected = (coords.unsqueeze(-1) * self.scales).flatten(-2)
        parts = [torch.sin(projected), torch.cos(projected)]
        if self.include_input:
            parts.insert(0, coords)
        return torch.cat(parts, dim=-1)
