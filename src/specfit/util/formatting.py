"""How numbers are shown to people in messages, tables and reports."""

from __future__ import annotations


def shown(value: object) -> str:
    """A knob value as people write it: ``91`` rather than ``91.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
