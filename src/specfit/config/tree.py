"""Settings declared once, as the fields of dataclasses grouped into one tree.

A *leaf* is a field declared with :func:`specfit.models.params.param` (type, default, help, bounds or
choices, and the command-line extras); a *group* is a field declared with :func:`group` that holds
a nested settings dataclass. Every leaf that is an option has a name unique in its tree (its field
name), and from its one declaration come:

- the keyword of :func:`specfit.fit` and :func:`specfit.select` (:func:`build`,
  :func:`keyword_parameters`, :func:`describe`);
- the command-line flag (:func:`add_flags`, :func:`given_flags`): ``--NAME`` with dashes unless
  declared otherwise, help text from the declaration, the default shown;
- the key in config files and in the JSON of a run's ``config.json`` (:func:`to_json`,
  :func:`from_json`): the dotted path of its field, where a *flat* group adds no level (so the
  Python tree can be nested while the JSON keeps its shape); a leaf declared ``written_when_set``
  is written only when it differs from its default (a setting added later leaves older JSON as it
  was);
- its checks (:func:`check_tree`, via :func:`specfit.models.params.check_fields`).

A dataclass with flat groups is declared with :func:`tree` (over ``@dataclass(init=False)``): it
then takes the leaves of its flat groups as keywords and attributes of its own.
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from specfit.errors import SpecfitError
from specfit.models.params import check_fields, value_type

MAX_GRID_VALUES = 1000


def group(cls: type, title: str, *, flat: bool = False, optional: bool = False) -> Any:
    """A field holding the settings dataclass ``cls``; ``title`` heads its flags in ``--help``.

    ``flat``: its leaves are keys of the parent's JSON and attributes of the parent (see
    :func:`tree`). ``optional``: it defaults to ``None`` (nothing to do), and is created when one of
    its leaves is given a value other than its default.
    """
    metadata = {"group": cls, "title": title, "flat": flat, "optional": optional}
    if optional:
        return field(default=None, metadata=metadata)
    return field(default_factory=cls, metadata=metadata)


@dataclass(frozen=True)
class Leaf:
    """One option of a settings tree, as its declaration gives it.

    Attributes:
        name: the field name: the keyword, and the flag's destination.
        key: the dotted path in the JSON and in config files (``"fit.steps"``, ``"grid"``).
        kind: the declared type (``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``, without
            ``None``); hint: the annotation itself.
        default: the dataclass's default; fit_default: that of :func:`specfit.fit` and ``specfit
            fit`` (the same unless declared otherwise).
        flag: the command-line flag (``None``: none); title: the ``--help`` heading of its group
            (``None``: the command's own options).
        help, metavar, choices: as declared.
    """

    name: str
    key: str
    kind: type
    hint: object
    default: object
    fit_default: object
    flag: str | None
    title: str | None
    help: str
    metavar: str | None
    choices: tuple[str, ...] | None


def _default(f: Any) -> object:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _is_group(f: Any) -> bool:
    return "group" in f.metadata


def _flag(name: str, kind: type, default: object, declared: str | None) -> str | None:
    if declared is not None:
        return declared or None
    prefix = "--no-" if kind is bool and default is True else "--"
    return prefix + name.replace("_", "-")


@functools.cache
def leaves(cls: type) -> dict[str, Leaf]:
    """The options of the tree ``cls`` by name, in declaration order (groups depth first)."""
    out: dict[str, Leaf] = {}
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if _is_group(f):
            title, flat = f.metadata["title"], f.metadata["flat"]
            for leaf in leaves(f.metadata["group"]).values():
                key = leaf.key if flat else f"{f.name}.{leaf.key}"
                _add(out, replace(leaf, key=key, title=leaf.title or title), cls)
            continue
        meta = f.metadata
        if "help" not in meta or not meta.get("option", True):
            continue
        kind, _ = value_type(hints[f.name])
        default = _default(f)
        flag = _flag(f.name, kind, default, meta.get("flag"))
        fit_default = meta.get("fit_default", default)
        _add(out, Leaf(f.name, f.name, kind, hints[f.name], default, fit_default, flag, None,
                       meta["help"], meta.get("metavar"), meta.get("choices")), cls)
    return out


def _add(out: dict[str, Leaf], leaf: Leaf, cls: type) -> None:
    if leaf.name in out:
        raise TypeError(f"{cls.__name__}: two options are named {leaf.name!r}")
    out[leaf.name] = leaf


def _groups(cls: type) -> dict[str, Any]:
    return {f.name: f for f in fields(cls) if _is_group(f)}


def tree(cls: type) -> type:
    """Complete a settings dataclass declared with ``@dataclass(init=False)``: its ``__init__`` takes
    its fields and the leaves of its flat groups by keyword (a flat group is always copied, so
    instances never share one), and those leaves become properties of it."""
    flat = {sub.name: f.name for f in fields(cls) if f.metadata.get("flat")
            for sub in fields(f.metadata["group"])}

    def __init__(self: Any, **values: object) -> None:
        nested: dict[str, dict[str, object]] = {}
        for name in [n for n in values if n in flat]:
            nested.setdefault(flat[name], {})[name] = values.pop(name)
        for f in fields(cls):
            value = values.pop(f.name) if f.name in values else _default(f)
            if f.metadata.get("flat"):
                value = replace(value, **nested.get(f.name, {}))
            setattr(self, f.name, value)
        if values:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {next(iter(values))!r}")

    parameters = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f))
                  for f in fields(cls)]
    parameters += [inspect.Parameter(sub.name, inspect.Parameter.KEYWORD_ONLY, default=_default(sub))
                   for f in fields(cls) if f.metadata.get("flat") for sub in fields(f.metadata["group"])]
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *parameters])
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__  # type: ignore[misc]
    for name, holder in flat.items():
        setattr(cls, name, property(
            lambda self, n=name, g=holder: getattr(getattr(self, g), n),
            lambda self, value, n=name, g=holder: setattr(getattr(self, g), n, value),
            doc=f"``{holder}.{name}``"))
    return cls


# --- building and checking ------------------------------------------------------------------------


def option_names(cls: type) -> set[str]:
    """The keywords :func:`build` takes: every option's name, and every group's field name."""
    names = set(leaves(cls))
    for f in fields(cls):
        if _is_group(f):
            names |= {f.name} | option_names(f.metadata["group"])
    return names


def build(cls: type, values: Mapping[str, object], *, fit_defaults: bool = False) -> Any:
    """The tree ``cls`` from option values by name (a group may also be given whole, by its field
    name, and its leaves given by name then change it); what is not given keeps its default, or
    its fit default where ``fit_defaults``. Unknown names are errors. Nothing is checked here."""
    known = option_names(cls)
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecfitError(f"unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return _build(cls, values, fit_defaults, None)


def _build(cls: type, values: Mapping[str, object], fit_defaults: bool, base: object) -> Any:
    given: dict[str, object] = {}
    for f in fields(cls):
        if _is_group(f):
            sub = f.metadata["group"]
            start = values.get(f.name, getattr(base, f.name) if base is not None else MISSING)
            inner = {name: values[name] for name in option_names(sub) if name in values}
            if f.metadata["optional"] and start in (None, MISSING) and all(
                    inner.get(leaf.name, leaf.default) == leaf.default for leaf in leaves(sub).values()):
                given[f.name] = None
            else:
                given[f.name] = _build(sub, inner, fit_defaults, None if start in (None, MISSING) else start)
        elif f.name in values and f.metadata.get("option", True):
            given[f.name] = values[f.name]
        elif base is None and fit_defaults and "fit_default" in f.metadata:
            given[f.name] = f.metadata["fit_default"]
    return replace(base, **given) if base is not None else cls(**given)


def check_tree(instance: object) -> None:
    """Check every declared field of a settings tree: each group by its own ``check()`` where it has
    one, else field by field (:func:`~specfit.models.params.check_fields`)."""
    check_fields(instance)
    for f in fields(instance):
        value = getattr(instance, f.name)
        if not _is_group(f) or value is None:
            continue
        if hasattr(value, "check"):
            value.check()
        else:
            check_tree(value)


# --- JSON ---------------------------------------------------------------------------------------


def to_json(instance: object) -> dict:
    """A settings tree as JSON: leaves by field name, groups nested under theirs unless flat.

    A leaf declared with ``param(..., written_when_set=True)`` is left out while it holds its
    default (:func:`from_json` reads it back as the default), so adding such a setting changes
    neither the JSON of settings that leave it alone nor anything keyed by that JSON (saved runs'
    ``config.json``, grid records).
    """
    out: dict = {}
    for f in fields(instance):
        value = getattr(instance, f.name)
        if f.metadata.get("written_when_set") and value == _default(f):
            continue
        if f.metadata.get("flat"):
            out.update(to_json(value))
        elif _is_group(f):
            out[f.name] = None if value is None else to_json(value)
        else:
            out[f.name] = copy.deepcopy(value)
    return out


def _json_keys(cls: type) -> list[str]:
    keys = []
    for f in fields(cls):
        keys += _json_keys(f.metadata["group"]) if f.metadata.get("flat") else [f.name]
    return keys


def from_json(cls: type, data: object, prefix: str = "") -> Any:
    """A settings tree from :func:`to_json`'s output; unknown keys are errors, missing ones keep
    their defaults. Values are checked later (``check()``)."""
    if not isinstance(data, dict):
        where = f" {prefix[:-1]}" if prefix else ""
        raise SpecfitError(f"settings{where} must be a mapping, got {type(data).__name__}")
    keys = _json_keys(cls)
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise SpecfitError(f"unknown settings {', '.join(prefix + k for k in unknown)}; known: "
                           f"{', '.join(sorted(prefix + k for k in keys))}")
    groups = _groups(cls)
    values = dict(data)
    for name, value in data.items():
        if name in groups and not (value is None and groups[name].metadata["optional"]):
            values[name] = from_json(groups[name].metadata["group"], value, f"{prefix}{name}.")
    return cls(**values)


# --- the command line -----------------------------------------------------------------------------


def parse_grid(text: str) -> list[float]:
    """``"10,20,30"`` or ``"START:STOP:STEP"`` (inclusive) to a list of at most
    :data:`MAX_GRID_VALUES` finite floats."""
    malformed = SpecfitError(f"malformed grid {text!r}: use 10,20,30 or START:STOP:STEP")
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            count = (stop - start) / step + 1 if step > 0 else math.nan
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
            count = len(values)
    except ValueError:
        raise malformed from None
    if ":" in text and not (math.isfinite(start) and math.isfinite(count) and stop >= start):
        raise malformed
    if ":" not in text and not (values and all(math.isfinite(v) for v in values)):
        raise malformed
    if count > MAX_GRID_VALUES:
        raise SpecfitError(f"the grid {text!r} has {count:.3g} values; at most {MAX_GRID_VALUES}")
    if ":" in text:
        return [round(start + i * step, 10) for i in range(round(count - 1) + 1)]
    return values


def _pair(metavar: str) -> Callable[[str], tuple[str, str]]:
    def parse(item: str) -> tuple[str, str]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"malformed {item!r}: use {metavar}")
        return key.strip(), value.strip()

    return parse


def _grid(text: str) -> list[float]:
    try:
        return parse_grid(text)
    except SpecfitError as exc:  # argparse names the flag
        raise argparse.ArgumentTypeError(str(exc)) from None


def _help_text(leaf: Leaf, default: object, note: str | None = None, text: str | None = None) -> str:
    """A flag's ``--help``: the declared help (or the command's ``text``), the command's ``note``
    in parentheses, and the default unless it is empty or the text already speaks of it."""
    text = (text or leaf.help) + (f" ({note})" if note else "")
    if leaf.kind is not bool and default not in (None, {}, []) and "default" not in text:
        text += f" (default: {default})"
    return text.replace("%", "%%")


def add_flags(
    parser: argparse.ArgumentParser, cls: type, *, only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (), defaults: Mapping[str, object] | None = None,
    notes: Mapping[str, str] | None = None, title: str | None = None, texts: Mapping[str, str] | None = None,
    types: Mapping[str, Callable[[str], object]] | None = None,
) -> None:
    """Add a flag for each option of ``cls`` that has one (``only`` those, less ``skip``), under the
    heading of its group (the tree's own options under ``title``, or among the command's options).
    ``texts`` replaces the declared help of options (by name) where a command reads them its own way;
    ``types`` their parsers, where a command takes words besides the declared type.

    A flag absent from the command line leaves no attribute (see :func:`given_flags`); ``--help``
    shows the default the command uses: ``defaults`` (by name), else the fit default.
    """
    headings: dict[str | None, Any] = {None: parser if title is None else parser.add_argument_group(title)}
    for leaf in leaves(cls).values():
        if leaf.flag is None or (only is not None and leaf.name not in only) or leaf.name in skip:
            continue
        if leaf.title not in headings:
            headings[leaf.title] = parser.add_argument_group(leaf.title)
        default = (defaults or {}).get(leaf.name, leaf.fit_default)
        options: dict[str, Any] = {"dest": leaf.name, "default": argparse.SUPPRESS,
                                   "help": _help_text(leaf, default, (notes or {}).get(leaf.name),
                                                      (texts or {}).get(leaf.name))}
        if leaf.metavar:
            options["metavar"] = leaf.metavar
        if leaf.kind is bool:
            options.update(action="store_const", const=not leaf.default)
        elif leaf.kind is dict:
            options.update(action="append", type=_pair(leaf.metavar or "KEY=VALUE"))
        elif leaf.kind is list:
            options.update(type=_grid)
        else:
            options.update(type=(types or {}).get(leaf.name, leaf.kind), choices=leaf.choices)
        headings[leaf.title].add_argument(leaf.flag, **options)


def given_flags(namespace: argparse.Namespace, cls: type) -> dict[str, object]:
    """The options of ``cls`` given on the command line, by name (``KEY=VALUE`` pairs as a dict)."""
    given = {name: getattr(namespace, name) for name in leaves(cls) if hasattr(namespace, name)}
    return {name: dict(value) if leaves(cls)[name].kind is dict else value for name, value in given.items()}


# --- the Python API -------------------------------------------------------------------------------


def keyword_parameters(cls: type, skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """Keyword-only parameters for the options of ``cls`` (less ``skip``) at their fit defaults, and
    for its optional groups given whole, annotated with their declared types: a signature for
    functions that take them as ``**options``."""
    out = [inspect.Parameter(leaf.name, inspect.Parameter.KEYWORD_ONLY, default=leaf.fit_default,
                             annotation=leaf.hint) for leaf in leaves(cls).values() if leaf.name not in skip]
    hints = typing.get_type_hints(cls)
    out += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hints[f.name])
            for f in fields(cls) if _is_group(f) and f.metadata["optional"] and f.name not in skip]
    return out


def describe(cls: type, skip: tuple[str, ...] = (), indent: str = "        ") -> str:
    """One docstring line per option of ``cls`` (less ``skip``): name, fit default and help."""
    return "\n".join(f"{indent}{leaf.name} (default {leaf.fit_default!r}): {leaf.help}."
                     for leaf in leaves(cls).values() if leaf.name not in skip)
