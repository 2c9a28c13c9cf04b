"""Checks of the fields of a saved run's ``config.json``, each failing with one line that names the
file and the field: used by the run-folder schema (:mod:`specfit.runs.schema`) and by every kind's
check of its saved signal description (:attr:`specfit.kinds.kind.SignalKind.check_description`).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from pathlib import Path

from specfit.errors import SpecfitError

MAX_SIGNAL_SIDE = 2**31  # samples along one axis of a signal
BIT_DEPTHS = (8, 16, 32)

_show = reprlib.Repr()
_show.maxstring = _show.maxother = 40


def shown(value: object) -> str:
    """``value`` as a message shows it: its ``repr``, long ones cut short."""
    return _show.repr(value)


def fail(where: Path, field: str, expected: str, value: object) -> SpecfitError:
    """The error for ``field`` of the file ``where`` holding ``value`` instead of ``expected``."""
    return SpecfitError(f"{where}: {field} must be {expected}, got {shown(value)}")


def mapping(value: object, where: Path, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise fail(where, field, "a mapping", value)
    return value


def integer(value: object, where: Path, field: str, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise fail(where, field, f"a whole number from {allowed.start} to {allowed.stop - 1}", value)
    return value


def finite(value: object) -> float | None:
    """``value`` as a finite float; ``None`` for anything else (booleans, strings, NaN, infinities,
    integers beyond the float range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def number(value: object, where: Path, field: str, positive: bool = False, maximum: float = math.inf) -> None:
    """A finite int or float, above 0 when ``positive``, at most ``maximum``."""
    parsed = finite(value)
    if parsed is None or (positive and parsed <= 0) or parsed > maximum:
        bound = "" if maximum == math.inf else f" up to {maximum:.10g}"
        raise fail(where, field, f"{'a positive' if positive else 'a finite'} number{bound}", value)


def numbers(value: object, where: Path, field: str, count: int, positive: bool = False) -> None:
    if not isinstance(value, list) or len(value) != count:
        raise fail(where, field, f"a list of {count} numbers", value)
    for index, item in enumerate(value):
        number(item, where, f"{field}[{index}]", positive)


def choice(value: object, where: Path, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(where, field, f"one of {', '.join(choices)}", value)
    return value


def text(value: object, where: Path, field: str, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise fail(where, field, "a string", value)


def sizes(value: object, where: Path, field: str, count: int, layout: str) -> list[int]:
    """A list of ``count`` whole numbers from 1 to :data:`MAX_SIGNAL_SIDE` (``layout`` names them in
    the message, e.g. ``"[C, ...]"``)."""
    if not isinstance(value, list) or len(value) != count or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SIGNAL_SIDE for n in value):
        raise fail(where, field, f"{count} whole numbers {layout}, 1 to {MAX_SIGNAL_SIDE}", value)
    return value


def grid_description(signal: Mapping, axes: int, channels: int, where: Path) -> Mapping:
    """The fields of a grid signal's description (:meth:`specfit.signals.base.Signal.describe`)
    that :meth:`~specfit.signals.base.Signal.from_description` and the writers read: ``shape``
    ``[C, *spatial]`` of ``axes`` sizes with ``C == channels``, ``mode``, ``bit_depth``,
    ``value_offset``, ``value_scale``, ``source``. Returns its ``meta`` mapping, for the kind to check."""
    shape = sizes(signal.get("shape"), where, "signal.shape", axes, "[C, ...]")
    if shape[0] != channels:
        raise SpecfitError(f"{where}: signal.shape has {shape[0]} channels but out_features is {channels}")
    text(signal.get("mode"), where, "signal.mode")
    bit_depth = signal.get("bit_depth")
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or bit_depth not in BIT_DEPTHS:
        raise fail(where, "signal.bit_depth", "8, 16 or 32", bit_depth)
    number(signal.get("value_offset"), where, "signal.value_offset")
    number(signal.get("value_scale"), where, "signal.value_scale", positive=True)
    text(signal.get("source"), where, "signal.source", optional=True)
    return mapping(signal.get("meta", {}), where, "signal.meta")
