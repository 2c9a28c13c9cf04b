"""Progress of long work as typed events, for any front end (a progress bar, a notebook, a log).

The library never prints: :func:`specfit.fit` calls ``progress(event)`` with an :class:`Event`
at the start of each :class:`Phase`, after each FreSh initialisation, after each training step
and at each evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Phase(Enum):
    """The phases of a fit, in order (``PROBE`` only with ``search="probes"``, ``COMPACT`` only for
    models that compact after training)."""

    SELECT = "select"
    PROBE = "probe"
    TRAIN = "train"
    COMPACT = "compact"
    EVALUATE = "evaluate"
    WRITE = "write"


@dataclass(frozen=True)
class Event:
    """One progress report.

    Attributes:
        phase: what is running.
        done: units finished (FreSh initialisations, optimiser steps).
        total: units planned; ``None`` when unknown.
        message: set when a phase starts, e.g. ``"training siren (omega_0=60.0) for 200 steps"``.
        record: set at an evaluation: ``{"step", "loss", "psnr", "psnr_train", "psnr_test"}``
            (``iou`` instead of ``psnr`` for shapes).
    """

    phase: Phase
    done: int = 0
    total: int | None = None
    message: str = ""
    record: dict = field(default_factory=dict)


Progress = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default progress callback: does nothing."""
