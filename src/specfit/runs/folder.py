"""Run directories: a model saved as safetensors plus a JSON config, written atomically.

A run directory holds ``config.json`` (everything needed to rebuild the model: registry name,
resolved hyperparameters, convention, value range, coordinate convention, signal description),
``model.safetensors``, ``metrics.json``, the reconstruction and ``report.html``. Nothing is ever
unpickled: loading reads JSON and tensors only.

Writes are staged in a hidden sibling folder and renamed into place at the end, so an interrupted
or failed write never leaves a half-written run. Whether a folder may become a run follows the
output policy of :mod:`specfit.runs.outputs` (:data:`RUN_FOLDER`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from specfit.errors import SpecfitError
from specfit.models.registry import check_buildable, get_entry
from specfit.runs.format import (
    CHECKPOINT,
    CONFIG,
    CONFIG_MAX_BYTES,
    FORMAT_VERSION,
    RUN_FILE_PATTERNS,
    WEIGHTS,
    config_text,
)
from specfit.runs.outputs import OutputFolder, check_writable
from specfit.runs.records import read_json
from specfit.runs.schema import check_weights, validate_config
from specfit.util.files import current_umask


def _names_this_format(folder: Path) -> bool:
    """Whether ``folder/config.json`` is a specfit run config of this format (small, JSON, marked)."""
    try:
        config = read_json(folder / CONFIG, CONFIG_MAX_BYTES, "a run's config")
    except SpecfitError:
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT_VERSION and (
        isinstance(config.get("specfit"), str) and isinstance(config.get("model"), str))


# A run is recognised by its config.json (which names the format and the specfit version) and by
# holding nothing that a run does not write, so that a mistyped output folder never deletes a
# user's files.
RUN_FOLDER = OutputFolder("a specfit run", RUN_FILE_PATTERNS, "--out", _names_this_format)


def refuse_existing(out_dir: Path, overwrite: bool) -> None:
    """Raise unless ``out_dir`` is absent or empty, or a specfit run (:data:`RUN_FOLDER`) that
    ``overwrite`` says to replace; the message points to ``--resume`` when the run holds a
    checkpoint. Anything else is refused whatever ``overwrite`` says."""
    RUN_FOLDER.check(Path(out_dir))
    if overwrite or not out_dir.exists() or not any(out_dir.iterdir()):
        return
    hint = ", --resume to continue it" if (out_dir / CHECKPOINT).is_file() else ""
    raise SpecfitError(f"{out_dir} exists; give --overwrite to replace it{hint}, or another --out")


def check_writable_parent(out_dir: Path) -> Path:
    """Fail early, before any work, if the run folder ``out_dir`` cannot be written; returns it
    resolved. An existing folder is only ever replaced when :data:`RUN_FOLDER` accepts it."""
    RUN_FOLDER.check(Path(out_dir))
    return check_writable(out_dir)


_HELD: dict[Path, int] = {}  # output folders whose lock this process holds -> the holding thread


def _lock_path(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.lock")


@contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the exclusive right to write ``out_dir`` (a lock file beside it) for the block.

    A second writer is refused at once with the first one's process id. The operating system
    releases the lock when its holder dies, however it dies; the file itself is removed on exit.
    """
    out_dir = Path(out_dir).resolve()
    path = _lock_path(out_dir)
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    if _HELD.get(out_dir) == threading.get_ident():  # this thread holds it (a fit, then its save)
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror})") from exc
    while True:
        try:
            handle = path.open("a+")
        except OSError as exc:
            raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror})") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SpecfitError(
                f"another specfit process (pid {holder}) is writing {out_dir}; "
                "wait for it to finish or choose another output folder") from None
        try:
            same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:  # else the previous holder removed the file between our open and lock: retry
            break
        handle.close()
    _HELD[out_dir] = threading.get_ident()
    try:
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        _HELD.pop(out_dir, None)
        path.unlink(missing_ok=True)
        handle.close()


def _remove_leftovers(out_dir: Path) -> None:
    """Remove staging folders that an earlier writer of ``out_dir`` left when it was killed.

    Only called while holding :func:`run_lock`, so no live writer owns them.
    """
    for pattern in (f".{out_dir.name}.partial-*", f".{out_dir.name}.old-*"):
        for leftover in out_dir.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Yield a staging folder; on success it replaces ``out_dir`` whole, on failure it vanishes.

    The caller should hold :func:`run_lock` for ``out_dir``; leftovers of killed writers are
    removed first, and ``out_dir`` is checked again with :data:`RUN_FOLDER` before it is replaced.
    """
    out_dir = Path(out_dir).resolve()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(out_dir)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
        stage.chmod(0o777 & ~current_umask())
    except OSError as exc:
        raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror})") from exc
    try:
        yield stage
        RUN_FOLDER.check(out_dir)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            out_dir.replace(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise SpecfitError(f"cannot write the output directory {out_dir} ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_model(folder: Path, model: nn.Module, config: dict) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``folder``."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"specfit_format": str(FORMAT_VERSION)})
    (folder / WEIGHTS).chmod(0o666 & ~current_umask())  # safetensors creates it private
    (folder / CONFIG).write_text(config_text(config))




def read_config(run_dir: Path, needs: tuple[str, ...] = (), weights: bool = True) -> dict:
    """The config of a run directory, checked by :func:`specfit.runs.schema.validate_config`.

    ``needs`` names fields required besides the model's (e.g. ``RENDER_FIELDS``); ``weights=False``
    accepts a folder without ``model.safetensors`` (a fit still training, with its checkpoint).
    ``config.json`` is read up to :data:`CONFIG_MAX_BYTES`; anything wrong is a one-line
    :class:`SpecfitError`.
    """

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpecfitError(f"{run_dir} is not a run directory")
    path = run_dir / CONFIG
    if not path.is_file() or (weights and not (run_dir / WEIGHTS).is_file()):
        needed = f"{CONFIG} and {WEIGHTS}" if weights else CONFIG
        raise SpecfitError(f"{run_dir} is not a run directory (needs {needed})")
    config = read_json(path, CONFIG_MAX_BYTES, "a run's config")
    return validate_config(config, path, needs)


def load_model(
    run_dir: Path, device: torch.device | str = "cpu", config: dict | None = None
) -> tuple[nn.Module, dict]:
    """Rebuild the saved model exactly from its config and weights; returns ``(model, config)``.

    ``config`` is the run's config as :func:`read_config` returned it (read here when ``None``).
    The model must pass :func:`~specfit.models.registry.check_buildable` (it fits in memory), and
    the weights, read with the safetensors API only (nothing is unpickled), must match it tensor
    for tensor, by name and shape (:func:`specfit.runs.schema.check_weights`) before any is loaded.
    """

    config = read_config(run_dir) if config is None else config
    entry = get_entry(config["model"])
    check_buildable(entry, config["in_features"], config["out_features"], config["params"])
    model = entry.create(config["in_features"], config["out_features"], config["params"])
    path = Path(run_dir) / WEIGHTS
    try:
        with safe_open(str(path), framework="pt") as weights:
            names = weights.keys()  # a list: the file object is not iterable
            shapes = {name: tuple(weights.get_slice(name).get_shape()) for name in names}
            check_weights(model, shapes, path)
            state = {name: weights.get_tensor(name) for name in shapes}
    except (SafetensorError, OSError) as exc:
        raise SpecfitError(f"{path} is not readable ({' '.join(str(exc).split())})") from exc
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), config






