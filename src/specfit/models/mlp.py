"""ReLU MLP behind a Fourier-feature mapping (Tancik et al. 2020; methods.md 2).

``encoding -> [Linear, ReLU] x (hidden_layers + 1) -> Linear -> sigmoid``: outputs are in [0, 1].
Weights use Glorot-normal initialisation and near-zero biases, as JAX's default ``Dense`` that the
published numbers used.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class FourierMLP(nn.Module):
    """A ReLU MLP of ``hidden_layers + 1`` hidden layers of ``width`` on top of ``encoding``."""

    def __init__(
        self, encoding: nn.Module, out_features: int, width: int = 256, hidden_layers: int = 2
    ) -> None:
        super().__init__()
        self.encoding = encoding
        sizes = [encoding.out_features] + [width] * (hidden_layers + 1)
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            for module in self.net:
                if isinstance(module, nn.Linear):
                    nn.init.xavier_normal_(module.weight)
                    module.bias.normal_(0.0, 1e-6)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.encoding(coords)))
