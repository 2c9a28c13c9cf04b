"""The run-folder format: the files a run folder holds and how its JSON is written.

A run folder holds ``config.json`` (everything needed to rebuild the model), ``model.safetensors``,
``metrics.json``, ``history.csv``, the training checkpoint, the reconstruction and ``report.html``;
one written by ``specfit fit`` also ``log.txt``, what the command showed on the terminal.
"""

from __future__ import annotations

import csv
from pathlib import Path

from specfit.util.files import dumps
from specfit.version import __version__

CONFIG = "config.json"


WEIGHTS = "model.safetensors"


METRICS = "metrics.json"


CHECKPOINT = "checkpoint.safetensors"  # the training state (specfit.runs.checkpoints)


FORMAT_VERSION = 1


LOG = "log.txt"  # what `specfit fit` showed on the terminal (runs written by the API have none)


# What a run folder may hold: the files a fit writes and the renders written into it later.
RUN_FILE_PATTERNS = (CONFIG, WEIGHTS, METRICS, "history.csv", CHECKPOINT, "report.html", LOG,
                     "reconstruction.*", "render-*", "baseline-*", "turntable.*", "occupancy.*")


CONFIG_MAX_BYTES = 1 << 20


def config_text(config: dict) -> str:
    """The text of ``config.json``: ``config`` marked with the run format and specfit's version."""
    return dumps({"format": FORMAT_VERSION, "specfit": __version__, **config})


HISTORY = "history.csv"


def write_history(path: Path, history: list[dict]) -> None:
    """The training history as CSV: one row per evaluation (``step``, ``loss`` and the scores on
    all, training and held-out samples; empty where a score does not apply)."""

    columns = list(dict.fromkeys(key for record in history for key in record))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["step"])
        writer.writeheader()
        for record in history:
            writer.writerow({key: "" if value is None else value for key, value in record.items()})


