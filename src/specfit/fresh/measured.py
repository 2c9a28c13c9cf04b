"""FreSh for signals seen only through measurements (CT projections, MRI k-space, camera views).

The network never sees such a signal, only measurements of it, so FreSh compares spectra of what is
measured: the target's vector is taken of the measured data (the sinogram, the sampled k-space, the
training views), and a candidate's of the same measurement of its untrained output (its projection,
its sampled k-space, its rendered views). Each measured task builds one :class:`MeasuredSpectrum`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from specfit.fresh.spectra import Band


@dataclass
class MeasuredSpectrum:
    """What FreSh compares for a measured signal.

    Attributes:
        band: the bins of every vector (see :mod:`specfit.fresh.spectra`).
        target: the measured data's normalised spectrum vector, ``(band.bins,)``.
        observe: ``observe(model) -> (C', *layout)``: the measurement of an untrained ``model``
            (in the layout ``vectors`` takes; evaluated without gradients).
        vectors: ``vectors(observations) -> (R, band.bins)``: normalised spectrum vectors of ``R``
            observations stacked as ``(R, C', *layout)``.
        in_features: the model's coordinate dimension.
        out_features: the model's output channels.
        description: what is compared, for reports (e.g. "1-D spectra of the 20 projections").
        notes: remarks for the user (a spectrum shrunk for a small measurement ...).
    """

    band: Band
    target: torch.Tensor
    observe: Callable[[nn.Module], torch.Tensor]
    vectors: Callable[[torch.Tensor], torch.Tensor]
    in_features: int
    out_features: int
    description: str
    notes: list[str] = field(default_factory=list)
