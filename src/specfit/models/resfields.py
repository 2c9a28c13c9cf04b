"""ResFields (Mihajlovic et al., ICLR 2024): a SIREN whose chosen hidden layers get a per-frame,
low-rank weight residual, for time-varying signals such as video.

Coordinates are ``(N, in_features)`` with time first: ``t`` in [-1, 1] on the frame grid, frame
``k`` of ``n_frames`` at ``t = -1 + 2 k / (n_frames - 1)`` (the signed grid of
:func:`specfit.signals.sampling.grid_coordinates` for a ``(T, H, W)`` signal). The frame index is
recovered as ``round((t + 1) (n_frames - 1) / 2)``, clamped to ``[0, n_frames - 1]``; with
``n_frames = 1`` every sample uses frame 0.

Hidden layer ``i`` (``i = 1`` is the first hidden ``width x width`` layer after the input layer,
i.e. ``Siren.hidden[i - 1]``) in ``resfield_layers`` uses the weight ``W_i + dW_i(t)`` with

    dW_i(t) = sum_r coeff_i[t, r] F_i[r],   coeff_i: (n_frames, rank),  F_i: (rank, width, width).

Everything else (first layer, omega_0, both conventions, initialisation) is :class:`Siren`'s, and
the base weights are drawn first, so with the same seed a ResFieldSiren starts from the same
weights as a Siren. Init: ``coeff`` zero (the network starts as that plain SIREN), factors normal
with the hidden weights' standard deviation ``sqrt(2 / width) / hidden_omega_0``. SIREN's
initialisation options (``weight_scale``, ``winner_s0``, ``winner_s1``; :mod:`specfit.models.sine`)
act on the base weights as in a Siren; the factors keep that standard deviation (at init the
residuals are zero whatever the factors are, so the network starts as the scaled or perturbed SIREN).
Extra parameters: ``len(layers) * (n_frames * rank + rank * width**2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.models.memory import ModelSize
from specfit.models.params import ParamValue, param
from specfit.models.sine import Siren, SirenParams

# The layer sets the registry accepts (``--set resfield_layers=...``).
LAYER_CHOICES = ("1,2,3", "1,2", "2,3", "1,3", "1", "2", "3", "all", "none")


@dataclass(frozen=True)
class ResFieldsParams(SirenParams):
    """SIREN's hyperparameters plus the per-frame residuals (n_frames is set from the clip)."""

    stackable: ClassVar[bool] = False  # each sample picks its frame's weights

    n_frames: int = param(1, "frames of the clip (set from the signal)", minimum=1, maximum=2**20)
    rank: int = param(10, "rank of the per-frame weight residuals", minimum=1, maximum=4096)
    resfield_layers: str = param("1,2,3", "hidden layers that get residuals", choices=LAYER_CHOICES)

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        """SIREN's, plus at most three layers of residuals (coefficients and factors)."""
        size = super().model_size(in_features, out_features)
        width = max(1, self.width)
        residuals = 3 * self.rank * (self.n_frames + width * width)
        return replace(size, params=size.params + residuals)

    def frame_params(self, frames: int) -> dict[str, ParamValue]:
        return {"n_frames": frames}


def parse_layers(spec: str | Sequence[int], hidden_layers: int) -> tuple[int, ...]:
    """Sorted hidden-layer indices (1-based) from ``"1,2,3"``, ``"all"``, ``"none"`` or integers.

    Indices above ``hidden_layers`` are dropped (a shallower network uses the layers it has).
    """
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return tuple(range(1, hidden_layers + 1))
        if text in ("none", ""):
            return ()
        try:
            indices = [int(part) for part in text.split(",")]
        except ValueError:
            raise SpecfitError(
                f"resfield_layers must be like '1,2,3', 'all' or 'none', got {spec!r}"
            ) from None
    else:
        indices = [int(i) for i in spec]
    if any(i < 1 for i in indices):
        raise SpecfitError(f"resfield_layers counts hidden layers from 1, got {spec!r}")
    return tuple(sorted({i for i in indices if i <= hidden_layers}))


class ResFieldSiren(Siren):
    """SIREN with ResField layers: maps ``(N, in_features)`` (``t`` first) to ``(N, out_features)``."""

    def __init__(
        self, in_features: int, out_features: int, params: ResFieldsParams = ResFieldsParams()
    ) -> None:
        super().__init__(in_features, out_features, params)
        n_frames, rank, width = params.n_frames, params.rank, params.width
        if int(n_frames) != n_frames or n_frames < 1 or int(rank) != rank or rank < 1:
            raise SpecfitError(f"n_frames and rank must be whole numbers >= 1, got {n_frames} and {rank}")
        self.n_frames = int(n_frames)
        self.rank = int(rank)
        self.resfield_layers = parse_layers(params.resfield_layers, params.hidden_layers)
        std = math.sqrt(2.0 / width) / self.hidden_omega_0
        self.coeff = nn.ParameterDict(
            {str(i): nn.Parameter(torch.zeros(self.n_frames, self.rank)) for i in self.resfield_layers}
        )
        self.factors = nn.ParameterDict(
            {str(i): nn.Parameter(torch.randn(self.rank, width, width) * std) for i in self.resfield_layers}
        )

    def frame_index(self, t: torch.Tensor) -> torch.Tensor:
        """``(N,)`` times in [-1, 1] to ``(N,)`` frame indices (nearest frame, clamped)."""
        if self.n_frames == 1:
            return torch.zeros(t.shape, dtype=torch.long, device=t.device)
        position = (t + 1.0) * (0.5 * (self.n_frames - 1))
        return torch.round(position).long().clamp(0, self.n_frames - 1)

    def _residual(self, key: str, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``dW(t) x`` for ``x`` ``(N, in)``: ``(x F^T)`` as ``(N, rank, out)`` weighted by ``coeff[t]``."""
        factors = self.factors[key]
        projected = (x @ factors.reshape(-1, factors.shape[-1]).T).view(x.shape[0], self.rank, -1)
        weights = self.coeff[key][frames]  # (N, rank)
        return torch.bmm(weights.unsqueeze(1), projected).squeeze(1)

    def hidden_pre_activation(self, index: int, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """``(W_i + dW_i(t)) x + b_i`` for layers in ``resfield_layers`` (``t = coords[:, 0]``),
        else the SIREN's ``W_i x + b_i``."""
        z = super().hidden_pre_activation(index, x, coords)
        key = str(index)
        if key not in self.coeff:
            return z
        return z + self._residual(key, x, self.frame_index(coords[:, 0]))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., in_features)`` to ``(..., out_features)``: the SIREN's layer loop on flattened
        samples, with the residuals of :meth:`hidden_pre_activation`."""
        lead = coords.shape[:-1]
        out = super().forward(coords.reshape(-1, coords.shape[-1]))
        return out.reshape(*lead, out.shape[-1])
