"""specfit: implicit neural representations with the embedding frequency chosen by FreSh.

>>> import specfit
>>> run = specfit.fit("photo.png", "siren", steps=300)   # doctest: +SKIP
>>> run.metrics.psnr, run.metrics.value                   # doctest: +SKIP

Importing specfit loads nothing heavy and changes no global state; the names below are loaded on
first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from specfit.errors import SpecfitError

__version__ = "0.1.0"

_LAZY = {
    "load_signal": "specfit.api",
    "fit": "specfit.api",
    "fit_settings": "specfit.api",
    "rerun": "specfit.api",
    "resume": "specfit.api",
    "select": "specfit.api",
    "spectrum": "specfit.api",
    "load_run": "specfit.run",
    "Run": "specfit.run",
    "RunConfig": "specfit.run",
    "Metrics": "specfit.run",
    "FitSettings": "specfit.settings",
    "FitOptions": "specfit.training",
    "CompactionPlan": "specfit.compaction",
    "Selection": "specfit.selection",
    "Event": "specfit.events",
    "Phase": "specfit.events",
    "ModelEntry": "specfit.models.registry",
    "Knob": "specfit.models.registry",
    "register": "specfit.models.registry",
}

__all__ = [
    "CompactionPlan", "Event", "FitOptions", "FitSettings", "Knob", "Metrics", "ModelEntry", "Phase", "Run",
    "RunConfig", "Selection", "SpecfitError", "__version__", "fit", "fit_settings", "load_run",
    "load_signal", "register", "rerun", "resume", "select", "spectrum",
]

if TYPE_CHECKING:
    from specfit.api import fit, fit_settings, load_signal, rerun, resume, select, spectrum
    from specfit.compaction import CompactionPlan
    from specfit.events import Event, Phase
    from specfit.models.registry import Knob, ModelEntry, register
    from specfit.run import Metrics, Run, RunConfig, load_run
    from specfit.selection import Selection
    from specfit.settings import FitSettings
    from specfit.training import FitOptions


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'specfit' has no attribute {name!r}")
