"""Reading back what specfit wrote, defensively: JSON files read within a size limit, and checked
against the shape their reader relies on before anything indexes into them.

A shape is declared as data:

* a type: ``str``, ``bool``, ``dict``, ``list``; ``float`` takes any real number (``int`` too, but
  never ``True``/``False``);
* ``None``: the JSON ``null``;
* a tuple of shapes: any one of them, e.g. ``(float, None)`` for a score that may be missing;
* a dict: a JSON object holding at least these keys, each of its shape (a key whose shape is
  :class:`MayOmit` may be absent);
* a one-item list: a JSON array whose every item has that shape;
* :class:`Each`: a JSON object whose every value has the shape (its keys are any strings).

:func:`mismatch` says where a document departs from its shape; :func:`read_json` reads a file that
must be JSON, with every problem a one-line :class:`SpecfitError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from specfit.errors import SpecfitError


@dataclass(frozen=True)
class Each:
    """The shape of a JSON object whose every value has ``shape``."""

    shape: object


@dataclass(frozen=True)
class MayOmit:
    """A key of a dict shape that may be absent; when present, its value has ``shape``."""

    shape: object


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def mismatch(value: object, shape: object, where: str = "") -> str | None:
    """Where ``value`` (parsed JSON) departs from ``shape`` (see the module docstring), as a phrase
    such as ``"table[2].value is not a number"``; ``None`` when it matches. ``where`` names
    ``value`` itself (empty: the whole document)."""
    if isinstance(shape, MayOmit):
        shape = shape.shape
    if isinstance(shape, tuple):
        found = [mismatch(value, option, where) for option in shape]
        return None if None in found else found[0]
    subject = where or "the document"
    if shape is None:
        return None if value is None else f"{subject} is not null"
    if isinstance(shape, type):
        return None if _is(value, shape) else f"{subject} is not {_NAMES.get(shape, shape.__name__)}"
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{subject} is not an array"
        items = ((item, f"{where}[{i}]") for i, item in enumerate(value))
        return next((m for item, at in items if (m := mismatch(item, shape[0], at))), None)
    if not isinstance(value, dict):
        return f"{subject} is not an object"
    if isinstance(shape, Each):
        pairs = ((item, _at(where, key)) for key, item in value.items())
        return next((m for item, at in pairs if (m := mismatch(item, shape.shape, at))), None)
    for key, item_shape in shape.items():
        if key not in value:
            if isinstance(item_shape, MayOmit):
                continue
            return f"{subject} has no {key}"
        found = mismatch(value[key], item_shape, _at(where, key))
        if found is not None:
            return found
    return None


_NAMES = {float: "a number", int: "a whole number", str: "text", bool: "true or false", dict: "an object",
          list: "an array"}


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def read_json(path: Path, max_bytes: int, what: str) -> object:
    """The JSON document in the regular file ``path``, read up to ``max_bytes``.

    ``what`` names the document in errors (``"a run's config"``). A missing, unreadable or
    non-regular file (a folder, a named pipe, a device), one larger than ``max_bytes``, text that
    is not UTF-8 or not JSON, and JSON nested too deeply are each a one-line :class:`SpecfitError`.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecfitError(f"{path} is not a file: not {what}")
    try:
        with path.open("rb") as handle:  # what the file holds, up to one byte past the cap
            data = handle.read(min(os.fstat(handle.fileno()).st_size, max_bytes) + 1)
    except OSError as exc:
        raise SpecfitError(f"cannot read {path} ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise SpecfitError(f"{path} is larger than {max_bytes} bytes: not {what}")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecfitError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise SpecfitError(f"{path} is not valid JSON ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise SpecfitError(f"{path} nests its JSON too deeply to be {what}") from exc
