"""Localised activations: WIRE's complex Gabor wavelet and the Gaussian, on the shared layer stack.

Both use PyTorch's default ``nn.Linear`` initialisation. Inputs ``(N, in_features)``, outputs
``(N, out_features)`` in about [-1, 1].

Neither takes SIREN's initialisation options: weight scaling (Yeom et al. 2025) is defined for
sinusoidal networks, as a multiple of SIREN's initialisation (the paper's code trains WIRE and the
Gaussian network as baselines at PyTorch's default initialisation), and WINNER's noise scales
(Chandravamsi et al. 2025) are fitted to SIREN's frequencies only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from specfit.models.body import ActivationMLP
from specfit.models.params import StackParams, frequency, scale


@dataclass(frozen=True)
class WireParams(StackParams):
    """WIRE's hyperparameters (omega_0 is the FreSh knob)."""

    omega_0: float = frequency(20.0, "wavelet frequency omega_0")
    scale: float = scale(10.0, "wavelet scale s_0")

    def layer_width(self) -> int:
        return hidden_width(self.width)


def hidden_width(width: int) -> int:
    """WIRE's complex hidden width for ``width``: about as many real parameters as a real network."""
    return int(width / math.sqrt(2.0))


@dataclass(frozen=True)
class GaussParams(StackParams):
    """Gaussian-activation MLP's hyperparameters (the scale is the FreSh knob)."""

    scale: float = scale(30.0, "activation scale s in exp(-(s z)^2)")


class Wire(ActivationMLP):
    """WIRE: ``exp(i omega_0 z) exp(-|s_0 z|^2)``; complex hidden layers; the real part is output.

    The hidden width is ``int(width / sqrt(2))`` so that the complex network has about as many real
    parameters as a real one of ``width``.
    """

    def __init__(self, in_features: int, out_features: int, params: WireParams = WireParams()) -> None:
        super().__init__(in_features, out_features, hidden_width(params.width), params.hidden_layers,
                         torch.cfloat)
        self.hparams = params
        self.omega_0 = float(params.omega_0)
        self.scale = float(params.scale)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(1j * self.omega_0 * z - (self.scale * z).abs().square())

    def readout(self, out: torch.Tensor) -> torch.Tensor:
        return out.real


class Gauss(ActivationMLP):
    """MLP with Gaussian activations ``exp(-(s z)^2)``."""

    def __init__(self, in_features: int, out_features: int, params: GaussParams = GaussParams()) -> None:
        super().__init__(in_features, out_features, params.width, params.hidden_layers)
        self.hparams = params
        self.scale = float(params.scale)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(self.scale * z).square())
