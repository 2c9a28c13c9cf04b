"""The NTK of a registered model on a grid, with its measures: what ``specfit ntk`` and
:func:`specfit.ntk` return."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from specfit.errors import SpecfitError
from specfit.models.params import ParamValue
from specfit.models.registry import check_buildable, get_entry, resolve_params
from specfit.signals.sampling import grid_coordinates
from specfit.tangent.kernel import averaged_ntk
from specfit.tangent.measures import bandwidth, eigenvalues, profile, profile_spectrum, stationarity

DEFAULT_SIZE = {1: 128, 2: 24}  # grid points per axis
MAX_POINTS = 8192


@dataclass
class NTKResult:
    """The empirical NTK of one model on a grid of ``size`` points per axis over ``dims`` axes.

    Coordinates are specfit's signed ones: ``linspace(-1, 1, size)`` per axis, row-major.

    Attributes:
        model: the model's registry name.
        params: its hyperparameters, resolved (the defaults updated by those given).
        dims: 1 or 2.
        size: grid points per axis (``size ** dims`` points in all).
        seeds: initialisations the kernel is averaged over (seeds ``seed .. seed + seeds - 1``).
        kernel: the ``(N, N)`` kernel (float64).
        eigenvalues: its eigenvalues, largest first.
        offsets: ``(size,)`` offsets ``d`` along the first axis from the centre point, in coordinate units.
        profile: ``(size,)`` the kernel ``k(v_c, v_c + d e_1)`` at those offsets.
        frequencies: ``(size // 2 + 1,)`` frequencies of the profile's spectrum, in cycles over [-1, 1].
        spectrum: the profile's DFT magnitude, normalised to a maximum of 1.
        bandwidth: the frequency up to which 99 % of the profile spectrum's energy beyond the
            constant term lies.
        stationarity: ``||K - S||_F / ||K||_F`` with ``S`` the kernel averaged over equal offsets
            (0: ``K`` is exactly a function of ``v1 - v2``; see
            :func:`specfit.tangent.measures.stationarity`).
        seconds: the time the kernels took.
    """

    model: str
    params: dict[str, ParamValue]
    dims: int
    size: int
    seeds: int
    kernel: np.ndarray
    eigenvalues: np.ndarray
    offsets: np.ndarray
    profile: np.ndarray
    frequencies: np.ndarray
    spectrum: np.ndarray
    bandwidth: float
    stationarity: float
    seconds: float

    def to_json(self) -> dict:
        """Everything but the kernel matrix, as JSON (what ``specfit ntk --json`` prints)."""
        return {"model": self.model, "params": self.params, "dims": self.dims, "size": self.size,
                "seeds": self.seeds, "eigenvalues": self.eigenvalues.tolist(),
                "stationarity": self.stationarity, "bandwidth": self.bandwidth,
                "profile": {"offsets": self.offsets.tolist(), "values": self.profile.tolist()},
                "spectrum": {"frequencies": self.frequencies.tolist(), "values": self.spectrum.tolist()},
                "seconds": self.seconds}


def model_ntk(model: str, dims: int = 1, size: int | None = None, params: Mapping[str, object] | None = None,
              seeds: int = 3, seed: int = 0) -> NTKResult:
    """The empirical NTK of registry model ``model`` (one output, ``params`` over its defaults) on a
    ``dims``-D grid of ``size`` points per axis (default 128 in 1-D, 24 in 2-D), averaged over
    ``seeds`` initialisations, with its measures. Raises :class:`SpecfitError` for bad input."""
    entry = get_entry(model)
    if dims not in (1, 2):
        raise SpecfitError(f"dims must be 1 or 2, got {dims!r}")
    size = DEFAULT_SIZE[dims] if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size ** dims > MAX_POINTS:
        raise SpecfitError(f"size must be a whole number from 3 to {int(MAX_POINTS ** (1 / dims))} "
                           f"in {dims}-D, got {size!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 1000:
        raise SpecfitError(f"seeds must be a whole number from 1 to 1000, got {seeds!r}")
    given = dict(params or {})
    resolved = resolve_params(entry, given)
    check_buildable(entry, dims, 1, given)
    coords = grid_coordinates((size,) * dims)
    start = time.perf_counter()
    kernel = averaged_ntk(lambda: entry.create(dims, 1, given), coords, seeds, seed).numpy()
    seconds = time.perf_counter() - start
    offsets, line = profile(kernel, size, dims)
    frequencies, spectrum = profile_spectrum(line)
    return NTKResult(model, resolved, dims, size, seeds, kernel, eigenvalues(kernel), offsets, line,
                     frequencies, spectrum, bandwidth(spectrum), stationarity(kernel, size, dims), seconds)

