"""Sine networks: SIREN in both conventions, and FINER, on the shared layer stack.

Conventions for SIREN, recorded in every saved model:

- ``"siren"`` (the original code): every sine layer is ``sin(omega (W h + b))``, the bias is scaled
  too; the output layer is ``W h + b``.
- ``"fresh"`` (the published FreSh code): the first layer is ``sin(W (omega_0 x) + b)``, hidden
  layers ``sin(W (30 h) + b)`` and the output layer ``W (30 h) + b``: inputs are scaled, biases not.

Initialisation (both): first-layer weights ``U(-1/n_in, 1/n_in)``; hidden and output weights
``U(-sqrt(6/n_in)/omega_h, +sqrt(6/n_in)/omega_h)``; PyTorch's default biases.
Inputs are ``(N, in_features)`` coordinates, outputs ``(N, out_features)`` in about [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from specfit.models.body import ActivationMLP
from specfit.models.params import StackParams, frequency, param, scale

CONVENTIONS = ("fresh", "siren")


@dataclass(frozen=True)
class SirenParams(StackParams):
    """SIREN's hyperparameters (omega_0 is the FreSh knob)."""

    omega_0: float = frequency(30.0, "first-layer frequency omega_0")
    hidden_omega_0: float = frequency(30.0, "hidden-layer frequency")
    convention: str = param("fresh", "fresh: sin(W(omega_0 x)+b), hidden sin(W(30h)+b); "
                            "siren: sin(omega(Wx+b))", choices=CONVENTIONS)


@dataclass(frozen=True)
class FinerParams(StackParams):
    """FINER's hyperparameters (the first-layer bias range k or omega_0 is the FreSh knob)."""

    omega_0: float = frequency(30.0, "first-layer frequency omega_0")
    hidden_omega_0: float = frequency(30.0, "hidden-layer frequency")
    first_bias_scale: float | None = scale(None, "first-layer bias range k: U(-k, k) (none: PyTorch's "
                                           "1/sqrt(n_in))")


def _siren_init(first: nn.Linear, others: list[nn.Linear], hidden_omega_0: float) -> None:
    with torch.no_grad():
        first.weight.uniform_(-1.0 / first.in_features, 1.0 / first.in_features)
        for layer in others:
            bound = math.sqrt(6.0 / layer.in_features) / hidden_omega_0
            layer.weight.uniform_(-bound, bound)


class Siren(ActivationMLP):
    """SIREN with first-layer frequency ``omega_0`` and hidden frequency ``hidden_omega_0``."""

    def __init__(self, in_features: int, out_features: int, params: SirenParams = SirenParams()) -> None:
        super().__init__(in_features, out_features, params.width, params.hidden_layers)
        if params.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {params.convention!r}")
        self.hparams = params
        self.omega_0 = float(params.omega_0)
        self.hidden_omega_0 = float(params.hidden_omega_0)
        self.convention = params.convention
        if self.convention == "fresh":  # frequencies scale the layers' inputs, not their biases
            self.input_scale, self.hidden_scale = self.omega_0, self.hidden_omega_0
        _siren_init(self.first, [*self.hidden, self.last], self.hidden_omega_0)

    def first_activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z) if self.convention == "fresh" else torch.sin(self.omega_0 * z)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z) if self.convention == "fresh" else torch.sin(self.hidden_omega_0 * z)


def finer_activation(z: torch.Tensor, omega: float) -> torch.Tensor:
    """FINER's variable-periodic sine ``sin(omega (|z| + 1) z)``; ``|z| + 1`` is a constant in backprop."""
    return torch.sin(omega * (z.abs() + 1.0).detach() * z)


class Finer(ActivationMLP):
    """FINER: SIREN's layout and init with ``sin(omega (|z| + 1) z)``, ``z = W h + b``.

    ``first_bias_scale = k`` draws the first-layer bias from ``U(-k, k)``; ``None`` keeps
    PyTorch's default ``U(-1/sqrt(n_in), 1/sqrt(n_in))``.
    """

    def __init__(self, in_features: int, out_features: int, params: FinerParams = FinerParams()) -> None:
        super().__init__(in_features, out_features, params.width, params.hidden_layers)
        self.hparams = params
        self.omega_0 = float(params.omega_0)
        self.hidden_omega_0 = float(params.hidden_omega_0)
        _siren_init(self.first, [*self.hidden, self.last], self.hidden_omega_0)
        if params.first_bias_scale is not None:
            with torch.no_grad():
                self.first.bias.uniform_(-float(params.first_bias_scale), float(params.first_bias_scale))

    def first_activation(self, z: torch.Tensor) -> torch.Tensor:
        return finer_activation(z, self.omega_0)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return finer_activation(z, self.hidden_omega_0)
