"""Integer-frequency sine networks with bounded hidden weights ("TUNER").

``f = L o S o D``: ``D(x) = sin((2 pi / p) K x + phi)`` with a frozen integer matrix ``K`` (m, d) and
trainable phases ``phi`` (m,); hidden layers ``S(h) = sin(omega_0 (W h + b))``; ``L`` linear. The
number of input frequencies ``m`` (``inputs``) is independent of the hidden ``width``; the first
hidden weight is ``(width, m)``. Every row of the first layer lies on the lattice ``(2 pi / p) Z^d``,
so every frequency the network can generate does too and ``f`` is ``p``-periodic along each axis.

Rows of ``K`` ("bounded" init): the basis vectors first; then about 70 % of the rows drawn without
repetition from the low box (first coordinate in [0, L], the others in [-L, L], origin excluded,
half-space only since ``-k`` is a phase shift of ``k``); the rest drawn from a coarse half-space
lattice up to the band limit ``B``, outside the low box. Column ``j`` of the first hidden layer is
bounded by ``c_j / omega_0`` (``c_low`` for low input frequencies, ``||k_j||_inf <= L``; ``c_high``
for high ones) and initialised from ``N(0, (0.3 c_j / omega_0)^2)``; deeper layers use one scalar
bound ``c_deep``. The "uniform" baseline draws ``m`` distinct integer vectors uniformly from the
half-space box ``[0, B] x [-B, B]^(d-1)`` and has no bounds.

Two ways of bounding the first hidden layer (``bound``):

- ``"fixed"``: :meth:`IntegerSineNet.project` clamps column ``j`` to ``+-c_j / omega_0`` after
  every optimiser step (the training loop calls it).
- ``"learned"``: the effective weight is ``(c / omega_0) * tanh(V)`` column-wise with trainable
  ``c`` (m,) and ``V`` (width, m); :meth:`IntegerSineNet.regularization` adds ``bound_l1 * ||c||_1``.

Compaction support (the TUNER paper's pruning and add-prune): a non-persistent ``column_penalty`` (m,)
adds ``sum_j column_penalty[j] * ||W_eff[:, j]||_1`` to :meth:`~IntegerSineNet.regularization`;
:meth:`~IntegerSineNet.prune_inputs` removes input frequencies and :meth:`~IntegerSineNet.densify`
adds new ones at ``2 k_j``. Both replace parameters by new, differently shaped ones: rebuild any
optimiser afterwards (every :class:`specfit.training.loop.Trainer` builds its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from specfit.errors import SpecfitError
from specfit.models.memory import ModelSize, mlp_size
from specfit.models.params import ModelParams, frequency, hidden_layers, param, scale, width

LOW_FRACTION = 0.7
INITS = ("bounded", "uniform")
BOUNDS = ("fixed", "learned")
TANH_CLIP = 0.999  # |ratio| limit before atanh when the learned-bound layer is initialised
DENSIFY_SCALE = 1e-3  # new inputs start at this fraction of the usual column init (barely change f)


@dataclass(frozen=True)
class TunerParams(ModelParams):
    """TUNER's hyperparameters (the band limit B is the FreSh knob; L = B/3 unless set)."""

    width: int = width(256)
    hidden_layers: int = hidden_layers(1)
    band_limit: int = param(40, "band limit B of the integer frequencies", minimum=1, maximum=2**20)
    low_limit: int | None = param(None, "low box L (none: B/3)", minimum=1, maximum=2**20)
    period: float = param(2.1, "period p of the first layer", minimum=1e-6, maximum=1e9)
    omega_0: float = frequency(30.0, "hidden-layer frequency omega_0")
    c_low: float = scale(1.0, "column bound of the low frequencies")
    c_high: float = scale(0.5, "column bound of the high frequencies")
    c_deep: float = scale(1.0, "column bound of deeper layers")
    inputs: int | None = param(None, "input frequencies m (none: the width)", minimum=1, maximum=2**20)
    bound: str = param("fixed", "fixed column bounds, or learned c_j tanh(V)", choices=BOUNDS)
    bound_l1: float = scale(2e-5, "L1 weight on the learned bounds")

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        """The network on ``inputs`` frequencies, and the scratch of drawing them: the box
        ``[0, B] x [-B, B]^(d-1)`` of int64 vectors, a few copies."""
        band = self.band_limit
        scratch = 6 * in_features * (band + 1) * (2 * band + 1) ** (in_features - 1)
        inputs = self.width if self.inputs is None else self.inputs
        return mlp_size(in_features, out_features, inputs, self.width, self.hidden_layers,
                        scratch_values=scratch)

    def layer_width(self) -> int:
        return self.width


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
        raise SpecfitError(
            f"the number of input frequencies ({count}; inputs, default width) must be at least "
            f"the input dimension ({in_features})"
        )
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
            f"raise it or lower the number of inputs ({count}; default width)"
        )
    return rows


