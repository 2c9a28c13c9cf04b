"""Hash-grid encoding followed by a small ReLU MLP (Instant-NGP).

Input coordinates ``(N, d)`` in [-1, 1] are mapped to [0, 1] for the grid; outputs ``(N, C)`` are
linear, trained on values in [0, 1]. When the model is called again with the very same coordinate
tensor (full-batch fitting on a fixed grid), the grid's corner indices and weights from the last
call are reused instead of recomputed; coordinates must therefore not be modified in place.
With ``--split lattice`` (coordinates in [0, 1)) only the upper quarter of the 2-D grid is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from specfit.encodings.hashgrid import HashGridEncoding
from specfit.models.body import relu_mlp
from specfit.models.memory import ModelSize, mlp_size
from specfit.models.params import ModelParams, hidden_layers, param, width


@dataclass(frozen=True)
class HashGridParams(ModelParams):
    """Instant-NGP hash grid and its MLP head (N_max is the FreSh knob)."""

    levels: int = param(16, "resolution levels", minimum=1, maximum=64)
    features: int = param(2, "features per level", minimum=1, maximum=2**20)
    log2_table: int = param(16, "log2 of the table entries per level", minimum=1, maximum=40)
    n_min: int = param(16, "coarsest resolution N_min", minimum=1, maximum=2**30)
    n_max: float = param(2048.0, "finest resolution N_max", minimum=1, maximum=2**30)
    init_scale: float = param(1e-4, "table init U(-s, s)", minimum=0.0, maximum=1e3)
    width: int = width(64)
    hidden_layers: int = hidden_layers(2)

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        """The MLP on ``levels x features`` values, and the tables: per level at most
        ``2^log2_table`` entries (fewer when the finest grid has fewer vertices)."""
        per_level = min(2 ** min(self.log2_table, 62), (int(self.n_max) + 2) ** in_features)
        table = self.levels * per_level * max(self.features, 1)
        embedding = self.levels * self.features
        return mlp_size(in_features, out_features, embedding, self.width, self.hidden_layers, table)

    def layer_width(self) -> int:
        return self.width


class HashGridMLP(nn.Module):
    """``HashGridEncoding -> [Linear, ReLU] x hidden_layers -> Linear``."""

    def __init__(
        self, in_features: int, out_features: int, params: HashGridParams = HashGridParams()
    ) -> None:
        super().__init__()
        self.hparams = params
        p = params
        self.encoding = HashGridEncoding(in_features, p.levels, p.features, p.log2_table, p.n_min, p.n_max,
                                         p.init_scale)
        self.net = relu_mlp(self.encoding.out_features, out_features, p.width, p.hidden_layers)
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        if coords.requires_grad:  # spatial derivatives: weights must stay differentiable
            indices, weights = self.encoding.lookup((coords + 1.0) * 0.5)
            return self.net(self.encoding.blend(indices, weights))
        cache = self._cache
        if cache is not None and cache[0] is coords:
            indices, weights = cache[1], cache[2]
        else:
            with torch.no_grad():
                indices, weights = self.encoding.lookup((coords + 1.0) * 0.5)
            if not torch.is_inference_mode_enabled():  # evaluation chunks must not evict the grid
                self._cache = (coords, indices, weights)
        return self.net(self.encoding.blend(indices, weights))
