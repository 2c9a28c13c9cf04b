"""Evaluating a model: value ranges, chunked prediction and blocks of a sampling grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from specfit.errors import SpecfitError

RENDER_CHUNK = 16384  # samples per model evaluation


EVAL_CHUNK = 16384  # fewer, larger products: each call costs ~8 ms on 2 CPU cores


@dataclass(frozen=True)
class Forward:
    """How a model becomes measurements, for signals seen only through them (CT, MRI, NeRF).

    Attributes:
        apply: ``apply(model, x) -> (B, M)``: the measurements at ``x`` ``(B, k)`` (measurement
            coordinates such as rays or k-space indices) predicted by ``model``; differentiable.
        chunk: measurements per evaluation call (``None``: all at once, for operators that
            evaluate the model on a whole grid whatever ``x`` holds).
        eval_limit: measurements looked at by the periodic evaluation (a fixed random subset).
        pool: ``pool(step) -> (P,)`` positions among the training samples that step ``step``'s
            mini-batch is drawn from, or ``None`` for all of them (e.g. NeRF's early steps on
            the centre of the views).
    """

    apply: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    chunk: int | None = None
    eval_limit: int = 2**18
    pool: Callable[[int], torch.Tensor | None] | None = None



def unit_from_model(values: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map model outputs to [0, 1] (``"signed"`` models produce [-1, 1])."""
    return (values + 1.0) * 0.5 if value_range == "signed" else values


def model_from_unit(values: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map [0, 1] values to the model's range."""
    return values * 2.0 - 1.0 if value_range == "signed" else values


def _signed(index: torch.Tensor, count: int) -> torch.Tensor:
    """Float32 coordinates of samples ``index`` of an axis of ``count``: ``-1 + 2 i / (count - 1)``
    computed in float64 (0 when ``count = 1``)."""
    if count == 1:
        return torch.zeros(len(index))
    return (index.double() * 2.0 / (count - 1) - 1.0).float()


def grid_blocks(
    model: nn.Module, shape: tuple[int, ...], start: int = 0, stop: int | None = None
) -> Iterator[torch.Tensor]:
    """Raw model outputs on the ``"signed"`` grid of ``shape`` (any number of axes), row-major.

    Yields ``(n, C)`` float32 CPU blocks of at most :data:`RENDER_CHUNK` samples, in order, for the
    flat sample indices ``start`` to ``stop`` (default: the whole grid). Coordinates are computed
    per block (see :func:`_signed`; within one float32 rounding of
    :func:`~specfit.signals.sampling.grid_coordinates`), so memory stays at one block whatever the
    grid's size.
    """
    device = next(model.parameters()).device
    stop = math.prod(shape) if stop is None else stop
    strides = [math.prod(shape[axis + 1 :]) for axis in range(len(shape))]
    for first in range(start, stop, RENDER_CHUNK):
        flat = torch.arange(first, min(first + RENDER_CHUNK, stop))
        picks = zip(strides, shape, strict=True)
        coords = torch.stack([_signed((flat // stride) % count, count) for stride, count in picks], dim=1)
        with torch.no_grad():
            block = model(coords.to(device)).float().cpu()
        yield block


def grid_values(
    model: nn.Module, shape: tuple[int, ...], start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """The blocks of :func:`grid_blocks` for ``start`` to ``stop`` gathered into one
    ``(stop - start, C)`` float32 tensor, allocated once."""
    stop = math.prod(shape) if stop is None else stop
    out: torch.Tensor | None = None
    position = 0
    for block in grid_blocks(model, shape, start, stop):
        if out is None:
            out = torch.empty(stop - start, block.shape[1])
        out[position : position + len(block)] = block
        position += len(block)
    if out is None:
        raise SpecfitError(f"nothing to evaluate: samples {start} to {stop} of a {shape} grid")
    return out




def predict(
    model: nn.Module, coords: torch.Tensor, chunk: int = EVAL_CHUNK, forward: Forward | None = None
) -> torch.Tensor:
    """Model output for ``(N, d)`` coordinates as ``(N, C)``, evaluated in chunks without gradients
    (through ``forward`` for measured signals: the predicted measurements at ``coords``)."""
    if forward is not None:
        chunk = forward.chunk or max(coords.shape[0], 1)
    with torch.inference_mode():
        if forward is None:
            return torch.cat([model(coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)])
        pieces = [forward.apply(model, coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)]
        return torch.cat(pieces)