def uniform_frequencies(in_features: int, count: int, band_limit: int) -> torch.Tensor:
    """The "uniform" baseline: ``count`` distinct half-space vectors from ``[0, B] x [-B, B]^(d-1)``."""
    points = _box(band_limit, in_features)
    if len(points) < count:
        raise SpecfitError(f"band limit {band_limit} has only {len(points)} frequencies for {count} inputs")
    return _sample(points, count)


class TanhBoundedLinear(nn.Module):
    """The learned-bound first hidden layer: weight ``(c / omega_0) * tanh(raw)``, bias ``b``.

    ``raw`` is ``(out, in)`` and the trainable column bounds ``c`` are ``(in,)``, so column ``j`` of
    the effective weight lies within ``+-|c_j| / omega_0`` whatever the optimiser does. The
    :attr:`weight` property is the effective weight, the one :meth:`forward` uses.
    """

    def __init__(self, raw: torch.Tensor, c: torch.Tensor, bias: torch.Tensor, omega_0: float) -> None:
        super().__init__()
        self.raw = nn.Parameter(raw)
        self.c = nn.Parameter(c)
        self.bias = nn.Parameter(bias)
        self.omega_0 = float(omega_0)
        self.out_features, self.in_features = raw.shape

    @staticmethod
    def raw_for(weight: torch.Tensor, c: torch.Tensor, omega_0: float) -> torch.Tensor:
        """``raw`` with ``(c / omega_0) tanh(raw) == weight``, the ratio clipped to ``+-TANH_CLIP``."""
        return torch.atanh((weight * omega_0 / c).clamp(-TANH_CLIP, TANH_CLIP))

    @property
    def weight(self) -> torch.Tensor:
        """The effective ``(out, in)`` weight ``(c / omega_0) * tanh(raw)``."""
        return (self.c / self.omega_0) * torch.tanh(self.raw)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bound=c*tanh"


