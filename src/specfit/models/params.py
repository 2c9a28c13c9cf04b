"""Typed hyperparameters: each model family declares its own as a dataclass.

A field's type (``int``, ``float``, ``str``, optionally ``| None``) is how a value given as text
(``--set width=128``) or JSON is parsed; its metadata holds its bounds, its choices and its help
text, all checked in one place (:func:`parse_params`). An instance holds a model's defaults.

A family's dataclass derives from :class:`ModelParams`: its model is built from the instance itself
and keeps it (``hparams``), and the instance says what the family needs and can do (its size before
it is built, the width of its layers, the parameters a clip fixes, whether it can be trained in a
stack). A plugin's plain dataclass gets the generic answers (:func:`declared`), and its builder
receives the fields as keywords.
"""

from __future__ import annotations

import math
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


def param(default: ParamValue, help: str, *, minimum: float | None = None, maximum: float | None = None,
          choices: tuple[str, ...] | None = None) -> Any:
    """A hyperparameter field: its default, a one-line help text, and its bounds or choices."""
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum,
                                            "choices": choices})


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
    parsed to its field's type and checked against its bounds; unknown names are errors."""
    table = specs(defaults)
    params = {name: spec.default for name, spec in table.items()}
    for key, raw in (overrides or {}).items():
        if key not in table:
            known = ", ".join(table) or "none"
            raise SpecfitError(f"unknown knob or parameter {key!r} for model {model}; known: {known}")
        params[key] = parse_value(table[key], raw, model)
    return params
