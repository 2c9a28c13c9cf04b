"""Integer-frequency sine networks with bounded hidden weights ("TUNER"; methods.md 3, seed 001).

``f = L o S o D``: ``D(x) = sin((2 pi / p) K x + phi)`` with a frozen integer matrix ``K`` (m, d) and
trainable phases ``phi``; hidden layers ``S(h) = sin(omega_0 (W h + b))``; ``L`` linear. Every row of
the first layer lies on the lattice ``(2 pi / p) Z^d``, so every frequency the network can generate
does too and ``f`` is ``p``-periodic along each axis.

Rows of ``K`` ("bounded" init): the basis vectors first; then about 70 % of the rows drawn without
repetition from the low box (first coordinate in [0, L], the others in [-L, L], origin excluded,
half-space only since ``-k`` is a phase shift of ``k``); the rest drawn from a coarse half-space
lattice up to the band limit ``B``, outside the low box. Column ``j`` of the first hidden layer is
bounded by ``c_j / omega_0`` (``c_low`` for low input frequencies, ``||k_j||_inf <= L``; ``c_high``
for high ones) and initialised from ``N(0, (0.3 c_j / omega_0)^2)``; deeper layers use one scalar
bound ``c_deep``. :meth:`IntegerSineNet.project` enforces the bounds; the training loop calls it
after every optimiser step. The "uniform" baseline draws ``m`` distinct integer vectors uniformly
from the half-space box ``[0, B] x [-B, B]^(d-1)`` and has no bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from specfit.errors import SpecfitError

LOW_FRACTION = 0.7
INITS = ("bounded", "uniform")


def in_half_space(vectors: torch.Tensor) -> torch.Tensor:
    """``(n, d)`` integer vectors -> ``(n,)`` mask of those whose first non-zero coordinate is positive."""
    nonzero = vectors != 0
    first = nonzero.float().argmax(1)  # first non-zero coordinate (0 for the origin)
    return vectors.gather(1, first.unsqueeze(1)).squeeze(1) > 0


def _box(high: int, in_features: int, step: int = 1) -> torch.Tensor:
    """Half-space points of ``[0, high] x [-high, high]^(d-1)`` with coordinates multiples of ``step``."""
    first = torch.arange(0, high + 1, step)
    rest = torch.arange(-(high // step) * step, high + 1, step)
    axes = [first] + [rest] * (in_features - 1)
    points = torch.cartesian_prod(*axes).reshape(-1, in_features)
    return points[in_half_space(points)]


def _sample(points: torch.Tensor, count: int) -> torch.Tensor:
    if count >= len(points):
        return points
    return points[torch.randperm(len(points))[:count]]


def bounded_frequencies(in_features: int, count: int, band_limit: int, low_limit: int) -> torch.Tensor:
    """The "bounded" init's integer rows ``(count, d)``: basis, low box, coarse high lattice."""
    basis = torch.eye(in_features, dtype=torch.long)
    if count < in_features:
        raise SpecfitError(f"width ({count}) must be at least the input dimension ({in_features})")
    low = _box(low_limit, in_features)
    low = low[(low.abs().sum(1) != 1) | (low.abs().max(1).values != 1)]  # basis vectors already in
    n_low = min(len(low), max(0, round(LOW_FRACTION * count) - in_features))
    chosen_low = _sample(low, n_low)
    n_high = count - in_features - len(chosen_low)
    high_region = (band_limit + 1) * (2 * band_limit + 1) ** (in_features - 1)
    step = max(1, math.floor((high_region / max(n_high, 1)) ** (1.0 / in_features)))
    high = torch.empty(0, in_features, dtype=torch.long)
    while step >= 1:
        high = _box(band_limit, in_features, step)
        high = high[high.abs().max(1).values > low_limit]
        if len(high) >= n_high or step == 1:
            break
        step -= 1
    rows = torch.cat([basis, chosen_low, _sample(high, n_high)])
    if len(rows) < count:  # a tiny band limit: fill with further low-box vectors, then stop
        rest = low[~(low.unsqueeze(1) == chosen_low.unsqueeze(0)).all(-1).any(1)]
        rows = torch.cat([rows, _sample(rest, count - len(rows))])
    if len(rows) < count:
        raise SpecfitError(
            f"band limit {band_limit} has only {len(rows)} distinct half-space frequencies; "
            f"raise it or lower width ({count})"
        )
    return rows


