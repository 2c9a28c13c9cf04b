"""Multiresolution hash-grid encoding (Instant-NGP), in plain PyTorch.

Input coordinates are ``(N, d)`` in [0, 1] per axis, ``d`` in 1..3. Level ``l`` of ``L`` has
resolution ``N_l = floor(N_min * b**l)`` with ``b = exp((ln N_max - ln N_min) / (L - 1))``. A point
is scaled to ``x * N_l``; the ``2**d`` corners of its cell are looked up in the level's table,
directly when ``(N_l + 1)**d`` entries fit in ``T``, otherwise through the spatial hash
``(c_1 * 1) xor (c_2 * 2654435761) xor (c_3 * 805459861) mod T`` in uint32 arithmetic; the
corners' F-vectors are blended d-linearly and the levels concatenated: output ``(N, L * F)``.

All levels share one parameter tensor (level ``l`` owns rows ``offsets[l] .. offsets[l + 1] - 1``),
so a forward pass is one gather and a backward pass one scatter, for every level and corner at
once. :meth:`HashGridEncoding.lookup` and :meth:`HashGridEncoding.blend` split the work so that a
fixed set of query points (image fitting) computes its indices and weights once.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from specfit.errors import SpecfitError

PRIMES = (1, 2654435761, 805459861)
UINT32 = 0xFFFFFFFF


def level_resolutions(levels: int, n_min: int, n_max: float) -> list[int]:
    """``floor(N_min * b**l)`` for ``l = 0 .. L - 1``."""
    if levels == 1:
        return [int(n_min)]
    growth = math.exp((math.log(n_max) - math.log(n_min)) / (levels - 1))
    return [math.floor(n_min * growth**level + 1e-9) for level in range(levels)]


def spatial_hash(corners: torch.Tensor, table_size: int) -> torch.Tensor:
    """The uint32 spatial hash of integer corners ``(..., d)``, reduced modulo ``table_size``."""
    result = torch.zeros(corners.shape[:-1], dtype=torch.int64, device=corners.device)
    for axis in range(corners.shape[-1]):
        result = result ^ ((corners[..., axis] * PRIMES[axis]) & UINT32)
    return result % table_size


class _BlendedGather(torch.autograd.Function):
    """``sum_k weights[..., k] * table[indices[..., k]]`` with a scatter-add backward.

    PyTorch's own backward of ``table[indices]`` accumulates through a sort on the CPU; one
    ``index_add_`` of the weighted output gradient is about 2.5x faster here, and the
    ``(N, L, 2**d, F)`` gathered values need not be kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(indices, weights)
        ctx.rows = table.shape[0]
        return (table[indices] * weights.unsqueeze(-1)).sum(-2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        indices, weights = ctx.saved_tensors
        contributions = weights.unsqueeze(-1) * grad.unsqueeze(-2)  # (..., 2^d, F)
        table_grad = torch.zeros(ctx.rows, grad.shape[-1], dtype=grad.dtype, device=grad.device)
        table_grad.index_add_(0, indices.reshape(-1), contributions.reshape(-1, grad.shape[-1]))
        return table_grad, None, None


class HashGridEncoding(nn.Module):
    """Hash-grid encoding with ``levels`` levels of ``features`` features and ``2**log2_table`` entries.

    ``init_scale`` sets the table initialisation ``U(-init_scale, init_scale)`` (1e-4 in Instant-NGP).
    """

    def __init__(
        self,
        in_features: int,
        levels: int = 16,
        features: int = 2,
        log2_table: int = 16,
        n_min: int = 16,
        n_max: float = 2048,
        init_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        if not 1 <= in_features <= len(PRIMES):
            raise ValueError(f"hash grids take 1-3 input dimensions, got {in_features}")
        self.in_features = in_features
        self.levels = int(levels)
        self.features = int(features)
        self.table_size = 2 ** int(log2_table)
        if float(n_max) < int(n_min):
            raise SpecfitError(f"n_max ({n_max:g}) must be at least n_min ({n_min})")
        self.resolutions = level_resolutions(self.levels, int(n_min), float(n_max))
        sizes = [min(self.table_size, (n + 1) ** in_features) for n in self.resolutions]
        self.direct = [(n + 1) ** in_features <= self.table_size for n in self.resolutions]
        offsets = [0, *itertools.accumulate(sizes)]
        self.out_features = self.levels * self.features
        self.table = nn.Parameter(torch.empty(offsets[-1], self.features).uniform_(-init_scale, init_scale))
        self.register_buffer("offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.register_buffer("scales", torch.tensor(self.resolutions, dtype=torch.float32), persistent=False)
        self.register_buffer("level_sizes", torch.tensor(sizes), persistent=False)
        self.register_buffer("is_direct", torch.tensor(self.direct), persistent=False)
        strides = torch.tensor([[(n + 1) ** a for a in range(in_features)] for n in self.resolutions])
        self.register_buffer("strides", strides, persistent=False)
        corners = torch.tensor(list(itertools.product((0, 1), repeat=in_features)))
        self.register_buffer("corners", corners.flip(-1), persistent=False)  # (2^d, d)

    def lookup(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of ``table`` and d-linear weights of every level's cell corners.

        Args:
            coords: ``(N, d)`` in [0, 1].

        Returns:
            ``indices`` ``(N, L, 2**d)`` into ``table`` and ``weights`` ``(N, L, 2**d)``.
        """
        scaled = coords.unsqueeze(1) * self.scales.view(1, -1, 1)  # (N, L, d)
        cell = torch.floor(scaled)
        frac = scaled - cell
        corner = cell.long().unsqueeze(2) + self.corners  # (N, L, 2^d, d)
        direct = (corner * self.strides.unsqueeze(1)).sum(-1)
        hashed = spatial_hash(corner, self.table_size)
        local = torch.where(self.is_direct.view(1, -1, 1), direct, hashed) % self.level_sizes.view(1, -1, 1)
        indices = local + self.offsets.view(1, -1, 1)
        pick = self.corners.bool()  # (2^d, d): which side of the cell each corner sits on
        weights = torch.where(pick, frac.unsqueeze(2), 1.0 - frac.unsqueeze(2)).prod(-1)
        return indices, weights

    def blend(self, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Features ``(N, L * F)`` from :meth:`lookup`'s indices and weights."""
        if torch.is_grad_enabled() and self.table.requires_grad and not weights.requires_grad:
            return _BlendedGather.apply(self.table, indices, weights).flatten(1)
        # evaluation (also under vmap, which custom autograd functions do not support), or
        # derivatives with respect to the coordinates through the weights
        return (self.table[indices] * weights.unsqueeze(-1)).sum(-2).flatten(1)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Encode ``(N, d)`` coordinates in [0, 1] as ``(N, L * F)`` features."""
        with torch.no_grad():
            indices, weights = self.lookup(coords)
        return self.blend(indices, weights)
