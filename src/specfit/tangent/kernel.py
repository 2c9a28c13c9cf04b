"""The empirical neural tangent kernel of a network, and the closed-form kernel of a Fourier mapping.

For a network ``f(v; theta)`` with one output, the empirical NTK on points ``v_1 .. v_N`` is the
``(N, N)`` matrix ``K[i, j] = <df(v_i)/dtheta, df(v_j)/dtheta>`` over its trainable parameters
(a complex parameter counts as its real and imaginary parts). It is computed in two parts:

- every real ``nn.Linear`` applied once per forward pass to the ``(N, n_in)`` rows: with ``A`` its
  ``(N, n_in)`` inputs and ``G`` the ``(N, n_out)`` gradients of the output at its outputs, the
  per-sample Jacobian of ``f`` is ``g_i a_i^T`` for the weight and ``g_i`` for the bias, so that
  layer adds ``(G G^T) * (A A^T + 1)`` (elementwise); this needs one forward and one backward pass;
- the other trainable parameters (hash tables, phases, residual factors, complex layers, a trained
  Fourier matrix): their per-sample Jacobians from ``torch.func`` (``vmap`` of ``jacrev``) over
  chunks of points, or one backward pass per point where a custom autograd function does not
  support ``vmap``; only the parameter entries some point's gradient reaches are kept (a hash grid's
  Jacobian is sparse), and the memory they need is checked before they are kept.

``K`` is averaged over several initialisations (:func:`averaged_ntk`); :func:`mapping_kernel` and
:func:`stationary_profile` give the closed form ``h_phi(d) = sum_j a_j^2 cos(2 pi b_j . d)`` of a
Fourier mapping's kernel ``gamma(v1) . gamma(v2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from specfit.errors import SpecfitError

# Bytes the per-sample Jacobians of the non-linear-layer parameters may take, chunk and kept parts.
JACOBIAN_BYTES = 1 << 30


class AmplitudeFourierMapping(nn.Module):
    """``gamma(v) = [a_j cos(2 pi b_j . v), a_j sin(2 pi b_j . v)]_j`` for ``(m, d)`` frequencies
    ``b`` and ``(m,)`` amplitudes ``a`` (cosines first, then sines; all frozen): the general Fourier
    mapping of Tancik et al. 2020, e.g. ``a_j = 1 / j^p``, ``b_j = j``. Maps ``(N, d)`` to ``(N, 2m)``."""

    def __init__(self, frequencies: torch.Tensor, amplitudes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("frequencies", frequencies.float())
        self.register_buffer("amplitudes", amplitudes.float())
        self.out_features = 2 * frequencies.shape[0]

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        projected = (2.0 * math.pi) * (coords @ self.frequencies.T)
        return torch.cat([self.amplitudes * torch.cos(projected), self.amplitudes * torch.sin(projected)], -1)


def mapping_kernel(encoding: nn.Module, coords: torch.Tensor) -> torch.Tensor:
    """The Gram matrix ``gamma(v_i) . gamma(v_j)`` ``(N, N)`` of a mapping on ``(N, d)`` points."""
    with torch.no_grad():
        features = encoding(coords).double()
    return features @ features.T


def stationary_profile(frequencies: torch.Tensor, amplitudes: torch.Tensor, offsets: torch.Tensor
                       ) -> torch.Tensor:
    """``h_phi(d) = sum_j a_j^2 cos(2 pi b_j . d)`` at ``(K, d)`` offsets: ``(K,)`` float64."""
    phase = 2.0 * math.pi * offsets.double() @ frequencies.double().T
    return (torch.cos(phase) * amplitudes.double() ** 2).sum(-1)


def _scalar_output(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def output(coords: torch.Tensor) -> torch.Tensor:
        values = model(coords)
        if values.dim() != 2 or values.shape[1] != 1:
            raise SpecfitError("the NTK needs a model with one output, got outputs of shape "
                               f"{tuple(values.shape)}")
        return values[:, 0]

    return output


def _linear_part(model: nn.Module, coords: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, set[int]]:
    """The kernel's ``rows`` ``(R, N)`` of the real ``nn.Linear`` layers applied once to all points,
    and the ids of the parameters it covers (the others are left to :func:`_jacobian_part`)."""
    calls: dict[nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        calls.setdefault(module, []).append((inputs[0], output))

    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and not m.weight.is_complex()
               and m.weight.requires_grad and (m.bias is None or m.bias.requires_grad)]
    handles = [m.register_forward_hook(record) for m in linears]
    try:
        with torch.enable_grad():
            values = _scalar_output(model)(coords)
    finally:
        for handle in handles:
            handle.remove()
    n = coords.shape[0]
    usable = [m for m in linears if len(calls.get(m, ())) == 1 and calls[m][0][0].shape[:1] == (n,)
              and calls[m][0][0].dim() == 2 and calls[m][0][1].requires_grad]
    kernel = torch.zeros(len(rows), n, dtype=torch.float64, device=coords.device)
    if not usable:
        return kernel, set()
    outputs = [calls[m][0][1] for m in usable]
    grads = torch.autograd.grad(values.sum(), outputs, allow_unused=True)
    covered: set[int] = set()
    for module, grad in zip(usable, grads, strict=True):
        inputs = calls[module][0][0].detach()
        if grad is None:  # the layer does not reach the output
            grad = torch.zeros_like(outputs[0][:, :1])
        gram = inputs[rows] @ inputs.T + (1.0 if module.bias is not None else 0.0)
        kernel += ((grad[rows] @ grad.T) * gram).double()
        covered |= {id(p) for p in module.parameters()}
    return kernel, covered


def _per_sample_jacobian(model: nn.Module, names: list[str], coords: torch.Tensor) -> torch.Tensor:
    """``(n, P)`` per-sample gradients of the output with respect to the parameters ``names`` (real
    and imaginary parts of a complex one side by side), by ``torch.func`` where it applies."""
    params = dict(model.named_parameters())
    chosen = {name: params[name].detach() for name in names}
    real = {name: torch.view_as_real(p) if p.is_complex() else p for name, p in chosen.items()}

    def one(values: dict[str, torch.Tensor], point: torch.Tensor) -> torch.Tensor:
        given = {name: torch.view_as_complex(values[name]) if chosen[name].is_complex() else values[name]
                 for name in names}
        return torch.func.functional_call(model, given, (point.unsqueeze(0),))[0, 0]

    try:
        jac = torch.func.vmap(torch.func.jacrev(one), in_dims=(None, 0))(real, coords)
        return torch.cat([jac[name].reshape(coords.shape[0], -1) for name in names], 1)
    except (RuntimeError, NotImplementedError):  # e.g. a custom autograd.Function without vmap support
        pass
    rows = []
    with torch.enable_grad():
        values = _scalar_output(model)(coords)
        for i in range(coords.shape[0]):
            grads = torch.autograd.grad(values[i], [params[name] for name in names], retain_graph=True,
                                        allow_unused=True)
            rows.append(torch.cat([_flat(g, params[name]) for name, g in zip(names, grads, strict=True)]))
    return torch.stack(rows)


def _flat(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor:
    grad = torch.zeros_like(param) if grad is None else grad.detach()
    return (torch.view_as_real(grad) if grad.is_complex() else grad).reshape(-1)


def _rows_by_double_backward(model: nn.Module, coords: torch.Tensor, names: list[str], rows: torch.Tensor
                             ) -> torch.Tensor:
    """Rows ``(R, N)`` of the kernel of the parameters ``names``, ``J g_r`` for each row's gradient
    ``g_r``, without per-sample Jacobians: ``J g = d/dw <J^T w, g>`` by a second backward pass."""
    params = dict(model.named_parameters())
    chosen = [params[name] for name in names]
    out = []
    with torch.enable_grad():
        values = _scalar_output(model)(coords)
        weights = torch.zeros_like(values, requires_grad=True)
        pulled = torch.autograd.grad(values, chosen, grad_outputs=weights, create_graph=True,
                                     allow_unused=True)
        for row in rows.tolist():
            own = torch.autograd.grad(values[row], chosen, retain_graph=True, allow_unused=True)
            total = sum((torch.real(p * g.conj()).sum() for p, g in zip(pulled, own, strict=True)
                         if p is not None and g is not None), torch.zeros((), device=coords.device))
            line = torch.autograd.grad(total, weights, retain_graph=True, allow_unused=True)[0] \
                if total.requires_grad else None
            out.append(torch.zeros_like(values) if line is None else line.detach())
    return torch.stack(out).double()


def _jacobian_part(model: nn.Module, coords: torch.Tensor, covered: set[int], budget: int,
                   rows: torch.Tensor | None = None) -> torch.Tensor:
    """The kernel's ``rows`` ``(R, N)`` (all: ``(N, N)``) of the trainable parameters not in
    ``covered``: from per-sample Jacobians, or for a few rows by :func:`_rows_by_double_backward`."""
    n = coords.shape[0]
    rows = torch.arange(n) if rows is None else rows
    names = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    kernel = torch.zeros(len(rows), n, dtype=torch.float64, device=coords.device)
    if not names:
        return kernel
    if 8 * len(rows) <= n:
        return _rows_by_double_backward(model, coords, names, rows)
    params = dict(model.named_parameters())
    width = sum(2 * params[k].numel() if params[k].is_complex() else params[k].numel() for k in names)
    chunk = max(1, min(n, budget // (4 * width * 4)))
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # per chunk: its nonzero columns and their values
    kept_bytes = 0
    for start in range(0, n, chunk):
        jac = _per_sample_jacobian(model, names, coords[start:start + chunk]).detach()
        columns = torch.nonzero(jac.abs().amax(0) > 0).flatten()
        kept.append((columns, jac[:, columns].double()))
        kept_bytes += 8 * kept[-1][1].numel()
        if kept_bytes > budget:
            raise SpecfitError(f"the NTK of this model on {n} points needs more than {budget >> 20} MiB "
                               "for its per-sample gradients; use a smaller --size or model")
    union = torch.unique(torch.cat([columns for columns, _ in kept]))
    if 8 * n * union.numel() > 2 * budget:
        raise SpecfitError(f"the NTK of this model on {n} points needs more than {budget >> 19} MiB; "
                           "use a smaller --size or model")
    dense = torch.zeros(n, union.numel(), dtype=torch.float64, device=coords.device)
    row = 0
    for columns, values in kept:
        dense[row:row + values.shape[0], torch.searchsorted(union, columns)] = values
        row += values.shape[0]
    return dense[rows] @ dense.T


def empirical_ntk(model: nn.Module, coords: torch.Tensor, budget: int = JACOBIAN_BYTES,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """The empirical NTK ``(N, N)`` float64 of ``model`` (one output) on ``(N, d)`` points, over its
    trainable parameters, or only its ``rows`` (indices, ``(R, N)``: cheap for linear layers);
    ``budget`` bounds the bytes of the per-sample gradients kept (see the module docstring).
    Raises :class:`SpecfitError` when they would need more."""
    model.eval()
    rows = torch.arange(coords.shape[0]) if rows is None else rows
    linear, covered = _linear_part(model, coords, rows)
    return linear + _jacobian_part(model, coords, covered, budget, rows)


def averaged_ntk(build: Callable[[], nn.Module], coords: torch.Tensor, seeds: int, seed: int = 0,
                 budget: int = JACOBIAN_BYTES, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of :func:`empirical_ntk` (its ``rows``) over ``seeds`` initialisations: ``build()``
    is called after ``torch.manual_seed(seed + s)`` for ``s = 0 .. seeds - 1`` (the global random
    stream is restored afterwards)."""
    total = torch.zeros(coords.shape[0] if rows is None else len(rows), coords.shape[0], dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        for s in range(seeds):
            torch.manual_seed(seed + s)
            total += empirical_ntk(build(), coords, budget, rows)
    return total / seeds
