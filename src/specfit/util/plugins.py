"""Plugins: objects that installed packages declare under an entry-point group."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points


def load_plugins(group: str, what: str, expected: type, check: Callable[[object], None],
                 failed: dict[str, str]) -> Iterator[object]:
    """Each object declared under the entry-point ``group`` (an instance of ``expected``, or a
    function returning one) that ``check`` accepts. A plugin that fails to load or is refused by
    ``check`` (it raises) is skipped with a warning naming it as a ``what`` plugin, and its reason
    recorded in ``failed`` (entry-point name -> reason): a broken plugin never breaks specfit."""
    for point in entry_points(group=group):
        try:
            loaded = point.load()
            found = loaded if isinstance(loaded, expected) else loaded()
            check(found)
        except Exception as exc:  # a broken plugin must not break specfit
            reason = " ".join(str(exc).split()) or type(exc).__name__
            failed[point.name] = reason
            warnings.warn(f"{what} plugin {point.name} ({point.value}) was not loaded: {reason}",
                          stacklevel=3)
            continue
        yield found
