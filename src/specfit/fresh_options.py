"""The choices FreSh offers (no heavy imports: the command line reads them to build its help)."""

from __future__ import annotations

SPECTRA = ("signal", "published")
OBJECTIVES = ("fit", "generalize")
SEARCHES = ("bracket", "full")
# Fraction of the signal's power the "signal" band holds, per objective.
BAND_POWER = {"fit": 0.99, "generalize": 0.9}
# The objective when samples are held out and none is set: the one with the lower held-out regret
# in the validation suites (docs/results.md).
DEFAULT_OBJECTIVE = "fit"
