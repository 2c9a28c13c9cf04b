"""The Fourier-feature experiments of Tancik et al. 2020, on specfit's coordinates [-1, 1].

- :func:`mapped_mlp`: a ReLU MLP (Glorot-normal weights, linear output) behind any mapping, whose
  NTK shows what the mapping does: none, basic, Gaussian of several sigma, ``a_j = 1 / j^p``
  (:func:`power_law_mapping`), the basic mapping with one extra frequency
  (:func:`extra_frequency_mapping`).
- :func:`fit_held_out`: train a model on part of a signal's samples (Adam, full batch, MSE) and
  score it on the rest: the sigma sweep, depth against the number of features, trainable ``B``.

Frequencies are in cycles over the span [-1, 1] (``b = k / 2`` cycles per unit): the published
``b_j = j`` on [0, 1) is ``j`` cycles over its span, so ``power_law_mapping`` uses ``b_j = j / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from specfit.encodings import GaussianEncoding, IdentityEncoding
from specfit.models.body import relu_mlp
from specfit.tangent.kernel import AmplitudeFourierMapping


class MappedMLP(nn.Module):
    """``mapping -> [Linear, ReLU] x depth -> Linear`` (one output, no output nonlinearity),
    Glorot-normal weights as in the published code: ``(N, d) -> (N, 1)``."""

    def __init__(self, mapping: nn.Module, width: int = 256, depth: int = 3) -> None:
        super().__init__()
        self.mapping = mapping
        self.net = relu_mlp(mapping.out_features, 1, width, depth, xavier=True)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(self.mapping(coords))


def power_law_mapping(power: float, features: int = 64) -> AmplitudeFourierMapping:
    """1-D ``a_j = 1 / j^p``, ``b_j = j / 2`` (``j`` cycles over [-1, 1]), ``j = 1 .. features``: the
    mapping kernel ``h(d) = sum_j j^(-2p) cos(pi j d)`` narrows as ``p`` falls (wider spectrum)."""
    j = torch.arange(1, features + 1, dtype=torch.float32)
    return AmplitudeFourierMapping((j / 2).unsqueeze(1), j ** -float(power))


def extra_frequency_mapping(extra: float) -> AmplitudeFourierMapping:
    """1-D basic mapping ``[cos pi v, sin pi v]`` plus the frequency ``extra`` (cycles over [-1, 1])."""
    return AmplitudeFourierMapping(torch.tensor([[0.5], [extra / 2.0]]), torch.ones(2))


def basic_mapping(dims: int) -> AmplitudeFourierMapping:
    """``[cos pi v, sin pi v]`` per axis: one cycle over [-1, 1] (specfit's ``ff-basic``, period 2)."""
    return AmplitudeFourierMapping(torch.eye(dims) / 2.0, torch.ones(dims))


def mapping(name: str, dims: int, sigma: float = 1.0, features: int = 256) -> nn.Module:
    """``"none"``, ``"basic"`` or ``"gaussian"`` (``B ~ N(0, sigma^2)``, drawn from the global stream)."""
    if name == "none":
        return IdentityEncoding(dims)
    if name == "basic":
        return basic_mapping(dims)
    return GaussianEncoding(dims, features, sigma)


@dataclass
class HeldOutScore:
    """Train and held-out PSNR (dB, peak 1) of one fit, and how far its trainable ``B`` moved
    (``||B_T - B_0|| / ||B_0||``; ``None`` when it has none)."""

    psnr_train: float
    psnr_test: float
    b_change: float | None = None

    def to_json(self) -> dict:
        return {"psnr_train": self.psnr_train, "psnr_test": self.psnr_test, "b_change": self.b_change}


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB for values of range 1."""
    mse = float(((prediction - target) ** 2).mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def fit_held_out(build: Callable[[], nn.Module], train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], steps: int = 1000, lr: float = 1e-3,
                 seed: int = 0) -> HeldOutScore:
    """Train ``build()`` (drawn after ``torch.manual_seed(seed)``) on ``train`` = ``(coords (N, d),
    values (N, C))`` by Adam (full batch, MSE, ``steps`` steps) and score it on ``test``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    b_start = {name: p.detach().clone() for name, p in model.named_parameters()
               if name.endswith("frequencies")}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    coords, values = train
    for _ in range(steps):
        optimizer.zero_grad()
        ((model(coords) - values) ** 2).mean().backward()
        optimizer.step()
    with torch.no_grad():
        scores = psnr(model(coords), values), psnr(model(test[0]), test[1])
    change = None
    if b_start:
        name, start = next(iter(b_start.items()))
        change = float((dict(model.named_parameters())[name].detach() - start).norm() / start.norm())
    return HeldOutScore(*scores, change)


Samples = tuple[torch.Tensor, torch.Tensor]  # coordinates (N, d) and values (N, C)


def lattice_split(values: torch.Tensor) -> tuple[Samples, Samples]:
    """Split a ``(C, *spatial)`` signal on a grid (coordinates ``linspace(-1, 1, n)`` per axis) into
    the even lattice (every index even: training) and the odd one (every index odd: held out), as
    ``((coords, values), (coords, values))`` with values ``(N, C)``."""
    spatial = values.shape[1:]
    axes = [torch.linspace(-1.0, 1.0, n) for n in spatial]
    out = []
    for parity in (0, 1):
        picked = [torch.arange(parity, n, 2) for n in spatial]
        mesh = torch.meshgrid(*[axis[index] for axis, index in zip(axes, picked, strict=True)], indexing="ij")
        coords = torch.stack([m.reshape(-1) for m in mesh], -1)
        block = values[(slice(None), *torch.meshgrid(*picked, indexing="ij"))]
        out.append((coords, block.reshape(values.shape[0], -1).T.contiguous()))
    return out[0], out[1]
