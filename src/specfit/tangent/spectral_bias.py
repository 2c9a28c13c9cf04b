"""Spectral bias, measured: a 1-D regression of a sum of sines at known frequencies, the error at each
frequency tracked over gradient-descent steps, beside the NTK's prediction of the same curves.

The target is ``y(v) = sum_k sin(pi k (v + 1) + phi_k)`` (``k`` cycles over [-1, 1], random phases)
on the periodic grid ``v_i = -1 + 2 i / n``, so that frequency ``k`` is DFT bin ``k``. The network is
trained by plain full-batch gradient descent on ``L = 1/2 sum_i (f(v_i) - y_i)^2`` with step ``eta``;
linearised around its initialisation (the NTK regime) the residual ``r = f - y`` then follows
``r_t = exp(-eta K t) r_0``: its component along eigenvector ``u_i`` of the empirical kernel ``K``
decays as ``exp(-eta lambda_i t)``. The error at frequency ``k`` is ``|DFT(r_t)[k]| / |DFT(y)[k]|``,
for the trained network and for that prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.tangent.kernel import empirical_ntk


@dataclass
class SpectralBiasCurves:
    """The error at each target frequency over training, measured and predicted by the NTK.

    Attributes:
        label: the model, as shown.
        frequencies: ``(K,)`` target frequencies, cycles over [-1, 1].
        steps: ``(T,)`` the gradient-descent steps recorded (0 first).
        trained: ``(T, K)`` relative error ``|DFT(f_t - y)[k]| / |DFT(y)[k]|`` of the trained network.
        predicted: ``(T, K)`` the same for the NTK's linear prediction ``exp(-eta K t) r_0``.
        lr: the step ``eta`` (``fraction / lambda_max``).
        top_eigenvalue: ``lambda_max`` of the network's kernel at initialisation.
    """

    label: str
    frequencies: np.ndarray
    steps: np.ndarray
    trained: np.ndarray
    predicted: np.ndarray
    lr: float
    top_eigenvalue: float

    def to_json(self) -> dict:
        return {"label": self.label, "frequencies": self.frequencies.tolist(), "steps": self.steps.tolist(),
                "trained": self.trained.tolist(), "predicted": self.predicted.tolist(), "lr": self.lr,
                "top_eigenvalue": self.top_eigenvalue}


def periodic_grid(size: int) -> torch.Tensor:
    """``(size, 1)`` points ``-1 + 2 i / size``: a grid on which ``k`` cycles over [-1, 1] is DFT bin
    ``k``."""
    return (-1.0 + 2.0 * torch.arange(size, dtype=torch.float32) / size).unsqueeze(1)


def sines(coords: torch.Tensor, frequencies: Sequence[int], seed: int = 0,
          amplitudes: Sequence[float] | None = None) -> torch.Tensor:
    """``sum_k a_k sin(pi k (v + 1) + phi_k)`` at ``(N, 1)`` points, phases uniform from ``seed``
    (``a_k = 1`` unless given): ``(N,)``."""
    generator = torch.Generator().manual_seed(seed)
    phases = 2.0 * math.pi * torch.rand(len(frequencies), generator=generator, dtype=torch.float64)
    weights = torch.ones(len(frequencies), dtype=torch.float64) if amplitudes is None else \
        torch.tensor(list(amplitudes), dtype=torch.float64)
    k = torch.tensor(list(frequencies), dtype=torch.float64)
    v = coords[:, 0].double()
    return (weights * torch.sin(math.pi * k * (v[:, None] + 1.0) + phases)).sum(-1).float()


def frequency_errors(residuals: torch.Tensor, target: torch.Tensor, frequencies: Sequence[int]
                     ) -> torch.Tensor:
    """``|DFT(r)[k]| / |DFT(y)[k]|`` for residuals ``(T, N)`` and target ``(N,)``: ``(T, K)``."""
    index = torch.tensor(list(frequencies))
    reference = torch.fft.rfft(target.double()).abs()[index]
    return torch.fft.rfft(residuals.double(), dim=-1).abs()[:, index] / reference


def spectral_bias(build: Callable[[], nn.Module], label: str,
                  frequencies: Sequence[int] = (1, 2, 4, 8, 16, 32), size: int = 128, steps: int = 2000,
                  records: int = 41, fraction: float = 0.5,
                  value_range: str = "signed", seed: int = 0) -> SpectralBiasCurves:
    """Train ``build()`` (drawn after ``torch.manual_seed(seed)``; one input, one output) on a sum of
    sines (module docstring) by gradient descent with ``eta = fraction / lambda_max`` for ``steps``
    steps, recording the per-frequency error ``records`` times (log-spaced steps), and predict the same
    from the network's empirical NTK at initialisation.

    ``value_range`` ``"unit"`` maps the target into [0.1, 0.9] (models with a sigmoid output),
    ``"signed"`` into [-0.8, 0.8]; the relative errors do not depend on that scale.
    """
    if max(frequencies) > size // 2 - 1:
        raise SpecfitError(f"frequencies up to {max(frequencies)} need a grid of more than "
                           f"{2 * max(frequencies)} points")
    coords = periodic_grid(size)
    raw = sines(coords, frequencies, seed)
    scale = 0.8 / float(raw.abs().max())
    target = raw * scale * 0.5 + 0.5 if value_range == "unit" else raw * scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    kernel = empirical_ntk(model, coords)
    values, vectors = torch.linalg.eigh(kernel)
    top = float(values[-1])
    lr = fraction / top
    marks = np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, records - 1)).astype(int)]))
    with torch.no_grad():
        start = model(coords)[:, 0].double() - target.double()
    along = vectors.T @ start  # the initial residual on the kernel's eigenvectors
    times = torch.tensor(marks, dtype=torch.float64)[:, None]
    decay = torch.exp(-lr * values.clamp_min(0.0)[None, :] * times)
    predicted = (decay * along) @ vectors.T
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    trained = []
    recorded = set(marks.tolist())
    model.train()
    for step in range(steps + 1):
        residual = model(coords)[:, 0] - target
        if step in recorded:
            trained.append(residual.detach().double())
        if step == steps:
            break
        optimizer.zero_grad()
        (0.5 * (residual ** 2).sum()).backward()
        optimizer.step()
    measured = frequency_errors(torch.stack(trained), target, frequencies)
    expected = frequency_errors(predicted, target, frequencies)
    return SpectralBiasCurves(label, np.asarray(frequencies, dtype=np.float64), marks.astype(np.float64),
                              measured.numpy(), expected.numpy(), lr, top)
