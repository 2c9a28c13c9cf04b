"""specfit: implicit neural representations with the embedding frequency chosen by FreSh.

>>> import specfit
>>> run = specfit.fit("photo.png", "siren", steps=300)   # doctest: +SKIP
>>> run.metrics.psnr, run.metrics.value                   # doctest: +SKIP

Importing specfit loads nothing heavy and changes no global state; the names below are loaded on
first use.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING

from specfit.errors import SpecfitError
from specfit.version import __version__

_LAZY = {
    "load_signal": "specfit.api",
    "build_model": "specfit.api",
    "fit": "specfit.api",
    "fit_settings": "specfit.api",
    "check_fit": "specfit.api",
    "fit_plan": "specfit.api",
    "rerun": "specfit.api",
    "resume": "specfit.api",
    "select": "specfit.api",
    "select_settings": "specfit.api",
    "spectrum": "specfit.api",
    "spectrum_of": "specfit.api",
    "ntk": "specfit.api",
    "NTKResult": "specfit.tangent.analysis",
    "SignalSpectrum": "specfit.api",
    "SpecfitWarning": "specfit.api",
    "load_run": "specfit.runs.run",
    "Run": "specfit.runs.run",
    "RunConfig": "specfit.runs.run",
    "Metrics": "specfit.runs.run",
    "FitSettings": "specfit.config.settings",
    "FitOptions": "specfit.training.loop",
    "CompactionPlan": "specfit.training.compaction",
    "Selection": "specfit.fresh.search",
    "Event": "specfit.events",
    "Phase": "specfit.events",
    "ModelEntry": "specfit.models.registry",
    "Knob": "specfit.models.registry",
    "register": "specfit.models.registry",
}

__all__ = [
    "CompactionPlan", "Event", "FitOptions", "FitSettings", "Knob", "Metrics", "ModelEntry", "NTKResult",
    "Phase", "Run", "RunConfig", "Selection", "SignalSpectrum", "SpecfitError", "SpecfitWarning",
    "__version__",
    "build_model", "check_fit", "fit", "fit_plan", "fit_settings", "load_run", "load_signal", "ntk",
    "register", "rerun", "resume", "select", "select_settings", "spectrum", "spectrum_of",
]

if _TYPE_CHECKING:
    from specfit.api import (
        SignalSpectrum,
        SpecfitWarning,
        build_model,
        check_fit,
        fit,
        fit_plan,
        fit_settings,
        load_signal,
        ntk,
        rerun,
        resume,
        select,
        select_settings,
        spectrum,
        spectrum_of,
    )
    from specfit.config.settings import FitSettings
    from specfit.events import Event, Phase
    from specfit.fresh.search import Selection
    from specfit.models.registry import Knob, ModelEntry, register
    from specfit.runs.run import Metrics, Run, RunConfig, load_run
    from specfit.tangent.analysis import NTKResult
    from specfit.training.compaction import CompactionPlan
    from specfit.training.loop import FitOptions


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'specfit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (``__all__``), loaded or not, so that ``dir(specfit)`` and completion show them."""
    return sorted(__all__)
