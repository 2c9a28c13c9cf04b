"""ReLU MLP behind a Fourier-feature mapping (Tancik et al. 2020).

``encoding -> [Linear, ReLU] x (hidden_layers + 1) -> Linear -> sigmoid``: outputs are in [0, 1].
Weights use Glorot-normal initialisation and near-zero biases, as JAX's default ``Dense`` that the
published numbers used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from specfit.encodings import (
    BasicEncoding,
    GaussianEncoding,
    IdentityEncoding,
    NerfPositionalEncoding,
    PositionalEncoding,
)
from specfit.models.body import relu_mlp
from specfit.models.memory import ModelSize, mlp_size
from specfit.models.params import ModelParams, hidden_layers, param, scale, width


@dataclass(frozen=True)
class MLPParams(ModelParams):
    """A ReLU MLP's shape (the ``relu`` model: raw coordinates, no mapping)."""

    width: int = width(256)
    hidden_layers: int = hidden_layers(2)

    def encoding(self, in_features: int) -> nn.Module:
        """The coordinate mapping ``(N, in_features) -> (N, out_features)`` in front of the MLP."""
        return IdentityEncoding(in_features)

    def embedding_size(self, in_features: int) -> int:
        """The largest number of values the mapping may give, for size estimates."""
        return in_features

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        return mlp_size(in_features, out_features, self.embedding_size(in_features), self.width,
                        self.hidden_layers)

    def layer_width(self) -> int:
        return self.width


@dataclass(frozen=True)
class BasicParams(MLPParams):
    period: float = param(2.0, "period p of [cos 2 pi v / p, sin 2 pi v / p]", minimum=1e-6, maximum=1e9)

    def encoding(self, in_features: int) -> nn.Module:
        return BasicEncoding(in_features, self.period)


@dataclass(frozen=True)
class PositionalParams(MLPParams):
    features: int = param(256, "frequency vectors m (split over the axes)", minimum=1, maximum=2**20)
    scale: float = scale(6.0, "log2 of the highest frequency, sigma_p")

    def encoding(self, in_features: int) -> nn.Module:
        return PositionalEncoding(in_features, self.features, self.scale)

    def embedding_size(self, in_features: int) -> int:
        return max(in_features, self.features)


@dataclass(frozen=True)
class NerfParams(MLPParams):
    octaves: int = param(10, "octaves L of sin/cos(2^k pi v)", minimum=1, maximum=60)

    def encoding(self, in_features: int) -> nn.Module:
        return NerfPositionalEncoding(in_features, self.octaves)

    def embedding_size(self, in_features: int) -> int:
        return in_features * (2 * self.octaves + 1)


@dataclass(frozen=True)
class GaussianParams(MLPParams):
    features: int = param(256, "random frequency vectors m", minimum=1, maximum=2**20)
    sigma: float = scale(10.0, "standard deviation sigma of B")
    trainable_b: int = param(0, "1: train B with the weights by gradient descent (0: B drawn once and "
                             "frozen, as published)", minimum=0, maximum=1, written_when_set=True)

    def encoding(self, in_features: int) -> nn.Module:
        return GaussianEncoding(in_features, self.features, self.sigma, trainable=bool(self.trainable_b))

    def embedding_size(self, in_features: int) -> int:
        return max(in_features, self.features)


class FourierMLP(nn.Module):
    """A ReLU MLP of ``hidden_layers + 1`` hidden layers of ``width`` on top of the mapping its
    parameters name (:meth:`MLPParams.encoding`)."""

    def __init__(self, in_features: int, out_features: int, params: MLPParams = MLPParams()) -> None:
        super().__init__()
        self.hparams = params
        self.encoding = params.encoding(in_features)
        self.net = relu_mlp(self.encoding.out_features, out_features, params.width, params.hidden_layers + 1,
                            xavier=True)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.encoding(coords)))
