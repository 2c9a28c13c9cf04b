"""How numbers are shown to people in messages, tables and reports."""

from __future__ import annotations


def shown(value: object) -> str:
    """A knob value as people write it: ``91`` rather than ``91.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def duration(seconds: float) -> str:
    """A duration as people say it: ``"under 1 s"``, ``"40 s"``, ``"3 min 40 s"``, ``"2 h 5 min"``."""
    whole = round(seconds)
    if whole < 1:
        return "under 1 s"
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
