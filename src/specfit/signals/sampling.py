"""Sampling grids and train / held-out splits.

Coordinates are ``(N, d)`` in row-major order of the signal's spatial axes (for an image, axis 0
is the row ``y`` and axis 1 the column ``x``). Two conventions:

- ``"signed"``: each axis in [-1, 1], endpoints included (sample ``i`` of ``N`` maps to
  ``-1 + 2 i / (N - 1)``). The default for every model.
- ``"unit"``: each axis in [0, 1), sample ``i`` of ``N`` maps to ``i / N``. Used by the
  Fourier-features lattice protocol.

Splits:

- ``"all"``: train on every sample, nothing held out.
- ``"holdout"``: a seeded random fraction (default 10 %) of samples is held out.
- ``"lattice"``: train on the even-even lattice, test on the odd-odd lattice (images only);
  the coordinates use the ``"unit"`` convention so that the training lattice sits at
  ``linspace(0, 1, N/2 + 1)[:-1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specfit.errors import SpecfitError

SPLITS = ("all", "holdout", "lattice")
CONVENTIONS = ("signed", "unit")


def grid_coordinates(shape: tuple[int, ...], convention: str = "signed") -> torch.Tensor:
    """Coordinates of every sample of a grid of ``shape``, as ``(prod(shape), len(shape))``."""
    axes = []
    for n in shape:
        if convention == "signed":
            axes.append(torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1))
        elif convention == "unit":
            axes.append(torch.arange(n, dtype=torch.float32) / n)
        else:
            raise SpecfitError(
                f"unknown coordinate convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


@dataclass
class Sampling:
    """Where a signal is sampled and which samples train.

    Attributes:
        coords: ``(N, d)`` coordinates of all samples, row-major.
        train: indices of training samples into ``coords``.
        test: indices of held-out samples, or ``None`` when nothing is held out.
        convention: ``"signed"`` or ``"unit"`` (see module docstring).
        split: ``"all"``, ``"holdout"`` or ``"lattice"``.
    """

    coords: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor | None
    convention: str
    split: str

    def describe(self) -> dict:
        return {
            "split": self.split,
            "convention": self.convention,
            "train_samples": int(self.train.numel()),
            "test_samples": 0 if self.test is None else int(self.test.numel()),
        }


def make_sampling(
    shape: tuple[int, ...], split: str = "holdout", holdout: float = 0.1, seed: int = 0
) -> Sampling:
    """Build the sampling grid and split for a signal of spatial ``shape``."""
    total = 1
    for n in shape:
        total *= n
    if split == "all":
        coords = grid_coordinates(shape, "signed")
        return Sampling(coords, torch.arange(total), None, "signed", split)
    if split == "holdout":
        if not 0.0 < holdout < 1.0:
            raise SpecfitError(f"--holdout must be in (0, 1), got {holdout}")
        coords = grid_coordinates(shape, "signed")
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(total, generator=generator)
        n_test = max(1, round(holdout * total))
        return Sampling(
            coords, order[n_test:].sort().values, order[:n_test].sort().values, "signed", split
        )
    if split == "lattice":
        if len(shape) != 2:
            raise SpecfitError("the lattice split is defined for images only")
        coords = grid_coordinates(shape, "unit")
        rows = torch.arange(shape[0]).view(-1, 1)
        cols = torch.arange(shape[1]).view(1, -1)
        flat = (rows * shape[1] + cols).reshape(-1)
        even = ((rows % 2 == 0) & (cols % 2 == 0)).reshape(-1)
        odd = ((rows % 2 == 1) & (cols % 2 == 1)).reshape(-1)
        return Sampling(coords, flat[even], flat[odd], "unit", split)
    raise SpecfitError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def fill_held_out(values: torch.Tensor, known: torch.Tensor, max_rounds: int = 64) -> torch.Tensor:
    """``values`` ``(C, *spatial)`` with every sample where ``known`` ``(*spatial)`` is false replaced
    by the mean of its known neighbours (the 3^d block around it), repeated outwards until every
    sample is known. The known samples are returned unchanged; nothing else is read.
    """
    pool = _POOLS[known.dim()]
    border = (1, 1) * known.dim()  # zeros around the grid, padded here: avg_pool3d refuses a side under 3
    known = known.clone()
    filled = torch.where(known, values, torch.zeros((), dtype=values.dtype, device=values.device))
    for _ in range(max_rounds):
        if bool(known.all()):
            break
        weight = known.to(values.dtype).unsqueeze(0)
        total = pool(F.pad((filled * weight).unsqueeze(0), border), 3, stride=1)[0]
        count = pool(F.pad(weight.unsqueeze(0), border), 3, stride=1)[0]
        new = (~known) & (count[0] > 0)
        filled = torch.where(new, total / count.clamp_min(1e-12), filled)
        known = known | new
    return filled


def training_view(
    values: torch.Tensor, sampling: Sampling
) -> tuple[torch.Tensor, torch.Tensor]:
    """What training sees of a grid signal ``(C, *spatial)``, as a grid FreSh can take a spectrum of.

    Returns ``(target, coords)``: with nothing held out, the signal and all coordinates; with a
    random hold-out, the signal with its held-out samples filled from their training neighbours
    (:func:`fill_held_out`); with the lattice split, the training lattice itself (half the size on
    each axis) and its coordinates.
    """
    if sampling.test is None:
        return values, sampling.coords
    spatial = tuple(values.shape[1:])
    if sampling.split == "lattice":
        rows, cols = (spatial[0] + 1) // 2, (spatial[1] + 1) // 2
        return values[:, ::2, ::2], sampling.coords[sampling.train.to(sampling.coords.device)].reshape(
            rows * cols, -1)
    known = torch.zeros(values[0].numel(), dtype=torch.bool, device=values.device)
    known[sampling.train.to(values.device)] = True
    return fill_held_out(values, known.reshape(spatial)), sampling.coords
