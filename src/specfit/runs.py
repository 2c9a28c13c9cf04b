"""Run directories: a model saved as safetensors plus a JSON config, written atomically.

A run directory holds ``config.json`` (everything needed to rebuild the model: registry name,
resolved hyperparameters, convention, value range, coordinate convention, signal description),
``model.safetensors``, ``metrics.json``, the reconstruction and ``report.html``. Nothing is ever
unpickled: loading reads JSON and tensors only.

Writes are staged in a hidden sibling folder and renamed into place at the end, so an interrupted
or failed write never leaves a half-written run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from specfit.errors import SpecfitError
from specfit.models.registry import get_entry

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
FORMAT_VERSION = 1


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def dumps(data: object) -> str:
    """JSON text with non-finite floats made representable."""
    return json.dumps(_json_safe(data), indent=2)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_parent(out_dir: Path) -> Path:
    """Fail early, before any work, if ``out_dir`` cannot be written; returns it resolved.

    An existing folder is only ever replaced when it is a specfit run (it holds ``config.json``)
    or empty, so a mistyped ``--out`` never deletes a user's files.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecfitError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / CONFIG).is_file():
        raise SpecfitError(f"{out_dir} exists and is not a specfit run; choose another --out")
    probe = out_dir.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SpecfitError(f"cannot write the output directory {out_dir} ({probe} is not a directory)")
    try:
        Path(tempfile.mkdtemp(prefix=".specfit-probe-", dir=probe)).rmdir()
    except OSError as exc:
        raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror})") from exc
    return out_dir


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Yield a staging folder; on success it replaces ``out_dir`` whole, on failure it vanishes."""
    out_dir = Path(out_dir).resolve()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
        stage.chmod(0o777 & ~_umask())
    except OSError as exc:
        raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror})") from exc
    try:
        yield stage
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; renamed to ``path`` on success, removed on failure."""
    path = Path(path).resolve()
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise SpecfitError(f"cannot write {path} ({exc.strerror})") from exc
    os.close(handle)
    temp = Path(name)
    temp.chmod(0o666 & ~_umask())
    try:
        yield temp
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_model(folder: Path, model: nn.Module, config: dict) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``folder``."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"specfit_format": str(FORMAT_VERSION)})
    (folder / CONFIG).write_text(dumps({"format": FORMAT_VERSION, **config}))


def read_config(run_dir: Path) -> dict:
    """The config of a run directory, with a clear error when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpecfitError(f"{run_dir} is not a run directory")
    path = run_dir / CONFIG
    if not path.is_file() or not (run_dir / WEIGHTS).is_file():
        raise SpecfitError(f"{run_dir} is not a run directory (needs {CONFIG} and {WEIGHTS})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecfitError(f"{path} is not valid JSON ({exc})") from exc
    for key in ("model", "params", "in_features", "out_features"):
        if key not in config:
            raise SpecfitError(f"{path} lacks {key!r}")
    return config


def load_model(run_dir: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the saved model exactly from its config and weights."""
    config = read_config(run_dir)
    entry = get_entry(config["model"])
    model = entry.build(config["in_features"], config["out_features"], **config["params"])
    try:
        state = load_file(str(Path(run_dir) / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise SpecfitError(f"{run_dir / WEIGHTS} is not readable ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SpecfitError(f"{run_dir / WEIGHTS} does not match its config ({exc})") from exc
    return model.to(device).eval(), config
