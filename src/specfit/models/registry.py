"""The model registry: name -> builder, default hyperparameters, learning rate and frequency knob.

Every model is built as ``entry.create(in_features, out_features, params)``, where ``params`` (the
user's, by name) update the entry's defaults into the family's parameter object, which the builder
receives. The frequency knob is one of those parameters; FreSh searches it over ``knob.grid``. A
family whose knob interacts with another parameter declares that one as its ``second_knob``, with a
small grid holding its default; FreSh then chooses both at once when asked (``two_knobs``).

To add a model: write an ``nn.Module`` taking ``(in_features, out_features, params)`` (its
:class:`~specfit.models.params.ModelParams` dataclass) and mapping ``(N, in_features)`` coordinates
to ``(N, out_features)`` values, then call :func:`register` with a :class:`ModelEntry`. A builder
taking ``(in_features, out_features, **hyperparameters)`` with a plain dataclass works too (plugins
written so keep working).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.figures import figure_uri
from specfit.models.hashgrid import HashGridMLP, HashGridParams
from specfit.models.memory import FLOAT_BYTES, ModelSize, check_fits
from specfit.models.mlp import (
    BasicParams,
    FourierMLP,
    GaussianParams,
    MLPParams,
    NerfParams,
    PositionalParams,
)
from specfit.models.params import ModelParams, ParamValue, declared, parse_params, specs
from specfit.models.resfields import ResFieldSiren, ResFieldsParams
from specfit.models.sine import Finer, FinerParams, Siren, SirenParams
from specfit.models.tuner import IntegerSineNet, TunerParams
from specfit.models.tuner_spectrum import sine_spectrum_figure
from specfit.models.wavelet import Gauss, GaussParams, Wire, WireParams
from specfit.util.plugins import load_plugins


@dataclass(frozen=True)
class Knob:
    """The embedding-frequency hyperparameter of a model and its default FreSh grid.

    Attributes:
        benchmark: the fixed value that published benchmarks set for every signal, converted to
            specfit's convention (``None``: none published), for comparing FreSh's choice with a
            setting made by hand; it lies within ``grid``.
        benchmark_source: where that value comes from, in its source's convention, and how it
            was converted (or why there is none).
    """

    name: str
    default: ParamValue
    grid: tuple[float, ...]
    description: str
    benchmark: ParamValue = None
    benchmark_source: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """Everything specfit needs to know about one model family.

    Attributes:
        build: ``build(in_features, out_features, params) -> nn.Module`` with the family's
            parameter object (a :class:`~specfit.models.params.ModelParams`); for a plain dataclass
            (a plugin's), ``build(in_features, out_features, **fields)``. See :meth:`create`.
        params: the model's hyperparameters with their defaults: an instance of the family's
            dataclass (see :mod:`specfit.models.params`), which also declares what the family
            needs and can do.
        value_range: ``"signed"`` when the model is trained on values in [-1, 1], ``"unit"`` for [0, 1].
        convention: how the model applies its frequency, recorded in saved runs.
        compile: whether ``torch.compile`` is worth trying for its training step.
        adam_betas: Adam's betas the model was published with.
        adam_eps: Adam's epsilon the model was published with.
        selection_overrides: hyperparameters used only while FreSh evaluates spectra (e.g. the
            hash grid's larger table init), never for training.
        compactable: whether the network can be compacted after training (pruned and densified,
            :mod:`specfit.training.compaction`; TUNER's integer-frequency networks).
        second_knob: a parameter that interacts with the knob, with a small grid (its default among
            its values) over which FreSh searches the knob once per value when asked to choose both
            (``two_knobs``); ``None``: none.
        report_views: extra report sections for a trained model, ``(model, in_features) ->
            [(title, data-URI PNG)]``.
    """

    name: str
    summary: str
    build: Callable[..., nn.Module]
    params: object
    lr: float
    value_range: str
    convention: str
    knob: Knob | None
    reference: str
    compile: bool = True
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    selection_overrides: dict[str, ParamValue] = field(default_factory=dict)
    compactable: bool = False
    second_knob: Knob | None = None
    report_views: Callable[[nn.Module, int], list[tuple[str, str]]] | None = None

    @property
    def defaults(self) -> dict[str, ParamValue]:
        """The default hyperparameters as a dict (the knob at its default)."""
        return asdict(self.params)

    def hyperparameters(self, params: Mapping[str, object] | None = None) -> object:
        """The family's parameter object: the defaults updated by ``params`` (by name, parsed and
        checked by :func:`resolve_params`)."""
        return replace(self.params, **resolve_params(self, dict(params or {})))

    def create(self, in_features: int, out_features: int, params: Mapping[str, object] | None = None
               ) -> nn.Module:
        """The model ``(N, in_features) -> (N, out_features)`` with ``params`` over the defaults,
        drawing its initial weights from the global random stream."""
        hyper = self.hyperparameters(params)
        if isinstance(hyper, ModelParams):
            return self.build(in_features, out_features, hyper)
        return self.build(in_features, out_features, **asdict(hyper))


REGISTRY: dict[str, ModelEntry] = {}

ENTRY_POINT_GROUP = "specfit.models"
_plugins_loaded = False
_FAILED_PLUGINS: dict[str, str] = {}  # entry-point name -> why it was not loaded


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (replacing one of the same name)."""
    REGISTRY[entry.name] = entry
    return entry


def _load_plugins() -> None:
    """Register the models that installed packages declare under the ``specfit.models`` entry
    point (a :class:`ModelEntry`, or a function returning one), once per process.

    A plugin that fails to load is skipped with a warning; it never replaces a built-in model.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    builtin = set(REGISTRY)
    for entry in load_plugins(ENTRY_POINT_GROUP, "model", ModelEntry,
                              lambda found: _check_plugin(found, builtin), _FAILED_PLUGINS):
        register(entry)


def _check_plugin(entry: object, builtin: set[str]) -> None:
    """Raise unless a plugin's entry is complete enough to list, fit and render."""
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"it gave a {type(entry).__name__}, not a ModelEntry")
    if entry.name in REGISTRY:
        owner = "a built-in model" if entry.name in builtin else "another plugin"
        raise ValueError(f"the name {entry.name!r} is taken by {owner}")
    table = specs(entry.params)
    if entry.value_range not in ("signed", "unit"):
        raise ValueError(f"value_range must be 'signed' or 'unit', got {entry.value_range!r}")
    if entry.knob is not None and entry.knob.name not in table:
        raise ValueError(f"its knob {entry.knob.name!r} is not one of its parameters ({', '.join(table)})")
    second = entry.second_knob
    knob = entry.knob.name if entry.knob is not None else None
    if second is not None and (knob is None or second.name == knob or second.name not in table):
        raise ValueError(f"its second knob {second.name!r} must be another of its parameters "
                         f"({', '.join(table)}) next to a knob")


def models() -> dict[str, ModelEntry]:
    """Every registered model by name: the built-in ones, then those of installed plugins."""
    _load_plugins()
    return dict(REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``; a :class:`SpecfitError` lists the choices otherwise."""
    if name not in REGISTRY:
        _load_plugins()
    if name in _FAILED_PLUGINS:
        raise SpecfitError(f"model {name!r} comes from a plugin that failed to load: {_FAILED_PLUGINS[name]}")
    try:
        return REGISTRY[name]
    except KeyError:
        raise SpecfitError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}") from None


def _grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    count = round((stop - start) / step) + 1
    return tuple(round(float(v), 6) for v in np.linspace(start, stop, count))


def resolve_params(entry: ModelEntry, overrides: dict[str, ParamValue] | None) -> dict[str, ParamValue]:
    """The entry's defaults updated by ``overrides``, parsed to their fields' types and checked."""
    return parse_params(entry.params, overrides, entry.name)


def check_buildable(entry: ModelEntry, in_features: int, out_features: int,
                    params: Mapping[str, object]) -> ModelSize:
    """Build once and discard, without touching the random stream, so that a configuration the
    model's constructor rejects fails before any work starts (raises :class:`SpecfitError`).

    A model whose estimated size (:meth:`~specfit.models.params.ModelParams.model_size`) does not
    fit in memory is refused before it is built; returns the estimate (a family that gives none,
    such as a plugin's: the parameters of the model built, with no activations counted).
    """
    hyper = entry.hyperparameters(params)
    size = declared(hyper).model_size(in_features, out_features)
    if size is not None:
        needed = (size.params + size.scratch_values) * FLOAT_BYTES
        check_fits(f"a {entry.name} model of about {size.params:.3g} parameters", needed, torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        try:
            model = entry.create(in_features, out_features, params)
        except (ArithmeticError, ValueError, RuntimeError) as exc:
            if isinstance(exc, SpecfitError):
                raise
            raise SpecfitError(f"model {entry.name} cannot be built with {asdict(hyper)} "
                               f"({type(exc).__name__}: {exc})") from None
    return size or ModelSize(params=sum(p.numel() for p in model.parameters()), activations_per_sample=0)


def build_model(
    name: str, in_features: int, out_features: int, params: Mapping[str, object] | None = None
) -> nn.Module:
    """Build model ``name`` with ``params`` over its defaults."""
    return get_entry(name).create(in_features, out_features, params)


# Benchmark values (Knob.benchmark): a source's fixed setting converted to specfit's conventions.
# Coordinates: specfit's span [-1, 1]; Tancik et al.'s [0, 1) halve a Gaussian sigma and lower a
# positional sigma_p by one here (docs/protocols.md). SIREN's omega_0 multiplies the same
# first-layer weights in both SIREN conventions, so it keeps its number.
SIREN_KNOB = Knob("omega_0", 30.0, _grid(10, 200, 10), "first-layer frequency omega_0", 30.0,
                  "omega_0 = 30 for every image (Sitzmann et al. 2020; also the SIREN baseline of Yeom "
                  "et al. 2025's benchmark code), coordinates in [-1, 1]: the same number here")

register(ModelEntry(
    name="siren",
    summary="SIREN, sine activations",
    build=Siren,
    params=SirenParams(),
    lr=1e-4,
    value_range="signed",
    convention="fresh: sin(W(omega_0 x)+b), hidden sin(W(30h)+b), out W(30h)+b; "
    "siren: sin(omega(Wx+b))",
    knob=SIREN_KNOB,
    second_knob=Knob("hidden_omega_0", 30.0, (15.0, 30.0, 60.0), "hidden-layer frequency"),
    reference="Sitzmann et al. 2020; FreSh convention from Kania et al. 2024",
))
register(ModelEntry(
    name="finer",
    summary="FINER, sin(omega(|z|+1)z), first-layer bias U(-k, k)",
    build=Finer,
    params=FinerParams(),
    lr=5e-4,
    value_range="signed",
    convention="z = W h + b, out sin(omega (|z|+1) z), |z|+1 detached",
    knob=Knob("first_bias_scale", None, _grid(0.0, 3.0, 0.1),
              "first-layer bias range k (default: PyTorch's 1/sqrt(n_in))", None,
              "none: FINER's code keeps PyTorch's first-layer bias (the knob's default) unless k is given"),
    reference="Liu et al. 2024",
))
register(ModelEntry(
    name="finer-omega",
    summary="FINER without first-layer bias, first-layer omega_0 searched",
    build=Finer,
    params=FinerParams(first_bias_scale=0.0),
    lr=5e-4,
    value_range="signed",
    convention="z = W h + b, out sin(omega (|z|+1) z), first bias 0",
    knob=Knob("omega_0", 30.0, _grid(10, 200, 10), "first-layer frequency omega_0", 30.0,
              "omega_0 = 30 in FINER's code (Liu et al. 2024), the same convention: the same number"),
    reference="Liu et al. 2024; FreSh variant",
))
register(ModelEntry(
    name="resfields",
    summary="ResFields SIREN, per-frame low-rank weight residuals (time = first coordinate)",
    build=ResFieldSiren,
    params=ResFieldsParams(),
    lr=1e-4,
    value_range="signed",
    convention="SIREN (fresh or siren) with hidden W_i + sum_r coeff_i[t, r] F_i[r]; "
    "frame = round((t + 1)(n_frames - 1) / 2), t the first coordinate",
    knob=SIREN_KNOB,
    reference="Mihajlovic et al. 2024 (ICLR); SIREN as in Sitzmann et al. 2020",
))
register(ModelEntry(
    name="wire",
    summary="WIRE, complex Gabor wavelet activations",
    build=Wire,
    params=WireParams(),
    lr=5e-3,
    value_range="signed",
    convention="exp(i omega_0 z) exp(-|s_0 z|^2), complex hidden layers, real output",
    knob=Knob("omega_0", 20.0, _grid(5, 60, 5), "wavelet frequency omega_0 (own grid)", 10.0,
              "omega_0 = 10 with s_0 = 10 in Yeom et al. 2025's benchmark code (WIRE baseline, "
              "PyTorch's default init, width / sqrt(2)): the same convention and number"),
    second_knob=Knob("scale", 10.0, (5.0, 10.0, 20.0), "wavelet scale s_0"),
    reference="Saragadam et al. 2023",
    compile=False,
))
register(ModelEntry(
    name="gauss",
    summary="MLP with Gaussian activations exp(-(s z)^2)",
    build=Gauss,
    params=GaussParams(),
    lr=5e-3,
    value_range="signed",
    convention="exp(-(s z)^2), z = W h + b",
    knob=Knob("scale", 30.0, _grid(5, 60, 5), "activation scale s (own grid)", 20.0,
              "exp(-(20 z)^2) in Yeom et al. 2025's benchmark code (Gaussian baseline, PyTorch's "
              "default init): the same convention and number"),
    reference="Ramasinghe and Lucey 2022",
))
register(ModelEntry(
    name="relu",
    summary="ReLU MLP on raw coordinates (no mapping)",
    build=FourierMLP,
    params=MLPParams(),
    lr=1e-2,
    value_range="unit",
    convention="gamma(v) = v, sigmoid output",
    knob=None,
    reference="Tancik et al. 2020 ('none')",
))
register(ModelEntry(
    name="ff-basic",
    summary="ReLU MLP, basic Fourier mapping [cos 2 pi v, sin 2 pi v]",
    build=FourierMLP,
    params=BasicParams(),
    lr=1e-2,
    value_range="unit",
    convention="gamma(v) = [cos 2 pi v / p, sin 2 pi v / p], p = 2 for coordinates in [-1, 1] "
    "(set period=1 for the lattice split's [0, 1)), sigmoid output",
    knob=None,
    reference="Tancik et al. 2020 ('basic')",
))
register(ModelEntry(
    name="ff-positional",
    summary="ReLU MLP, positional encoding 2^linspace(0, scale, m/2) - 1 per axis",
    build=FourierMLP,
    params=PositionalParams(),
    lr=1e-3,
    value_range="unit",
    convention="gamma(v) = [cos 2 pi B v, sin 2 pi B v], B axis-aligned log-spaced, sigmoid output",
    knob=Knob("scale", 6.0, _grid(1, 12, 1), "log2 of the highest frequency, sigma_p", 5.0,
              "sigma_p = 6 on natural images (Tancik et al. 2020), coordinates in [0, 1): "
              "sigma_p - 1 = 5 on specfit's [-1, 1] (6 on the lattice split's [0, 1))"),
    reference="Tancik et al. 2020 ('positional encoding')",
))
register(ModelEntry(
    name="ff-nerf",
    summary="ReLU MLP, NeRF positional encoding sin/cos(2^k pi v), k < octaves",
    build=FourierMLP,
    params=NerfParams(),
    lr=1e-3,
    value_range="unit",
    convention="gamma(v) = [v, sin 2^k pi v, cos 2^k pi v], sigmoid output",
    knob=Knob("octaves", 10, _grid(1, 16, 1), "number of octaves L", 10,
              "L = 10 for positions normalised to [-1, 1] (Mildenhall et al. 2020): the same number"),
    reference="Mildenhall et al. 2020",
))
register(ModelEntry(
    name="ff-gaussian",
    summary="ReLU MLP, Gaussian random Fourier features B ~ N(0, sigma^2)",
    build=FourierMLP,
    params=GaussianParams(),
    lr=1e-3,
    value_range="unit",
    convention="gamma(v) = [cos 2 pi B v, sin 2 pi B v], B frozen, sigmoid output",
    knob=Knob("sigma", 10.0, _grid(1, 20, 1), "scale sigma of B (default: Tancik's natural-image 10)", 5.0,
              "sigma = 10 on natural images (Tancik et al. 2020), coordinates in [0, 1): sigma / 2 = 5 "
              "on specfit's [-1, 1] (10 on the lattice split's [0, 1))"),
    second_knob=Knob("features", 256, (64, 128, 256, 512), "random frequency vectors m"),
    reference="Tancik et al. 2020 ('Gaussian')",
))
register(ModelEntry(
    name="hashgrid",
    summary="multiresolution hash grid (16 levels x 2 features) + ReLU MLP 2 x 64",
    build=HashGridMLP,
    params=HashGridParams(),
    lr=1e-2,
    value_range="unit",
    convention="grid on [0, 1] = (x + 1) / 2, N_l = floor(N_min b^l), d-linear, uint32 spatial hash",
    knob=Knob("n_max", 2048.0, tuple(float(round(2 ** (k / 2))) for k in range(8, 25)),
              "finest resolution N_max (log-spaced grid 16..4096)", None,
              "none: Instant-NGP sets N_max per task (for images, from their resolution)"),
    reference="Muller et al. 2022 (Instant-NGP)",
    compile=False,
    adam_betas=(0.9, 0.99),
    adam_eps=1e-15,
    selection_overrides={"init_scale": 1e-2},
    second_knob=Knob("log2_table", 16, (12, 14, 16, 18), "log2 of the table entries per level"),
))

_TUNER_KNOB = Knob("band_limit", 40, _grid(16, 128, 8), "band limit B of the integer frequencies (L = B/3)",
                   None, "none: TUNER sets the band limit from each signal's size")


def _tuner_views(model: nn.Module, in_features: int) -> list[tuple[str, str]]:
    """The spectrum view of an integer-frequency network (1-D and 2-D inputs)."""
    if not model.hidden or in_features > 2:
        return []

    return [("Spectrum of the network", figure_uri(sine_spectrum_figure(model, trained=True)))]


def _tuner_entry(name: str, init: str, summary: str, convention: str, reference: str,
                 second_knob: Knob | None = None) -> ModelEntry:
    def build(in_features: int, out_features: int, params: TunerParams) -> nn.Module:
        return IntegerSineNet(in_features, out_features, params, init)

    return ModelEntry(name=name, summary=summary, build=build, params=TunerParams(), lr=5e-4,
                      value_range="signed", convention=convention, knob=_TUNER_KNOB, reference=reference,
                      compactable=True, second_knob=second_knob,
                      report_views=_tuner_views)


register(_tuner_entry(
    "tuner", "bounded",
    "integer-frequency sine net, bounded hidden weights (low/high column bounds)",
    "sin((2 pi / p) K x + phi), K integer, frozen; hidden sin(omega_0 (W h + b)), |W[:, j]| <= c_j / omega_0",
    "Aldana et al., CVPR 2025",
    # the bounds only the bounded initialisation applies
    Knob("c_high", 0.5, (0.25, 0.5, 1.0), "column bound of the high frequencies"),
))
register(_tuner_entry(
    "tuner-uniform", "uniform",
    "integer-frequency sine net, frequencies uniform in the band, no bounds (baseline)",
    "sin((2 pi / p) K x + phi), K uniform in [0, B] x [-B, B], no bounds",
    "Aldana et al., CVPR 2025, uniform baseline",
))
