"""Files written whole: a temporary sibling renamed into place, and JSON that survives non-finite floats."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from specfit.errors import SpecfitError


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def dumps(data: object) -> str:
    """JSON text with non-finite floats made representable: NaN as ``null``, infinities as the
    strings ``"inf"`` and ``"-inf"`` (read back by :func:`restore_infinities`)."""
    return json.dumps(_json_safe(data), indent=2)


def restore_infinities(value: object) -> object:
    """``value`` parsed from :func:`dumps`'s text, the strings ``"inf"`` and ``"-inf"`` made floats again."""
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: restore_infinities(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_infinities(v) for v in value]
    return value


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The name of a staged file (``.STEM.partial-RANDOM.SUFFIX``) that a killed writer left behind.
STAGED_FILE_PATTERN = ".*.partial-*"


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (see :data:`STAGED_FILE_PATTERN`); renamed to ``path``
    on success, removed on failure."""
    path = Path(path).resolve()
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise SpecfitError(f"cannot write {path} ({exc.strerror})") from exc
    os.close(handle)
    temp = Path(name)
    temp.chmod(0o666 & ~current_umask())
    try:
        yield temp
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise SpecfitError(f"cannot write {path} ({exc.strerror or exc})") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