def uniform_frequencies(in_features: int, count: int, band_limit: int) -> torch.Tensor:
    """The "uniform" baseline: ``count`` distinct half-space vectors from ``[0, B] x [-B, B]^(d-1)``."""
    points = _box(band_limit, in_features)
    if len(points) < count:
        raise SpecfitError(f"band limit {band_limit} has only {len(points)} frequencies for width {count}")
    return _sample(points, count)


class IntegerSineNet(nn.Module):
    """TUNER: integer-frequency first layer, bounded sine hidden layers, linear output.

    Inputs ``(N, d)`` (any ``d``), outputs ``(N, out_features)`` in about [-1, 1].
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int = 256,
        hidden_layers: int = 1,
        band_limit: int = 40,
        low_limit: int | None = None,
        period: float = 2.1,
        omega_0: float = 30.0,
        c_low: float = 1.0,
        c_high: float = 0.5,
        c_deep: float = 1.0,
        init: str = "bounded",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise SpecfitError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if period <= 0:
            raise SpecfitError(f"period must be positive, got {period}")
        self.band_limit = int(band_limit)
        self.low_limit = int(low_limit) if low_limit is not None else max(1, self.band_limit // 3)
        self.period = float(period)
        self.omega_0 = float(omega_0)
        self.init = init
        if init == "bounded":
            rows = bounded_frequencies(in_features, width, self.band_limit, self.low_limit)
            low = rows.abs().max(1).values <= self.low_limit
            bounds = torch.where(low, torch.tensor(float(c_low)), torch.tensor(float(c_high)))
            deep = float(c_deep)
        else:
            rows = uniform_frequencies(in_features, width, self.band_limit)
            bounds = torch.full((width,), math.inf)
            deep = math.inf
        self.register_buffer("frequencies", rows.float())
        self.register_buffer("column_bounds", bounds)
        self.deep_bound = deep
        self.phase = nn.Parameter(torch.empty(width).uniform_(-math.pi / 2, math.pi / 2))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(hidden_layers))
        self.last = nn.Linear(width, out_features)
        with torch.no_grad():
            siren_bound = math.sqrt(6.0 / width) / self.omega_0
            for index, layer in enumerate([*self.hidden, self.last]):
                if init == "uniform" or layer is self.last:
                    layer.weight.uniform_(-siren_bound, siren_bound)
                elif index == 0:
                    layer.weight.normal_().mul_(0.3 * bounds / self.omega_0)
                else:
                    layer.weight.normal_().mul_(0.3 * deep / self.omega_0)
        self.project()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = torch.sin((2.0 * math.pi / self.period) * (coords @ self.frequencies.T) + self.phase)
        for layer in self.hidden:
            h = torch.sin(self.omega_0 * layer(h))
        return self.last(h)

    @torch.no_grad()
    def project(self) -> None:
        """Clamp hidden weights to their bounds: column ``j`` of the first hidden layer to
        ``+-c_j / omega_0``, deeper layers to ``+-c_deep / omega_0``."""
        if self.init == "uniform":
            return
        for index, layer in enumerate(self.hidden):
            if index == 0:
                limit = (self.column_bounds / self.omega_0).expand_as(layer.weight)
                layer.weight.copy_(torch.maximum(torch.minimum(layer.weight, limit), -limit))
            else:
                layer.weight.clamp_(-self.deep_bound / self.omega_0, self.deep_bound / self.omega_0)


