"""Sine networks: SIREN in both conventions, and FINER, on the shared layer stack.

Conventions for SIREN, recorded in every saved model:

- ``"siren"`` (the original code): every sine layer is ``sin(omega (W h + b))``, the bias is scaled
  too; the output layer is ``W h + b``.
- ``"fresh"`` (the published FreSh code): the first layer is ``sin(W (omega_0 x) + b)``, hidden
  layers ``sin(W (30 h) + b)`` and the output layer ``W (30 h) + b``: inputs are scaled, biases not.

Initialisation (both): first-layer weights ``U(-1/n_in, 1/n_in)``; hidden and output weights
``U(-sqrt(6/n_in)/omega_h, +sqrt(6/n_in)/omega_h)``; PyTorch's default biases.
Inputs are ``(N, in_features)`` coordinates, outputs ``(N, out_features)`` in about [-1, 1].

Two published changes to that initialisation are options (their defaults leave it as it is, bit for
bit, drawing nothing more from the random stream):

- **Weight scaling** (``weight_scale = alpha``, SIREN and FINER): Yeom, Lee and Lee, "Fast Training
  of Sinusoidal Neural Fields via Scaling Initialization", ICLR 2025 (arXiv 2410.04779), multiply
  every weight of a sinusoidal network except the last layer's by a constant alpha at
  initialisation, and report training about 10x faster. As in the authors' code, the first and
  hidden weights are multiplied and the biases and the output layer are not; their image example
  uses alpha = 2.5. A larger alpha raises the frequencies of the untrained network much as a
  larger omega_0 does, in every layer. FINER is a sinusoidal network with SIREN's initialisation,
  so the same rule applies to it (the paper's experiments are on SIREN).
- **WINNER** (``winner_s0``, ``winner_s1``, SIREN): Chandravamsi et al., "Spectral Bottleneck in
  Sinusoidal Representation Networks: Noise is All You Need" (arXiv 2509.09719), add Gaussian
  noise to the uniformly drawn weights of the first two layers: ``N(0, (s_0/omega_0)^2)`` to the
  first layer's and ``N(0, (s_1/omega_0)^2)`` to the first hidden layer's, with ``s_0`` and
  ``s_1`` set from the target's spectral centroid (:func:`specfit.fresh.centroid.winner_scales`).
  The paper uses omega_0 = 30 in both layers; here each layer's noise is divided by its own
  frequency (``omega_0`` for the first, ``hidden_omega_0`` for the second), so that ``s`` is the
  standard deviation of the noise in the layer's effective frequencies ``omega W`` whatever
  omega_0 is. With both options, the weights are scaled first and the noise added after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from specfit.errors import SpecfitError
from specfit.models.body import ActivationMLP
from specfit.models.params import StackParams, frequency, param, scale

CONVENTIONS = ("fresh", "siren")


def _weight_scale() -> Any:
    """The field of the weight-scaling factor alpha (Yeom et al. 2025); 1 keeps SIREN's initialisation."""
    return param(1.0, "weight scaling alpha: first and hidden weights x alpha at init (Yeom et al. "
                 "2025; 1: none)", minimum=1e-6, maximum=1e6)


@dataclass(frozen=True)
class SirenParams(StackParams):
    """SIREN's hyperparameters (omega_0 is the FreSh knob)."""

    omega_0: float = frequency(30.0, "first-layer frequency omega_0")
    hidden_omega_0: float = frequency(30.0, "hidden-layer frequency")
    convention: str = param("fresh", "fresh: sin(W(omega_0 x)+b), hidden sin(W(30h)+b); "
                            "siren: sin(omega(Wx+b))", choices=CONVENTIONS)
    weight_scale: float = _weight_scale()
    winner_s0: float = scale(0.0, "WINNER noise s_0: first-layer weights + N(0, (s_0/omega_0)^2) "
                             "(Chandravamsi et al. 2025; 0: none)")
    winner_s1: float = scale(0.0, "WINNER noise s_1: first hidden layer's weights + "
                             "N(0, (s_1/hidden_omega_0)^2) (0: none)")


@dataclass(frozen=True)
class FinerParams(StackParams):
    """FINER's hyperparameters (the first-layer bias range k or omega_0 is the FreSh knob)."""

    omega_0: float = frequency(30.0, "first-layer frequency omega_0")
    hidden_omega_0: float = frequency(30.0, "hidden-layer frequency")
    first_bias_scale: float | None = scale(None, "first-layer bias range k: U(-k, k) (none: PyTorch's "
                                           "1/sqrt(n_in))")
    weight_scale: float = _weight_scale()


def _siren_init(model: ActivationMLP, hidden_omega_0: float, weight_scale: float) -> None:
    """SIREN's uniform weights, then every weight but the output layer's times ``weight_scale``."""
    with torch.no_grad():
        model.first.weight.uniform_(-1.0 / model.first.in_features, 1.0 / model.first.in_features)
        for layer in [*model.hidden, model.last]:
            bound = math.sqrt(6.0 / layer.in_features) / hidden_omega_0
            layer.weight.uniform_(-bound, bound)
        for layer in [model.first, *model.hidden]:
            layer.weight.mul_(weight_scale)


def _winner_noise(model: Siren, s0: float, s1: float) -> None:
    """WINNER's noise: ``N(0, (s0/omega_0)^2)`` added to the first layer's weights and
    ``N(0, (s1/hidden_omega_0)^2)`` to the first hidden layer's; a scale of 0 draws nothing."""
    if s1 > 0 and not model.hidden:
        raise SpecfitError("winner_s1 perturbs the first hidden layer, but hidden_layers is 0",
                           setting="winner_s1")
    layers = [(model.first, s0 / model.omega_0)]
    if model.hidden:
        layers.append((model.hidden[0], s1 / model.hidden_omega_0))
    with torch.no_grad():
        for layer, std in layers:
            if std > 0:
                layer.weight.add_(torch.randn_like(layer.weight) * std)


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
        _siren_init(self, self.hidden_omega_0, params.weight_scale)
        _winner_noise(self, params.winner_s0, params.winner_s1)

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
        _siren_init(self, self.hidden_omega_0, params.weight_scale)
        if params.first_bias_scale is not None:
            with torch.no_grad():
                self.first.bias.uniform_(-float(params.first_bias_scale), float(params.first_bias_scale))

    def first_activation(self, z: torch.Tensor) -> torch.Tensor:
        return finer_activation(z, self.omega_0)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return finer_activation(z, self.hidden_omega_0)