class IntegerSineNet(nn.Module):
    """TUNER: integer-frequency first layer, bounded sine hidden layers, linear output.

    Inputs ``(N, d)`` (any ``d``), outputs ``(N, out_features)`` in about [-1, 1]. ``inputs`` is the
    number ``m`` of input frequencies (``None``: equal to ``width``).
    """

    def __init__(
        self, in_features: int, out_features: int, params: TunerParams = TunerParams(), init: str = "bounded"
    ) -> None:
        super().__init__()
        width, hidden_layers, inputs, bound = params.width, params.hidden_layers, params.inputs, params.bound
        period, bound_l1 = params.period, params.bound_l1
        if init not in INITS:
            raise SpecfitError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if bound not in BOUNDS:
            raise SpecfitError(f"bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
        if bound == "learned" and (init != "bounded" or hidden_layers < 1):
            raise SpecfitError("bound=learned needs the bounded init and at least one hidden layer")
        if period <= 0:
            raise SpecfitError(f"period must be positive, got {period}")
        if not (bound_l1 >= 0 and math.isfinite(bound_l1)):
            raise SpecfitError(f"bound_l1 must be a non-negative number, got {bound_l1}")
        m = int(width if inputs is None else inputs)
        if m < 1:
            raise SpecfitError(f"inputs must be at least 1, got {m}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.width, self.inputs = int(width), m
        self.band_limit = int(params.band_limit)
        low_limit = params.low_limit
        self.low_limit = int(low_limit) if low_limit is not None else max(1, self.band_limit // 3)
        self.period = float(period)
        self.omega_0 = float(params.omega_0)
        self.c_low, self.c_high, self.c_deep = float(params.c_low), float(params.c_high), float(params.c_deep)
        self.init, self.bound, self.bound_l1 = init, bound, float(bound_l1)
        self.hparams = params
        if init == "bounded":
            rows = bounded_frequencies(in_features, m, self.band_limit, self.low_limit)
            bounds = self._rule_bounds(rows.float())
            deep = self.c_deep
        else:
            rows = uniform_frequencies(in_features, m, self.band_limit)
            bounds = torch.full((m,), math.inf)
            deep = math.inf
        self.register_buffer("frequencies", rows.float())
        self.register_buffer("column_bounds", bounds)
        self.register_buffer("column_penalty", torch.zeros(m), persistent=False)
        self.deep_bound = deep
        self.phase = nn.Parameter(torch.empty(m).uniform_(-math.pi / 2, math.pi / 2))
        sizes = [m] + [self.width] * hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(hidden_layers))
        self.last = nn.Linear(sizes[-1], out_features)
        with torch.no_grad():
            for index, layer in enumerate([*self.hidden, self.last]):
                if init == "uniform" or layer is self.last:
                    siren_bound = math.sqrt(6.0 / layer.in_features) / self.omega_0
                    layer.weight.uniform_(-siren_bound, siren_bound)
                elif index == 0:
                    layer.weight.normal_().mul_(0.3 * bounds / self.omega_0)
                else:
                    layer.weight.normal_().mul_(0.3 * deep / self.omega_0)
        if bound == "learned":
            first = self.hidden[0]
            with torch.no_grad():
                raw = TanhBoundedLinear.raw_for(first.weight, bounds, self.omega_0)
            self.hidden[0] = TanhBoundedLinear(raw, bounds.clone(), first.bias.detach().clone(), self.omega_0)
        self.project()

    def _rule_bounds(self, rows: torch.Tensor) -> torch.Tensor:
        """The low/high rule: ``c_low`` where ``||k||_inf <= L``, else ``c_high``; ``(n, d) -> (n,)``."""
        low = rows.abs().amax(1) <= self.low_limit
        return torch.where(low, torch.tensor(self.c_low), torch.tensor(self.c_high)).to(rows)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = torch.sin((2.0 * math.pi / self.period) * (coords @ self.frequencies.T) + self.phase)
        for layer in self.hidden:
            h = torch.sin(self.omega_0 * layer(h))
        return self.last(h)

    def _first(self) -> nn.Module:
        if not self.hidden:
            raise SpecfitError("this operation needs at least one hidden layer (hidden_layers >= 1)")
        return self.hidden[0]

    def first_hidden_weight(self) -> torch.Tensor:
        """The effective first hidden weight ``(width, m)`` (with gradient), for either ``bound``."""
        return self._first().weight

    def input_strength(self) -> torch.Tensor:
        """``(m,)`` L1 norm of each column of the effective first hidden weight (detached)."""
        return self.first_hidden_weight().detach().abs().sum(0)

    def regularization(self) -> torch.Tensor:
        """Scalar added to the loss: ``sum_j column_penalty[j] * ||W_eff[:, j]||_1`` plus, for
        ``bound="learned"``, ``bound_l1 * ||c||_1``. A (zero) tensor even when nothing is penalised."""
        if not self.hidden:
            return self.phase.new_zeros(())
        first = self.hidden[0]
        total = torch.dot(self.column_penalty, first.weight.abs().sum(0))
        if self.bound == "learned":
            total = total + self.bound_l1 * first.c.abs().sum()
        return total

    @torch.no_grad()
    def project(self) -> None:
        """Clamp hidden weights to their bounds: column ``j`` of the first hidden layer to
        ``+-c_j / omega_0`` (``bound="fixed"``; the learned variant is bounded by ``tanh``),
        deeper layers to ``+-c_deep / omega_0``."""
        if self.init == "uniform":
            return
        for index, layer in enumerate(self.hidden):
            if index == 0:
                if self.bound == "fixed":
                    limit = (self.column_bounds / self.omega_0).expand_as(layer.weight)
                    layer.weight.copy_(torch.maximum(torch.minimum(layer.weight, limit), -limit))
            else:
                layer.weight.clamp_(-self.deep_bound / self.omega_0, self.deep_bound / self.omega_0)

    def _indices(self, indices: torch.Tensor | list[int], what: str) -> torch.Tensor:
        index = torch.as_tensor(indices).reshape(-1)
        if index.is_floating_point() or index.dtype == torch.bool:
            raise SpecfitError(f"{what} must be integer indices")
        index = index.long().to(self.phase.device)
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= self.inputs):
            raise SpecfitError(f"{what} must lie in [0, {self.inputs}), got {index.tolist()}")
        return index

    @staticmethod
    def _grown(old: nn.Parameter, data: torch.Tensor) -> nn.Parameter:
        return nn.Parameter(data.detach().clone(), requires_grad=old.requires_grad)

    @torch.no_grad()
    def prune_inputs(self, keep: torch.Tensor | list[int]) -> None:
        """Keep only the input frequencies ``keep`` (indices, kept in ascending order); remove the rest.

        Slices ``frequencies``, ``column_bounds``, ``column_penalty``, ``phase`` and the first hidden
        layer's columns (``weight``; ``raw`` and ``c`` for the learned bound). The parameters are
        replaced by new, smaller ones: rebuild any optimiser afterwards. Removing ``K`` inputs removes
        ``K * (1 + width)`` trainable values (``K * (2 + width)`` with a learned bound).
        """
        first = self._first()
        keep = torch.unique(self._indices(keep, "keep"))  # sorted, duplicates dropped
        if len(keep) < self.in_features:
            raise SpecfitError(f"keep at least {self.in_features} input frequencies, got {len(keep)}")
        self.frequencies = self.frequencies[keep].clone()
        self.column_bounds = self.column_bounds[keep].clone()
        self.column_penalty = self.column_penalty[keep].clone()
        self.phase = self._grown(self.phase, self.phase[keep])
        if self.bound == "learned":
            first.raw = self._grown(first.raw, first.raw[:, keep])
            first.c = self._grown(first.c, first.c[keep])
        else:
            first.weight = self._grown(first.weight, first.weight[:, keep])
        first.in_features = self.inputs = len(keep)
        self.hparams = replace(self.hparams, **self.config_params())

    @torch.no_grad()
    def densify(self, columns: torch.Tensor | list[int]) -> torch.Tensor:
        """Add input frequencies at ``2 k_j`` for the inputs ``columns``; returns their new indices.

        Doubles already present (as ``k`` or ``-k``) or requested twice are skipped. New inputs are
        appended: phase ``U(-pi/2, pi/2)``; bound ``c`` by the low/high rule (``||2 k_j||_inf <= L``:
        ``c_low``, else ``c_high``; infinite for the uniform init); weight column
        ``DENSIFY_SCALE * N(0, (0.3 c / omega_0)^2)`` (1e-3 of the usual init, so that ``f`` barely
        changes at insertion while the column still gets gradient). Frequencies may exceed the band
        limit. Parameters are replaced by larger ones: rebuild any optimiser afterwards.
        """
        first = self._first()
        doubled = (2 * self.frequencies[self._indices(columns, "columns")]).round().long().tolist()
        seen = {tuple(r) for r in self.frequencies.round().long().tolist()}
        fresh: list[list[int]] = []
        for row in doubled:
            if tuple(row) in seen or tuple(-v for v in row) in seen:
                continue
            seen.add(tuple(row))
            fresh.append(row)
        device = self.phase.device
        start, count = self.inputs, len(fresh)
        if count == 0:
            return torch.empty(0, dtype=torch.long, device=device)
        rows = torch.tensor(fresh, dtype=self.frequencies.dtype, device=device)
        if self.init == "bounded":
            bounds = self._rule_bounds(rows)
            scale = 0.3 * bounds / self.omega_0
        else:
            bounds = torch.full((count,), math.inf, device=device)
            scale = torch.full((count,), math.sqrt(6.0 / self.inputs) / self.omega_0, device=device)
        weight = DENSIFY_SCALE * scale * torch.randn(self.width, count, device=device)
        phase = torch.empty(count, device=device).uniform_(-math.pi / 2, math.pi / 2)
        self.frequencies = torch.cat([self.frequencies, rows])
        self.column_bounds = torch.cat([self.column_bounds, bounds])
        self.column_penalty = torch.cat([self.column_penalty, torch.zeros_like(bounds)])
        self.phase = self._grown(self.phase, torch.cat([self.phase, phase]))
        if self.bound == "learned":
            raw = TanhBoundedLinear.raw_for(weight, bounds, self.omega_0)
            first.raw = self._grown(first.raw, torch.cat([first.raw, raw], 1))
            first.c = self._grown(first.c, torch.cat([first.c, bounds]))
        else:
            first.weight = self._grown(first.weight, torch.cat([first.weight, weight], 1))
        first.in_features = self.inputs = start + count
        self.hparams = replace(self.hparams, **self.config_params())
        return torch.arange(start, start + count, device=device)

    def config_params(self) -> dict[str, float | int | str]:
        """Constructor parameters (all but ``in_features``, ``out_features`` and ``init``) that rebuild
        this exact shape, for a run's ``config["params"]`` after pruning or densifying.

        Rebuilding draws fresh frequencies that ``load_state_dict`` then overwrites (``frequencies``
        and ``column_bounds`` are saved). ``band_limit`` is raised to the largest ``||k||_inf`` when
        densifying went beyond it, so that the band holds ``inputs`` distinct frequencies and the
        rebuild cannot fail; ``low_limit`` is written explicitly so it does not move with it.
        """
        top = int(self.frequencies.abs().max()) if self.frequencies.numel() else 0
        return {
            "width": self.width, "hidden_layers": len(self.hidden),
            "band_limit": max(self.band_limit, top), "low_limit": self.low_limit, "period": self.period,
            "omega_0": self.omega_0, "c_low": self.c_low, "c_high": self.c_high, "c_deep": self.c_deep,
            "inputs": self.inputs, "bound": self.bound, "bound_l1": self.bound_l1,
        }
