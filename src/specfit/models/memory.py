"""Memory estimates made before anything large is allocated, so that an impossible request fails
with its size in the message instead of exhausting the machine.

Estimates are deliberately simple upper-bound-style counts from a model's hyperparameters (the
names every family shares: ``width``, ``hidden_layers``, ``features``, ``inputs``, ``octaves``,
hash-grid and ResFields sizes); they decide only whether a request can possibly fit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from specfit.errors import SpecfitError

FLOAT_BYTES = 4
# Per parameter while training: the value, its gradient and Adam's two moments.
TRAIN_BYTES_PER_PARAM = 4 * FLOAT_BYTES
# Per hidden activation while training: the pre-activation, the activation and their gradient.
TRAIN_BYTES_PER_ACTIVATION = 3 * FLOAT_BYTES


@dataclass(frozen=True)
class ModelSize:
    """Estimated size of a model: parameters, activations per input sample, and the scratch values
    its constructor needs (TUNER enumerates its integer-frequency box)."""

    params: int
    activations_per_sample: int
    scratch_values: int = 0


def human_bytes(count: float) -> str:
    """``1.5e9`` -> ``"1.4 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _int(params: Mapping[str, object], key: str, default: int = 0) -> int:
    value = params.get(key)
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else default


def estimate_model_size(in_features: int, out_features: int, params: Mapping[str, object]) -> ModelSize:
    """Parameter and activation counts of a model with these hyperparameters (within about 2x).

    The first layer's input is the largest embedding any family could make from ``params``
    (``features``, ``inputs``, NeRF ``octaves``, hash-grid ``levels x features``); the body is
    ``hidden_layers`` square layers of ``width``; a hash grid adds its tables and ResFields their
    per-frame residuals.
    """
    width = max(1, _int(params, "width", 1))
    layers = max(0, _int(params, "hidden_layers"))
    levels, features = _int(params, "levels"), _int(params, "features")
    embedding = max(
        in_features,
        features,
        _int(params, "inputs", width if "inputs" in params else 0),
        in_features * (2 * _int(params, "octaves") + 1),
        levels * features,
    )
    body = embedding * width + layers * width * width + (layers + 2) * width + width * out_features
    table = 0
    if levels and "log2_table" in params:
        per_level = min(2 ** min(_int(params, "log2_table"), 62), (_int(params, "n_max") + 2) ** in_features)
        table = levels * per_level * max(features, 1)
    residuals = 0
    if "n_frames" in params:
        rank = _int(params, "rank")
        residuals = 3 * rank * (_int(params, "n_frames") + width * width)
    scratch = 0
    if "band_limit" in params:  # the box [0, B] x [-B, B]^(d-1) of int64 vectors, a few copies
        band = _int(params, "band_limit")
        scratch = 6 * in_features * (band + 1) * (2 * band + 1) ** (in_features - 1)
    activations = embedding + (layers + 1) * width + out_features
    return ModelSize(params=body + table + residuals, activations_per_sample=activations,
                     scratch_values=scratch)


def available_bytes(device: torch.device) -> int | None:
    """Memory that ``device`` can still hand out (``None`` when it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def training_bytes(size: ModelSize, samples_per_step: int) -> int:
    """Bytes needed to train: parameters with optimiser state, and one step's activations."""
    return size.params * TRAIN_BYTES_PER_PARAM + size.activations_per_sample * samples_per_step * (
        TRAIN_BYTES_PER_ACTIVATION
    )


def check_fits(what: str, needed: int, device: torch.device) -> None:
    """Raise :class:`SpecfitError` when ``needed`` bytes exceed what ``device`` has available."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise SpecfitError(
            f"{what} needs about {human_bytes(needed)}, more than the {human_bytes(available)} "
            f"available on {device.type}"
        )
