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
- ``signal``: ``kind`` (default ``"image"``) and ``name``, and what the kind checks
  (:attr:`specfit.kinds.kind.SignalKind.check_description`): grid kinds add ``shape``
  ``[C, *spatial]``, ``mode``, ``bit_depth``, ``value_offset``, ``value_scale``, ``source`` and
  ``meta`` (audio: ``sample_rate``; video: ``fps``; volume: ``spacing``, ``affine``), as
  :meth:`specfit.signals.base.Signal.describe` writes them; shapes add ``center``, ``scale`` and
  ``target`` (:meth:`specfit.signals.shape.Shape.describe`).

A complete run (:func:`check_complete_run`) also holds its weights and ``metrics.json`` and is not
a staging folder that an interrupted write left behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from specfit.errors import SpecfitError
from specfit.kinds.checks import choice, fail, finite, integer, mapping, shown, text
from specfit.kinds.kind import MAX_CHANNELS, MAX_COORDINATES
from specfit.kinds.registry import get_kind, kinds
from specfit.models.registry import get_entry, resolve_params
from specfit.runs.format import CONFIG, FORMAT_VERSION, METRICS, WEIGHTS
from specfit.signals.sampling import CONVENTIONS

# Fields every config holds: what rebuilding the model reads.
MODEL_FIELDS = ("format", "model", "params", "in_features", "out_features")
# Fields a run must hold besides, to be rendered.
RENDER_FIELDS = ("value_range", "signal")
VALUE_RANGES = ("signed", "unit")
# Staging folders of runs.staged_directory, beside the run: ".NAME.partial-XXXX", ".NAME.old-XXXX".
STAGING_NAME = re.compile(r"\..+\.(partial|old)-[^/]*")


def _params(config: Mapping, where: Path) -> dict:
    """The model's hyperparameters resolved by the registry (types parsed, bounds checked)."""
    if not isinstance(config["model"], str):
        raise fail(where, "model", "a model name", config["model"])
    entry = get_entry(config["model"])
    params = mapping(config["params"], where, "params")
    for key, value in params.items():
        if not (value is None or isinstance(value, str | bool) or finite(value) is not None):
            raise fail(where, f"params[{key!r}]", "a finite number, a string, a boolean or null", value)
    try:
        return resolve_params(entry, dict(params))
    except SpecfitError as exc:
        raise SpecfitError(f"{where}: {exc}") from None


def _signal(config: Mapping, where: Path) -> None:
    """The signal description agrees with its kind (which checks its own fields,
    :attr:`~specfit.kinds.kind.SignalKind.check_description`) and with the model's inputs and outputs."""
    signal = mapping(config["signal"], where, "signal")
    kind = choice(signal.get("kind", "image"), where, "signal.kind", tuple(kinds()))
    text(signal.get("name"), where, "signal.name")
    spec = get_kind(kind)
    if config["in_features"] != spec.coordinates:
        raise SpecfitError(f"{where}: in_features is {config['in_features']}, but {kind} runs have "
                           f"{spec.coordinates} coordinates per sample")
    channels = integer(config["out_features"], where, f"out_features of a {kind} run", spec.channels)
    spec.check_description(signal, channels, where)


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
    config = dict(mapping(config, where, "the config"))
    for field in (*MODEL_FIELDS, *needs):
        if field not in config:
            raise SpecfitError(f"{where} lacks {field!r}")
    if config["format"] != FORMAT_VERSION or isinstance(config["format"], bool):
        raise fail(where, "format", f"{FORMAT_VERSION} (this specfit's run format)", config["format"])
    config["params"] = _params(config, where)
    integer(config["in_features"], where, "in_features", range(1, MAX_COORDINATES + 1))
    integer(config["out_features"], where, "out_features", range(1, MAX_CHANNELS + 1))
    if "value_range" in config:
        choice(config["value_range"], where, "value_range", VALUE_RANGES)
    if "coordinates" in config:
        choice(config["coordinates"], where, "coordinates", CONVENTIONS)
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
    problems += [f"{shown(name)} is not one of the model's" for name in shapes if name not in expected]
    problems += [
        f"{name!r} has shape {_dims(shapes[name])}, the model's has {_dims(shape)}"
        for name, shape in expected.items() if name in shapes and shapes[name] != shape
    ]
    if problems:
        count = f"{len(problems)} mismatches" if len(problems) > 1 else "1 mismatch"
        raise SpecfitError(f"{where} does not match its config: {problems[0]} ({count})")


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape)) or "scalar"
