"""Memory estimates made before anything large is allocated, so that an impossible request fails
with its size in the message instead of exhausting the machine.

Estimates are deliberately simple upper-bound-style counts that each family makes from its own
hyperparameters (:meth:`specfit.models.params.ModelParams.model_size`, mostly :func:`mlp_size`);
they decide only whether a request can possibly fit.
"""

from __future__ import annotations

import os
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


def mlp_size(in_features: int, out_features: int, embedding: int, width: int, hidden_layers: int,
             extra_params: int = 0, scratch_values: int = 0) -> ModelSize:
    """Parameter and activation counts of a network whose first layer reads ``embedding`` values
    (at least ``in_features``) and whose body is ``hidden_layers`` square layers of ``width``, plus
    ``extra_params`` (lookup tables, residuals) and ``scratch_values`` (see :class:`ModelSize`)."""
    width, layers, embedding = max(1, width), max(0, hidden_layers), max(in_features, embedding)
    body = embedding * width + layers * width * width + (layers + 2) * width + width * out_features
    activations = embedding + (layers + 1) * width + out_features
    return ModelSize(params=body + extra_params, activations_per_sample=activations,
                     scratch_values=scratch_values)


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


def check_fits(what: str, needed: int, device: torch.device, fix: str | None = None) -> None:
    """Raise :class:`SpecfitError` when ``needed`` bytes exceed what ``device`` has available;
    ``fix`` (the options that need less) ends its message."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise SpecfitError(
            f"{what} needs about {human_bytes(needed)}, more than the {human_bytes(available)} "
            f"available on {device.type}" + (f"; {fix}" if fix else "")
        )
