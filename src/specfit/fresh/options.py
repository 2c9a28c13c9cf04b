"""The choices FreSh offers (no heavy imports: the command line reads them to build its help)."""

from __future__ import annotations

SPECTRA = ("signal", "published")
OBJECTIVES = ("fit", "generalize")
SEARCHES = ("bracket", "full", "probes")
# The searches that rank values by spectra alone; "probes" also trains FreSh's best values briefly
# (specfit.fitting.probes), which only a fit does.
SPECTRUM_SEARCHES = ("bracket", "full")
# Fraction of the signal's power the "signal" band holds, per objective.
BAND_POWER = {"fit": 0.99, "generalize": 0.9}
# The spectrum per signal type when none is set, from the validation (docs/fresh.md): the signal
# band on audio (where the published band sees only the lowest few hertz) and on images (lower
# held-out regret at 64 and 128 px, +1.85 dB on a 512 px fit); the published band on video (the
# signal band tied two values and chose the worse), volumes and shapes (no difference measured).
DEFAULT_SPECTRUM = {"audio": "signal", "image": "signal"}
# The objective when samples are held out and none is set: the one with the lower held-out regret
# in the validation suites (docs/results.md).
DEFAULT_OBJECTIVE = "fit"
