"""Typed hyperparameters: each model family declares its own as a dataclass.

A field's type (``int``, ``float``, ``str``, optionally ``| None``) is how a value given as text
(``--set width=128``) or JSON is parsed; its metadata holds its bounds, its choices and its help
text, all checked in one place (:func:`parse_params`). An instance holds a model's defaults.

A family's dataclass derives from :class:`ModelParams`: its model is built from the instance itself
and keeps it (``hparams``), and the instance says what the family needs and can do (its size before
it is built, the width of its layers, the parameters a clip fixes, whether it can be trained in a
stack). A plugin's plain dataclass gets the generic answers (:func:`declared`), and its builder
receives the fields as keywords.

The settings of a fit (:mod:`specfit.config.settings`: training options, loading options,
compaction) are declared with the same :func:`param`, which also carries what the command line
needs (a flag's name and metavar); :func:`check_fields` checks an instance of any such dataclass.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from specfit.errors import SpecfitError
from specfit.models.memory import ModelSize, mlp_size

ParamValue = float | int | str | None
NONE_WORDS = ("none", "default", "null")
# Hidden units assumed of a model whose family does not say (FreSh's evaluation chunks, see
# specfit.fresh.search.chunk_rows).
DEFAULT_LAYER_WIDTH = 256


class ModelParams:
    """What a model family declares about itself, besides its hyperparameter fields.

    Attributes:
        stackable: networks of the family with one shape can be trained as one stack
            (:mod:`specfit.training.stacked`): layer stacks (:class:`~specfit.models.body.ActivationMLP`)
            with no per-sample structure, constraint or regulariser.
    """

    stackable: ClassVar[bool] = False

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        """The model's size estimated before it is built, for memory checks (``None``: unknown; the
        model is then built once and its parameters counted)."""
        return None

    def layer_width(self) -> int:
        """Units of the model's widest hidden layer: FreSh evaluates untrained models in chunks of
        samples sized by it."""
        return DEFAULT_LAYER_WIDTH

    def frame_params(self, frames: int) -> dict[str, ParamValue]:
        """Hyperparameters that a clip of ``frames`` frames fixes (ResFields: one residual per frame)."""
        return {}


_GENERIC = ModelParams()


def declared(params: object) -> ModelParams:
    """What ``params`` (a family's parameter object) declares: itself when it is a
    :class:`ModelParams`, else (a plugin's plain dataclass) the generic answers."""
    return params if isinstance(params, ModelParams) else _GENERIC


def param(default: object, help: str, *, minimum: float | None = None, maximum: float | None = None,
          choices: tuple[str, ...] | None = None, flag: str | None = None, metavar: str | None = None,
          fit_default: object = MISSING, option: bool = True, written_when_set: bool = False) -> Any:
    """A hyperparameter or setting field: its default, a one-line help text, its bounds or choices.

    For settings (see :mod:`specfit.config.tree`) also: ``flag``, its command-line flag (default
    ``--NAME`` with dashes, ``--no-NAME`` for a switch that is on by default; ``""``: none);
    ``metavar``, the flag's value in ``--help``; ``fit_default``, the default of
    :func:`specfit.fit` and ``specfit fit`` where it differs from the dataclass's; and
    ``option=False`` for a field that is no option of its own (set from another setting);
    ``written_when_set=True`` for a setting (or a model's hyperparameter, see :func:`parse_params`)
    left out of the JSON while it holds its default (see :func:`specfit.config.tree.to_json`). A dict
    or list default is copied for every instance.
    """
    metadata = {"help": help, "minimum": minimum, "maximum": maximum, "choices": choices, "flag": flag,
                "metavar": metavar, "option": option}
    if fit_default is not MISSING:
        metadata["fit_default"] = fit_default
    if written_when_set:
        metadata["written_when_set"] = True
    if isinstance(default, dict | list):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


def width(default: int) -> Any:
    return param(default, "hidden units per layer", minimum=1, maximum=2**16)


def hidden_layers(default: int) -> Any:
    return param(default, "hidden layers", minimum=0, maximum=1024)


def frequency(default: float, help: str) -> Any:
    return param(default, help, minimum=1e-6, maximum=1e9)


def scale(default: float, help: str) -> Any:
    return param(default, help, minimum=0.0, maximum=1e6)


@dataclass(frozen=True)
class StackParams(ModelParams):
    """The shape of the shared activation layer stack (see :mod:`specfit.models.body`)."""

    stackable: ClassVar[bool] = True

    width: int = width(256)
    hidden_layers: int = hidden_layers(3)

    def model_size(self, in_features: int, out_features: int) -> ModelSize | None:
        return mlp_size(in_features, out_features, in_features, self.width, self.hidden_layers)

    def layer_width(self) -> int:
        return self.width


@dataclass(frozen=True)
class ParamSpec:
    """How one hyperparameter is parsed and checked."""

    name: str
    kind: type  # int, float or str
    optional: bool
    default: ParamValue
    help: str
    minimum: float | None
    maximum: float | None
    choices: tuple[str, ...] | None


def specs(params: object) -> dict[str, ParamSpec]:
    """The :class:`ParamSpec` of every field of a hyperparameter dataclass (instance or type)."""
    if not is_dataclass(params):
        raise TypeError(f"hyperparameters must be a dataclass, got {type(params).__name__}")
    hints = typing.get_type_hints(params if isinstance(params, type) else type(params))
    out = {}
    for f in fields(params):
        hint = hints[f.name]
        members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = [m for m in members if m is not type(None)]
        default = getattr(params, f.name) if not isinstance(params, type) else (
            None if f.default is MISSING else f.default)
        out[f.name] = ParamSpec(f.name, kinds[0], len(kinds) < len(members), default,
                                f.metadata.get("help", ""), f.metadata.get("minimum"),
                                f.metadata.get("maximum"), f.metadata.get("choices"))
    return out


def parse_value(spec: ParamSpec, raw: object, model: str) -> ParamValue:
    """``raw`` (text from the command line, or a JSON value) as the field's type, checked."""
    where = f"{spec.name} for model {model}"
    if raw is None or (isinstance(raw, str) and raw.lower() in NONE_WORDS):
        if spec.optional:
            return None
        raise SpecfitError(f"{where} needs a value")
    if spec.kind is str:
        if spec.choices is not None and raw not in spec.choices:
            raise SpecfitError(f"{spec.name} must be one of {', '.join(spec.choices)}, got {raw!r}")
        if not isinstance(raw, str):
            raise SpecfitError(f"{where} must be text, got {raw!r}")
        return raw
    if isinstance(raw, bool):
        raise SpecfitError(f"{spec.name}={raw!r} is not a number ({where})")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise SpecfitError(f"{spec.name}={raw!r} is not a valid number ({where})") from None
    if not math.isfinite(value):
        raise SpecfitError(f"{spec.name}={raw!r} must be finite")
    if spec.kind is int and value != int(value):
        raise SpecfitError(f"{spec.name}={raw!r} must be a whole number ({where})")
    if spec.minimum is not None and value < spec.minimum:
        raise SpecfitError(f"{spec.name}={raw} is below its minimum {spec.minimum:g} ({where})")
    if spec.maximum is not None and value > spec.maximum:
        raise SpecfitError(f"{spec.name}={raw} is above its maximum {spec.maximum:g} ({where})")
    return int(value) if spec.kind is int else value


def parse_params(defaults: object, overrides: dict[str, object] | None, model: str) -> dict[str, ParamValue]:
    """The defaults (a hyperparameter dataclass instance) updated by ``overrides``, every value
    parsed to its field's type and checked against its bounds; unknown names are errors. A field
    declared ``written_when_set`` is left out while it holds its default, so that adding one changes
    neither saved runs' ``config.json`` nor anything keyed by the resolved parameters."""
    table = specs(defaults)
    params = {name: spec.default for name, spec in table.items()}
    for key, raw in (overrides or {}).items():
        if key not in table:
            known = ", ".join(table) or "none"
            raise SpecfitError(f"unknown knob or parameter {key!r} for model {model}; known: {known}")
        params[key] = parse_value(table[key], raw, model)
    for f in fields(defaults):  # an option added later stays out of saved configs while at its default
        if f.metadata.get("written_when_set") and params[f.name] == f.default:
            del params[f.name]
    return params


def value_type(hint: object) -> tuple[type, bool]:
    """A field's annotation as ``(kind, optional)``: kind is ``bool``, ``int``, ``float``, ``str``,
    ``list``, ``dict`` or a dataclass; optional when it admits ``None``."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = [m for m in members if m is not type(None)]
    return typing.get_origin(kinds[0]) or kinds[0], len(kinds) < len(members)


@functools.cache
def _declared(cls: type) -> tuple[tuple[str, type, bool, dict], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, *value_type(hints[f.name]), dict(f.metadata)) for f in fields(cls)
                 if "help" in f.metadata)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 or not float(value).is_integer() else str(int(value))


def _check_value(name: str, value: object, kind: type, optional: bool, meta: dict) -> None:
    """Raise :class:`SpecfitError` (naming the setting ``name``) unless ``value`` has the declared
    type (``kind``, ``None`` when ``optional``) and lies within the declared bounds or choices."""
    def fail(problem: str) -> SpecfitError:
        return SpecfitError(f"{name} must be {problem}, got {value!r}", setting=name)

    if value is None:
        if not optional:
            raise SpecfitError(f"{name} needs a value", setting=name)
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise fail(f"one of {', '.join(choices)}")
    if kind is bool and not isinstance(value, bool):
        raise fail("true or false")
    if kind is str and not isinstance(value, str):
        raise fail("text")
    if kind is dict and not isinstance(value, dict):
        raise fail("a mapping")
    if kind is list and not (isinstance(value, list | tuple) and value and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise fail("a list of finite numbers")
    if kind not in (int, float):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real):
        raise fail("a whole number" if kind is int else "a number")
    if not math.isfinite(value):
        raise fail("a finite number")
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and high is not None and not low <= value <= high:
        raise fail(f"{_number(low)} to {_number(high)}")
    if low == 0 and value < 0:
        raise SpecfitError(f"{name} must not be negative, got {value!r}", setting=name)
    if low is not None and value < low:
        raise fail(f"at least {_number(low)}")
    if high is not None and value > high:
        raise fail(f"at most {_number(high)}")


def check_fields(instance: object) -> None:
    """Check every field of a dataclass declared with :func:`param` (its type, ``None`` only where
    it admits it, its bounds or choices)."""
    for name, kind, optional, meta in _declared(type(instance)):
        _check_value(name, getattr(instance, name), kind, optional, meta)
