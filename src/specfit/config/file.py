"""A fit described in a file: TOML, YAML or JSON with the fields of a run's ``config.json``.

The fields read (every one optional)::

    [signal]
    source = "photo.png"          # a file, a built-in name (shepp-logan, ...); none: the bundled image

    [load]                        # how the signal is loaded (specfit.kinds.kind.LoadOptions)
    resize = 256                  # "full": the file's own size; none: image files at the working size

    [settings]                    # what is fitted (specfit.config.settings.FitSettings)
    model = "siren"
    seed = 0
    params = { hidden_layers = 3 }

    [settings.fit]                # how it is trained (specfit.training.loop.FitOptions)
    steps = 2000

A run's ``config.json`` holds these and more (the trained model's resolved ``model`` and
``params``, versions, hardware): the rest describes the run and is ignored here, so a saved
run's config fits it again exactly. A relative ``source`` is taken from the current folder, else
from the config file's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from specfit.config.settings import FitSettings
from specfit.config.tree import leaves
from specfit.errors import SpecfitError
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import FULL_SIZE
from specfit.models.params import check_fields

SUFFIXES = (".toml", ".yaml", ".yml", ".json")
MAX_BYTES = 1 << 20
# What a saved run's config.json holds besides the fields read here (see specfit.runs.run.RunConfig).
RUN_RECORD_FIELDS = ("format", "specfit", "model", "params", "in_features", "out_features", "value_range",
                     "convention", "coordinates", "versions", "created", "command", "hardware")
READ_FIELDS = ("signal", "load", "settings")


@dataclass
class FitRequest:
    """A fit read from a file: the signal's source, its loading options and the settings.

    Attributes:
        source: a path or built-in signal name; ``None`` for the bundled default image.
        load: loading options (field names of :class:`~specfit.kinds.kind.LoadOptions`).
        settings: the fit's settings (defaults where the file is silent).
        given: the settings the file gives, by dotted name (``"model"``, ``"fit.steps"``,
            ``"compaction.densify"``): what a command line merges under its own options.
    """

    source: str | None = None
    load: dict = field(default_factory=dict)
    settings: FitSettings = field(default_factory=FitSettings)
    given: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"signal": {"source": self.source}, "load": dict(self.load),
                "settings": self.settings.to_json()}

    def options(self) -> dict[str, object]:
        """The settings the file gives, by option name (``"steps"`` for ``fit.steps``), as
        :meth:`FitSettings.for_fit <specfit.config.settings.FitSettings.for_fit>` takes them;
        fields that are no option of their own (``fit.seed``, set from ``seed``) are left out."""
        names = {leaf.key: leaf.name for leaf in leaves(FitSettings).values()}
        return {names[key]: value for key, value in self.given.items() if key in names}


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted names; ``params`` stays one mapping."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "params":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _parse(path: Path, text: str) -> object:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # each parser has its own error type
        problem = " ".join(str(exc).split())
        raise SpecfitError(f"{path} is not valid {suffix[1:].upper()} ({problem})") from None


def _source(value: object, path: Path) -> str | None:
    """``signal.source`` as a path that exists from here where it can (see the module docstring)."""
    if value is None or value == "skimage.data.camera":
        return None
    if not isinstance(value, str) or not value:
        raise SpecfitError(f"{path}: signal.source must be a file name, got {value!r}")
    candidate = Path(value).expanduser()
    if not candidate.is_absolute() and not candidate.exists() and (path.parent / candidate).exists():
        return str(path.parent / candidate)
    return value


def read_fit_config(path: str | Path) -> FitRequest:
    """Read a fit from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file (see the module docstring).

    Raises :class:`SpecfitError` naming the file and the first problem: unreadable, not the
    format its suffix says, an unknown field (a typo would otherwise be ignored), an ill-typed or
    invalid setting.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise SpecfitError(f"{path}: a config file must end in {', '.join(SUFFIXES)}")
    if path.exists() and not path.is_file():  # a folder, or a named pipe that would never end
        raise SpecfitError(f"cannot read {path} (not a regular file)")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SpecfitError(f"{path} is larger than {MAX_BYTES} bytes: not a config file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecfitError(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
    data = _parse(path, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecfitError(f"{path} must hold a mapping of fields, got {type(data).__name__}")
    saved_run = "format" in data
    allowed = READ_FIELDS + (RUN_RECORD_FIELDS if saved_run else ())
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        hint = " (the model and its params go under settings)" if {"model", "params"} & set(unknown) else ""
        raise SpecfitError(
            f"{path}: unknown field {unknown[0]!r}{hint}; the fields are {', '.join(READ_FIELDS)}")
    signal = data.get("signal") or {}
    if not isinstance(signal, dict):
        raise SpecfitError(f"{path}: signal must be a mapping with a source")
    load = data.get("load") or {}
    if not isinstance(load, dict):
        raise SpecfitError(f"{path}: load must be a mapping of loading options")
    known = {f.name for f in fields(LoadOptions)}
    bad = sorted(set(load) - known)
    if bad:
        raise SpecfitError(f"{path}: unknown loading option {bad[0]!r}; known: {', '.join(sorted(known))}")
    given = data.get("settings") or {}
    try:
        if load.get("resize") == FULL_SIZE:  # the file's own size
            load = {**load, "resize": None}
        check_fields(LoadOptions(**load))
        settings = FitSettings.from_json(given)
        settings.check()
    except SpecfitError as exc:
        raise SpecfitError(f"{path}: {exc}") from None
    except TypeError as exc:  # a number where a word belongs, or the reverse
        raise SpecfitError(f"{path}: a setting has the wrong type ({exc})") from None
    return FitRequest(source=_source(signal.get("source"), path), load=dict(load), settings=settings,
                      given=_flatten(given))


def write_fit_config(path: str | Path, request: FitRequest) -> None:
    """Write ``request`` as TOML (``.toml``, see :func:`fit_config_toml`), YAML (``.yaml``/``.yml``)
    or JSON (``.json``), readable by :func:`read_fit_config`."""
    import yaml

    path = Path(path)
    data = request.to_json()
    if path.suffix.lower() == ".toml":
        path.write_text(fit_config_toml(request))
    elif path.suffix.lower() in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    elif path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        raise SpecfitError(f"{path}: write a config as .toml, .yaml, .yml or .json")


def _toml_value(value: object) -> str:
    """``value`` (a setting's: a bool, number, string, list or mapping of those) in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(key)} = {_toml_value(item)}" for key, item in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise SpecfitError(f"cannot write {value!r} to a TOML config")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_lines(items: list[tuple[str, object, str]], commented: bool = False) -> list[str]:
    """``# help`` then ``key = value`` for each ``(key, value, help)``, commented out when
    ``commented``; a ``None`` value (the setting's default rule) is written ``# key =``, to be
    filled in."""
    lines = []
    for key, value, text in items:
        line = f"{key} =" if value is None else f"{key} = {_toml_value(value)}"
        lines += [f"# {text}", f"# {line}" if commented or value is None else line]
    return lines


def fit_config_toml(request: FitRequest) -> str:
    """``request`` as a TOML config file that :func:`read_fit_config` reads back to the same fit:
    every loading option and setting at its value, each under a comment with its help; settings
    without a value (their default rule applies) are written commented out."""
    load = {**{f.name: f.default for f in fields(LoadOptions)}, **request.load}
    lines = ["# A fit for `specfit fit --config FILE` (options given on the command line override it).", "",
             "[signal]", "# a file or a built-in signal (shepp-logan, ...); none: the bundled image",
             f"source = {_toml_value(request.source)}" if request.source else "# source =", "",
             "[load]"]
    lines += _toml_lines([(leaf.name, load[leaf.name], leaf.help) for leaf in leaves(LoadOptions).values()])
    settings = request.settings.to_json()
    tables: dict[str, list[tuple[str, object, str]]] = {"settings": []}
    for leaf in leaves(FitSettings).values():
        table, _, key = f"settings.{leaf.key}".rpartition(".")
        container = settings
        for part in table.split(".")[1:]:
            container = container.get(part) or {}
        own = getattr(request.settings, leaf.name, None) if table == "settings" else None
        value = container.get(key, own)
        tables.setdefault(table, []).append((key, leaf.default if value is None else value, leaf.help))
    for table, items in tables.items():
        optional = table != "settings" and settings.get(table.split(".")[1]) is None
        lines += ["", f"# [{table}]  (none by default: uncomment to use)" if optional else f"[{table}]"]
        lines += _toml_lines(items, commented=optional)
    return "\n".join(lines) + "\n"
