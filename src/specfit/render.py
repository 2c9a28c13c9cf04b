"""Draw a saved model at any resolution, in chunks of rows so memory stays bounded."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specfit.signals.image import image_to_array
from specfit.signals.sampling import grid_coordinates

RENDER_CHUNK = 8192


def unit_from_model(values: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map model outputs to [0, 1] (``"signed"`` models produce [-1, 1])."""
    return (values + 1.0) * 0.5 if value_range == "signed" else values


def model_from_unit(values: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map [0, 1] values to the model's range."""
    return values * 2.0 - 1.0 if value_range == "signed" else values


def render_grid(
    model: nn.Module, shape: tuple[int, ...], value_range: str, chunk: int = RENDER_CHUNK
) -> torch.Tensor:
    """Evaluate a model on a ``"signed"`` grid of ``shape`` (any number of axes, row-major).

    Returns ``(C, *shape)`` float32 in [0, 1] on the CPU. Coordinates are made per chunk, so
    only the output is held in full.
    """
    device = next(model.parameters()).device
    total = int(np.prod(shape))
    axes = [grid_coordinates((n,), "signed")[:, 0] for n in shape]
    strides = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
    pieces = []
    with torch.inference_mode():
        for start in range(0, total, chunk):
            flat = torch.arange(start, min(start + chunk, total))
            picks = zip(axes, strides, shape, strict=True)
            coords = torch.stack([axis[(flat // stride) % n] for axis, stride, n in picks], dim=1)
            pieces.append(unit_from_model(model(coords.to(device)).float(), value_range).clamp(0, 1).cpu())
    return torch.cat(pieces).T.reshape(-1, *shape)


def _row_coordinates(rows: torch.Tensor, width: int, height: int, convention: str) -> torch.Tensor:
    ys = grid_coordinates((height,), convention)[rows, 0]
    xs = grid_coordinates((width,), convention)[:, 0]
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def render_image(
    model: nn.Module,
    height: int,
    width: int,
    value_range: str,
    convention: str = "signed",
    bit_depth: int = 8,
    chunk: int = RENDER_CHUNK,
) -> np.ndarray:
    """Evaluate an image model on a ``height x width`` grid; returns ``(H, W, C)`` uint8/uint16 pixels.

    Coordinates follow ``convention`` at the new resolution, so the image spans the same domain.
    Peak memory is about ``chunk x width_of_network`` floats plus the output array.
    """
    device = next(model.parameters()).device
    rows_per_chunk = max(1, chunk // width)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, height, rows_per_chunk):
            rows = torch.arange(start, min(start + rows_per_chunk, height))
            coords = _row_coordinates(rows, width, height, convention).to(device)
            values = unit_from_model(model(coords).float(), value_range)
            block = values.T.reshape(-1, len(rows), width).cpu()
            pixels = image_to_array(block, bit_depth)
            if out is None:
                out = np.empty((height, width, pixels.shape[2]), dtype=pixels.dtype)
            out[start : start + len(rows)] = pixels
    assert out is not None
    return out
