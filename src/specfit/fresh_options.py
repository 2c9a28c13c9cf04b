"""The choices FreSh offers (no heavy imports: the command line reads them to build its help)."""

from __future__ import annotations

SPECTRA = ("signal", "published")
OBJECTIVES = ("fit", "generalize")
SEARCHES = ("bracket", "full")
# Fraction of the signal's power the "signal" band holds, per objective.
BAND_POWER = {"fit": 0.99, "generalize": 0.9}
# The spectrum per signal type when none is set, from the validation (docs/fresh.md): the signal
# band on audio, where the published band sees only the lowest few hertz; the published band
# elsewhere, where the signal band chose too high a frequency on 256 px images (omega_0 200
# against 80 on the default fit: 28.5 against 32.0 dB) and tied on the video.
DEFAULT_SPECTRUM = {"audio": "signal"}
# The objective when samples are held out and none is set: the one with the lower held-out regret
# in the validation suites (docs/results.md).
DEFAULT_OBJECTIVE = "fit"
