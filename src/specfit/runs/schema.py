"""The schema of a saved run, checked before anything is built from it.

A run folder is input like any other file: its ``config.json`` may have been edited, cut short or
written by something else. :func:`validate_config` checks every field that rebuilding the model
(:func:`specfit.runs.folder.load_model`) and drawing it (:func:`specfit.runs.render.render_run`) read, so that
a bad folder gives one :class:`~specfit.errors.SpecfitError` naming the file and the field instead
of a traceback from deep inside a model constructor or a writer.

The fields (``config.json`` as :func:`specfit.fitting.pipeline.run_fit` writes it):

- ``format``: :data:`specfit.runs.folder.FORMAT_VERSION`.
- ``model``: a registry name; ``params``: a mapping of scalars, parsed and bounded by
  :func:`specfit.models.registry.resolve_params` (the validated config holds the resolved values).
- ``in_features``: coordinates per sample, 1 to 3; ``out_features``: channels, 1 to
  :data:`MAX_CHANNELS`; with a ``signal`` both must agree with its kind (:mod:`specfit.kinds.registry`).
- ``value_range``: ``"signed"`` or ``"unit"``; ``coordinates``: a convention of
  :data:`specfit.signals.sampling.CONVENTIONS`.
- ``signal``: ``kind`` (default ``"image"``) and ``name``; grid kinds add ``shape``
  ``[C, *spatial]``, ``mode``, ``bit_depth``, ``value_offset``, ``value_scale``, ``source`` and
  ``meta`` (audio: ``sample_rate``; video: ``fps``; volume: ``spacing``, ``affine``), as
  :meth:`specfit.signals.base.Signal.describe` writes them; shapes add ``center``, ``scale`` and
  ``target`` (:meth:`specfit.signals.shape.Shape.describe`).

A complete run (:func:`check_complete_run`) also holds its weights and ``metrics.json`` and is not
a staging folder that an interrupted write left behind.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from specfit.errors import SpecfitError
from specfit.kinds.kind import MAX_CHANNELS
from specfit.kinds.registry import get_kind, kinds
from specfit.models.registry import get_entry, resolve_params
from specfit.runs.format import CONFIG, FORMAT_VERSION, METRICS, WEIGHTS
from specfit.signals.audio import WAV_FIELD_MAX
from specfit.signals.sampling import CONVENTIONS
from specfit.signals.video import MAX_FPS
from specfit.tasks.base import SHAPE_TARGETS

# Fields every config holds: what rebuilding the model reads.
MODEL_FIELDS = ("format", "model", "params", "in_features", "out_features")
# Fields a run must hold besides, to be rendered.
RENDER_FIELDS = ("value_range", "signal")
VALUE_RANGES = ("signed", "unit")
MAX_COORDINATES = 3
MAX_SIGNAL_SIDE = 2**31  # samples along one axis of a signal
BIT_DEPTHS = (8, 16, 32)
# Staging folders of runs.staged_directory, beside the run: ".NAME.partial-XXXX", ".NAME.old-XXXX".
STAGING_NAME = re.compile(r"\..+\.(partial|old)-[^/]*")

_show = reprlib.Repr()
_show.maxstring = _show.maxother = 40


def _fail(where: Path, field: str, expected: str, value: object) -> SpecfitError:
    return SpecfitError(f"{where}: {field} must be {expected}, got {_show.repr(value)}")


def _mapping(value: object, where: Path, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(where, field, "a mapping", value)
    return value


def _integer(value: object, where: Path, field: str, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _fail(where, field, f"a whole number from {allowed.start} to {allowed.stop - 1}", value)
    return value


def _finite(value: object) -> float | None:
    """``value`` as a finite float; ``None`` for anything else (booleans, strings, NaN, infinities,
    integers beyond the float range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(
    value: object, where: Path, field: str, positive: bool = False, maximum: float = math.inf
) -> None:
    """A finite int or float, above 0 when ``positive``, at most ``maximum``."""
    number = _finite(value)
    if number is None or (positive and number <= 0) or number > maximum:
        bound = "" if maximum == math.inf else f" up to {maximum:.10g}"
        raise _fail(where, field, f"{'a positive' if positive else 'a finite'} number{bound}", value)


def _numbers(value: object, where: Path, field: str, count: int, positive: bool = False) -> None:
    if not isinstance(value, list) or len(value) != count:
        raise _fail(where, field, f"a list of {count} numbers", value)
    for index, item in enumerate(value):
        _number(item, where, f"{field}[{index}]", positive)


def _choice(value: object, where: Path, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(where, field, f"one of {', '.join(choices)}", value)
    return value


def _text(value: object, where: Path, field: str, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise _fail(where, field, "a string", value)


def _params(config: Mapping, where: Path) -> dict:
    """The model's hyperparameters resolved by the registry (types parsed, bounds checked)."""
    if not isinstance(config["model"], str):
        raise _fail(where, "model", "a model name", config["model"])
    entry = get_entry(config["model"])
    params = _mapping(config["params"], where, "params")
    for key, value in params.items():
        if not (value is None or isinstance(value, str | bool) or _finite(value) is not None):
            raise _fail(where, f"params[{key!r}]", "a finite number, a string, a boolean or null", value)
    try:
        return resolve_params(entry, dict(params))
    except SpecfitError as exc:
        raise SpecfitError(f"{where}: {exc}") from None


def _grid_signal(signal: Mapping, kind: str, channels: int, where: Path) -> None:
    """The fields of a grid signal that :meth:`Signal.from_description` and the writers read."""
    shape = signal.get("shape")
    axes = get_kind(kind).coordinates + 1
    sides = range(1, MAX_SIGNAL_SIDE + 1)
    if not isinstance(shape, list) or len(shape) != axes or any(
            isinstance(n, bool) or not isinstance(n, int) or n not in sides for n in shape):
        raise _fail(where, "signal.shape", f"{axes} whole numbers [C, ...], 1 to {MAX_SIGNAL_SIDE}", shape)
    if shape[0] != channels:
        raise SpecfitError(f"{where}: signal.shape has {shape[0]} channels but out_features is {channels}")
    _text(signal.get("mode"), where, "signal.mode")
    bit_depth = signal.get("bit_depth")
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or bit_depth not in BIT_DEPTHS:
        raise _fail(where, "signal.bit_depth", "8, 16 or 32", bit_depth)
    _number(signal.get("value_offset"), where, "signal.value_offset")
    _number(signal.get("value_scale"), where, "signal.value_scale", positive=True)
    _text(signal.get("source"), where, "signal.source", optional=True)
    meta = _mapping(signal.get("meta", {}), where, "signal.meta")
    if kind == "audio":
        _number(meta.get("sample_rate"), where, "signal.meta.sample_rate", True, WAV_FIELD_MAX)
    if kind == "video" and "fps" in meta:
        _number(meta["fps"], where, "signal.meta.fps", True, MAX_FPS)
    if kind == "volume" and "spacing" in meta:
        _numbers(meta["spacing"], where, "signal.meta.spacing", 3, positive=True)
    if kind == "volume" and "affine" in meta:
        rows = meta["affine"]
        if not isinstance(rows, list) or len(rows) != 4:
            raise _fail(where, "signal.meta.affine", "a 4 x 4 matrix", rows)
        for index, row in enumerate(rows):
            _numbers(row, where, f"signal.meta.affine[{index}]", 4)


def _shape_signal(signal: Mapping, where: Path) -> None:
    """The fields of a mesh's description that rendering its surface reads."""
    _numbers(signal.get("center"), where, "signal.center", 3)
    _number(signal.get("scale"), where, "signal.scale", positive=True)
    _choice(signal.get("target", SHAPE_TARGETS[0]), where, "signal.target", SHAPE_TARGETS)


def _scene_signal(signal: Mapping, where: Path) -> None:
    """The fields of a NeRF scene's description that rendering its turntable reads."""
    shape = signal.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SIGNAL_SIDE for n in shape):
        raise _fail(where, "signal.shape", f"4 whole numbers [3, views, H, W], 1 to {MAX_SIGNAL_SIDE}", shape)
    for name in ("focal", "near", "far", "radius"):
        _number(signal.get(name), where, f"signal.{name}", positive=True)


def _signal(config: Mapping, where: Path) -> None:
    """The signal description agrees with its kind and with the model's inputs and outputs."""
    signal = _mapping(config["signal"], where, "signal")
    kind = _choice(signal.get("kind", "image"), where, "signal.kind", tuple(kinds()))
    _text(signal.get("name"), where, "signal.name")
    spec = get_kind(kind)
    if config["in_features"] != spec.coordinates:
        raise SpecfitError(f"{where}: in_features is {config['in_features']}, but {kind} runs have "
                           f"{spec.coordinates} coordinates per sample")
    channels = _integer(config["out_features"], where, f"out_features of a {kind} run", spec.channels)
    if kind == "shape":
        _shape_signal(signal, where)
    elif kind == "nerf":
        _scene_signal(signal, where)
    else:
        _grid_signal(signal, kind, channels, where)


def validate_config(config: object, where: Path, needs: tuple[str, ...] = ()) -> dict:
    """Check a run's parsed ``config.json`` against the schema (see the module docstring).

    Args:
        config: what ``json.loads`` made of the file.
        where: the file, named in messages.
        needs: fields required besides :data:`MODEL_FIELDS` (e.g. :data:`RENDER_FIELDS`); the
            optional ones are checked when present.

    Returns the config as a new dict whose ``params`` are the registry-resolved values (defaults
    filled in). Raises :class:`SpecfitError` with a one-line message naming the first bad field.
    """
    config = dict(_mapping(config, where, "the config"))
    for field in (*MODEL_FIELDS, *needs):
        if field not in config:
            raise SpecfitError(f"{where} lacks {field!r}")
    if config["format"] != FORMAT_VERSION or isinstance(config["format"], bool):
        raise _fail(where, "format", f"{FORMAT_VERSION} (this specfit's run format)", config["format"])
    config["params"] = _params(config, where)
    _integer(config["in_features"], where, "in_features", range(1, MAX_COORDINATES + 1))
    _integer(config["out_features"], where, "out_features", range(1, MAX_CHANNELS + 1))
    if "value_range" in config:
        _choice(config["value_range"], where, "value_range", VALUE_RANGES)
    if "coordinates" in config:
        _choice(config["coordinates"], where, "coordinates", CONVENTIONS)
    if "signal" in config:
        _signal(config, where)
    return config


def check_complete_run(run_dir: Path) -> None:
    """Raise :class:`SpecfitError` unless ``run_dir`` is a finished run folder.

    A finished run holds ``config.json``, ``model.safetensors`` and ``metrics.json`` (the last file
    a fit writes) and is not a staging folder (``.NAME.partial-*`` or ``.NAME.old-*``) that an
    interrupted or concurrent write left beside the run.
    """
    run_dir = Path(run_dir)
    if STAGING_NAME.fullmatch(run_dir.resolve().name):
        raise SpecfitError(f"{run_dir} is a staging folder of an unfinished or replaced run, not a run")
    missing = [name for name in (CONFIG, WEIGHTS, METRICS) if not (run_dir / name).is_file()]
    if not run_dir.is_dir() or missing:
        needs = ", ".join(missing) if run_dir.is_dir() else f"{CONFIG}, {WEIGHTS} and {METRICS}"
        raise SpecfitError(f"{run_dir} is not a complete run directory (it lacks {needs})")


def check_weights(model: nn.Module, shapes: Mapping[str, tuple[int, ...]], where: Path) -> None:
    """Raise :class:`SpecfitError` unless a weights file holds exactly ``model``'s tensors.

    ``shapes`` maps the file's tensor names to their shapes. The message names the first mismatch
    (a tensor missing, extra or of another shape) and how many there are.
    """
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = [f"{name!r} is missing" for name in expected if name not in shapes]
    problems += [f"{_show.repr(name)} is not one of the model's" for name in shapes if name not in expected]
    problems += [
        f"{name!r} has shape {_dims(shapes[name])}, the model's has {_dims(shape)}"
        for name, shape in expected.items() if name in shapes and shapes[name] != shape
    ]
    if problems:
        count = f"{len(problems)} mismatches" if len(problems) > 1 else "1 mismatch"
        raise SpecfitError(f"{where} does not match its config: {problems[0]} ({count})")


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape)) or "scalar"
