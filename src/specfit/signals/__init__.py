"""Signals: loading, saving and sampling grids, one module per modality."""

from specfit.signals.base import Signal
from specfit.signals.sampling import Sampling, grid_coordinates, make_sampling

__all__ = ["Sampling", "Signal", "grid_coordinates", "make_sampling"]
