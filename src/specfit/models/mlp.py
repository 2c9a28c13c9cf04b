"""ReLU MLP behind a Fourier-feature mapping (Tancik et al. 2020).

``encoding -> [Linear, ReLU] x (hidden_layers + 1) -> Linear -> sigmoid``: outputs are in [0, 1].
Weights use Glorot-normal initialisation and near-zero biases, as JAX's default ``Dense`` that the
published numbers used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from specfit.models.body import relu_mlp
from specfit.models.params import hidden_layers, param, scale, width


@dataclass(frozen=True)
class MLPParams:
    """A ReLU MLP's shape (the ``relu`` model: raw coordinates, no mapping)."""

    width: int = width(256)
    hidden_layers: int = hidden_layers(2)


@dataclass(frozen=True)
class BasicParams(MLPParams):
    period: float = param(2.0, "period p of [cos 2 pi v / p, sin 2 pi v / p]", minimum=1e-6, maximum=1e9)


@dataclass(frozen=True)
class PositionalParams(MLPParams):
    features: int = param(256, "frequency vectors m (split over the axes)", minimum=1, maximum=2**20)
    scale: float = scale(6.0, "log2 of the highest frequency, sigma_p")


@dataclass(frozen=True)
class NerfParams(MLPParams):
    octaves: int = param(10, "octaves L of sin/cos(2^k pi v)", minimum=1, maximum=60)


@dataclass(frozen=True)
class GaussianParams(MLPParams):
    features: int = param(256, "random frequency vectors m", minimum=1, maximum=2**20)
    sigma: float = scale(10.0, "standard deviation sigma of B")


class FourierMLP(nn.Module):
    """A ReLU MLP of ``hidden_layers + 1`` hidden layers of ``width`` on top of ``encoding``."""

    def __init__(
        self, encoding: nn.Module, out_features: int, width: int = 256, hidden_layers: int = 2
    ) -> None:
        super().__init__()
        self.encoding = encoding
        self.net = relu_mlp(encoding.out_features, out_features, width, hidden_layers + 1, xavier=True)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.encoding(coords)))
