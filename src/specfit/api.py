"""The Python API: load a signal, fit it, select a knob, look at a spectrum, reload a run.

Everything here works in memory and writes nothing; :meth:`specfit.Run.save` writes a run folder.
These names are importable from ``specfit`` itself.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from specfit.config.settings import NOT_SELECTION, FitSettings
from specfit.config.tree import describe, keyword_parameters, leaves, option_names
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fitting.pipeline import FitPlan, plan_fit, run_plan
from specfit.fresh.search import Selection, fresh_select
from specfit.fresh.spectra import Band
from specfit.kinds import load as loader
from specfit.kinds.kind import LoadOptions
from specfit.kinds.registry import get_kind, kinds, task_for
from specfit.models.params import check_fields
from specfit.models.registry import get_entry
from specfit.runs.checkpoints import CHECKPOINT, CheckpointSink, read_checkpoint
from specfit.runs.folder import read_config
from specfit.runs.format import METRICS
from specfit.runs.run import Run, RunConfig, load_run
from specfit.signals.shape import shape_from_mesh
from specfit.tangent.analysis import NTKResult, model_ntk
from specfit.util.runtime import resolve_device

DEFAULT_SOURCE = "skimage.data.camera"  # the bundled default signal's source
_LOAD_FIELDS = {f.name for f in fields(LoadOptions)} - {"kind"}
_PACKAGE = str(Path(__file__).resolve().parent)
_FLAG = re.compile(r"--[a-z][a-z-]*")


class SpecfitWarning(UserWarning):
    """A note on a fit or a selection that names a setting (e.g. FreSh chose an edge of its grid:
    widen it with ``grid=[...]``), worded with the API's keywords. The command line prints the
    same notes as ``note:`` lines naming its flags instead."""


def _api_wording(note: str) -> str:
    """``note`` with the command-line flag of each setting replaced by its keyword
    (``--grid``: ``grid=[...]``, ``--split``: ``split=...``)."""
    declared = {**leaves(LoadOptions), **leaves(FitSettings)}
    settings = {leaf.flag: leaf for leaf in declared.values() if leaf.flag}

    def keyword(flag: re.Match) -> str:
        leaf = settings.get(flag.group())
        if leaf is None:
            return flag.group()
        return f"{leaf.name}=[...]" if leaf.kind is list else f"{leaf.name}=..."

    return _FLAG.sub(keyword, note)


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning raised in the function calling this one at the
    first caller outside specfit."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    return level


def _warn_notes(notes: Iterable[str]) -> None:
    """Warn (:class:`SpecfitWarning`) each note that names a setting's flag, in the API's words,
    pointing at the first caller outside specfit."""
    level = _caller_level()
    for note in notes:
        if _FLAG.search(note):
            warnings.warn(_api_wording(note), SpecfitWarning, stacklevel=level)


def load_signal(source: object = None, kind: str | None = None, **options: object) -> object:
    """Load a signal to fit.

    Args:
        source: a file path (image, ``.npy``, ``.wav``, video, NIfTI, mesh; ``None``: the bundled
            cameraman image), a NumPy array or torch tensor, or a ``trimesh.Trimesh``. Arrays are
            images ``(H, W[, C])``, audio ``(T[, C])`` (with ``sample_rate=``), video
            ``(T, H, W, 3)`` (``fps=``, default 25) or volumes ``(D, H, W[, C])``; the kind is
            taken from the shape when it is unambiguous (2-D, or 3-D with at most 4 channels last:
            an image; other 3-D: a volume) and must be given otherwise.
        kind: ``"image"``, ``"audio"``, ``"video"``, ``"volume"`` or ``"shape"``.
        options: loading options: ``resize`` (images and video frames: short side; volumes:
            longest axis; ``"full"`` or ``None``: the file's own size), ``max_seconds``,
            ``sample_rate`` (audio), ``max_frames``, ``frame_step`` (video), ``allow_open``
            (meshes), ``max_samples`` (size limit), and for arrays ``name``, ``sample_rate`` and
            ``fps``.

    An image file whose shorter side is larger than :data:`~specfit.kinds.load.WORKING_SIZE`
    pixels (128) is shrunk to that working size when no ``resize`` is given, with a
    :class:`SpecfitWarning` (a default fit of it then takes minutes on two CPU cores):
    ``resize="full"`` keeps its size, ``resize=N`` gives its shorter side.

    Returns a :class:`~specfit.signals.base.Signal` (values ``(C, *grid)`` in [0, 1]) or, for a
    mesh, a :class:`~specfit.signals.shape.Shape`.
    """
    if isinstance(source, str | Path) or source is None:
        unknown = sorted(set(options) - _LOAD_FIELDS)
        if unknown:
            raise SpecfitError(f"unknown loading options {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(_LOAD_FIELDS))}")
        working = "resize" not in options and source is not None
        if options.get("resize") == loader.FULL_SIZE:
            options = {**options, "resize": None}
        loading = LoadOptions(kind=kind, **options)
        check_fields(loading)
        signal = loader.load_signal(source, loading)
        return _at_working_size(signal) if working else signal
    if type(source).__module__.startswith("trimesh"):
        return shape_from_mesh(source, str(options.get("name", "mesh")), bool(options.get("allow_open")))
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        return _from_array(source, kind, dict(options))
    raise SpecfitError(f"cannot load a {type(source).__name__}: give a path, an array or a trimesh.Trimesh")


def _at_working_size(signal: object) -> object:
    """``signal`` at the working size (see :func:`load_signal`), with a warning if it was shrunk."""
    shrunk = loader.at_working_size(signal)
    if shrunk is not signal:
        (height, width), (h, w) = signal.spatial_shape, shrunk.spatial_shape
        warnings.warn(f"{signal.name} is {height} x {width} pixels; it was loaded at the working size "
                      f"{h} x {w} (shorter side {loader.WORKING_SIZE}) so that a fit takes minutes on a CPU; "
                      "load_signal(..., resize='full') keeps its size, resize=N sets its shorter side",
                      SpecfitWarning, stacklevel=_caller_level())
    return shrunk


def _array_kind(array: np.ndarray, kind: str | None, options: dict) -> str:
    if kind is not None:
        return kind
    if "sample_rate" in options:
        return "audio"
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] <= 4):
        return "image"
    if array.ndim == 3:
        return "volume"
    raise SpecfitError(f"the kind of an array of shape {array.shape} is ambiguous: give kind= "
                       "(video (T, H, W, 3) or volume (D, H, W, C))")


def _from_array(array: np.ndarray, kind: str | None, options: dict) -> object:
    signal_kind = get_kind(_array_kind(array, kind, options))
    if signal_kind.from_array is None:
        raise SpecfitError(f"{signal_kind.name} signals cannot be made from an array")
    name = str(options.pop("name", "array"))
    signal = signal_kind.from_array(array, name, options)
    if options:
        raise SpecfitError(f"options {', '.join(sorted(options))} do not apply to {signal_kind.name} arrays")
    return signal


def _as_signal(signal: object) -> object:
    """A loaded signal (of any registered kind, plugins' included), or anything :func:`load_signal`
    accepts."""
    loaded = isinstance(getattr(signal, "kind", None), str) and signal.kind in kinds()
    return signal if loaded else load_signal(signal)


def _settings(model: str, options: dict[str, object], skip: tuple[str, ...] = ()) -> FitSettings:
    """Settings from keyword options: the settings' names (less ``skip``) set them, the other
    names are the model's hyperparameters (added to ``params``)."""
    names = option_names(FitSettings) - set(skip)
    given = {name: value for name, value in options.items() if name in names}
    params = {name: value for name, value in options.items() if name not in names}
    given["params"] = {**dict(given.get("params") or {}), **params}
    return FitSettings.for_fit(model=model, **given)


def fit(signal: object, model: str = "siren", *, progress: Progress = ignore, **options: object) -> Run:
    """Fit ``signal`` with ``model``, its knob (e.g. SIREN's ``omega_0``) chosen by FreSh by
    default; ``fresh=False`` trains the model's default value instead, and a value set among the
    hyperparameters (e.g. ``omega_0=60``) is trained as given. Writes nothing.

    ``signal`` is a loaded signal or anything :func:`load_signal` accepts; ``progress`` receives
    :class:`~specfit.events.Event` objects. ``options`` are the settings of
    :class:`~specfit.config.settings.FitSettings` by name (a group may also be given whole, e.g.
    ``compaction=CompactionPlan(...)``; its options by name change it) and the model's
    hyperparameters (``specfit models``; also as ``params={...}``). ``help(specfit.fit)`` lists
    the settings with their defaults, as does the table in the API reference. Notes on the fit are
    in ``run.metrics.notes``; those that name a setting (e.g. FreSh chose an edge of its grid) are
    also warned (:class:`SpecfitWarning`).
    """
    return fit_settings(signal, _settings(model, options), progress)


fit.__doc__ += "\n    Settings:\n" + describe(FitSettings, skip=("model",)) + "\n"  # type: ignore[operator]
fit.__signature__ = inspect.signature(fit).replace(parameters=[  # type: ignore[attr-defined]
    *list(inspect.signature(fit).parameters.values())[:2], *keyword_parameters(FitSettings, skip=("model",)),
    inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=ignore, annotation=Progress),
    inspect.Parameter("hyperparameters", inspect.Parameter.VAR_KEYWORD)])


def fit_settings(signal: object, settings: FitSettings, progress: Progress = ignore) -> Run:
    """:func:`fit` with the settings as one :class:`~specfit.config.settings.FitSettings`."""
    return fit_plan(check_fit(signal, settings), progress)


def check_fit(signal: object, settings: FitSettings) -> FitPlan:
    """Check ``settings`` against ``signal`` (a loaded signal or anything :func:`load_signal`
    accepts) before any work, and plan the fit that :func:`fit_plan` carries out.

    Raises :class:`SpecfitError` for whatever would fail later (an unknown model or parameter, a
    split the signal has no use for, a model that would not fit in memory, a constant signal). The
    plan tells what will be fitted: ``plan.task`` (``headline()``, ``name``, ``notes``) and
    ``plan.entry`` (the model's registry entry).
    """
    return plan_fit(_as_signal(signal), settings)


def fit_plan(
    plan: FitPlan, progress: Progress = ignore, checkpoints: CheckpointSink | None = None,
    command: str | None = None,
) -> Run:
    """Carry out a fit checked by :func:`check_fit`: FreSh, training, evaluation. Writes nothing
    unless ``checkpoints`` is given (it receives the run's configuration, then the training state
    every ``checkpoint_every`` steps and when interrupted); ``command`` is the command line
    recorded in the run."""
    if command is not None:
        plan.command = command
    run = run_plan(plan, progress, checkpoints)
    _warn_notes(run.metrics.notes)
    return run


def build_model(model: str, in_features: int, out_features: int, **params: object) -> nn.Module:
    """An untrained ``model`` (a registry name, as ``specfit models`` lists them) for a training
    loop of your own, with ``params`` (its hyperparameters by name, e.g. ``omega_0=60``) over its
    defaults.

    The module maps coordinates ``(N, in_features)``, every axis in [-1, 1] as specfit samples
    them (endpoints included), to values ``(N, out_features)``. It is meant to be trained on
    values in its family's range, as ``specfit models`` lists it: [-1, 1] for the sine and wavelet
    families (SIREN, FINER, ResFields, WIRE, Gauss, TUNER), that is ``2 * v - 1`` for a signal's
    values ``v`` in [0, 1]; [0, 1] as they are for the others (ReLU, Fourier features, hash grid).
    Its initial weights are drawn from torch's global random stream (``torch.manual_seed`` makes
    them repeatable). Nothing is chosen by FreSh here: ``select(signal, model).chosen`` gives a knob
    value to pass. Raises :class:`SpecfitError` for an unknown model or hyperparameter.
    """
    return get_entry(model).create(in_features, out_features, params)


def _signal_again(config: RunConfig) -> object:
    """A run's signal, loaded again from its source with the options it was loaded with."""
    source = config.signal.get("source")
    if not config.load or source is None:
        raise SpecfitError("this run's signal was not loaded from a file, so it cannot be loaded again")
    path = None if source == DEFAULT_SOURCE else source
    return load_signal(path, **config.load)


def rerun(run: Run | RunConfig | str | Path, progress: Progress = ignore) -> Run:
    """Fit a saved run's signal again with its settings (a run folder, a :class:`Run` or its
    config); the signal is loaded again from its source with the options it was loaded with."""
    if isinstance(run, str | Path):
        run = load_run(run)
    config = run.config if isinstance(run, Run) else run
    return fit_settings(_signal_again(config), config.settings, progress)


def _finished_steps(folder: Path) -> int | None:
    """The steps a finished run in ``folder`` trained (``None``: it has no metrics, or was interrupted)."""
    path = folder / METRICS
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return None if metrics.get("interrupted") else int(metrics["steps"])


def resume(
    folder: str | Path, steps: int | None = None, progress: Progress = ignore,
    checkpoints: CheckpointSink | None = None, command: str | None = None,
) -> Run:
    """Continue the fit saved in ``folder`` from its checkpoint (``checkpoint.safetensors``).

    The run may have been interrupted (Ctrl-C, SIGTERM, a killed job: the last periodic
    checkpoint) or finished (then ``steps`` must be larger than its step count). Training goes on
    to the run's step count, or to ``steps`` when given (more than the checkpoint's step), and ends
    with the weights an uninterrupted fit of as many steps would have (bit for bit on the CPU; a
    ``cosine`` or ``exp`` schedule follows the new step count from the checkpoint on). FreSh is not
    run again. Writes nothing unless ``checkpoints`` is given; save the returned :class:`Run` to
    replace the folder.
    """
    folder = Path(folder)
    config = RunConfig.from_json(read_config(folder, weights=False))
    if not (folder / CHECKPOINT).is_file():
        raise SpecfitError(f"{folder} has no checkpoint ({CHECKPOINT}); it cannot be continued")
    settings = config.settings
    if steps is not None:
        settings = replace(settings, fit=replace(settings.fit, steps=steps))
    trained = _finished_steps(folder)
    if trained is not None and settings.fit.steps == trained:
        raise SpecfitError(f"{folder} is already at step {trained}; add --steps M (more than {trained}) "
                           "to train on")
    # Planned without FreSh (its choice is in the checkpoint), the run keeps its own settings.
    plan = replace(plan_fit(_signal_again(config), replace(settings, fresh=False)), settings=settings)
    plan.command = command if command is not None else config.command
    checkpoint = read_checkpoint(folder / CHECKPOINT, plan.device, config.params, config.model)
    if settings.fit.steps < checkpoint.state.step:
        raise SpecfitError(f"{folder} has trained {checkpoint.state.step} steps already; --steps must be "
                           "at least that")
    run = run_plan(plan, progress, checkpoints, resume=checkpoint)
    _warn_notes(run.metrics.notes)
    return run


def select(
    signal: object, model: str = "siren", grid: list[float] | None = None, inits: int = 10,
    bins: int | None = None, *, race: bool = True, progress: Progress = ignore, **options: object,
) -> Selection:
    """FreSh alone: the distance table of the candidate knob values and the choice.

    ``options`` are the settings of :func:`fit` that steer FreSh (``seed``, ``device``, ``spectrum``,
    ``objective``, ``search``, ``split``, ``holdout``, ``shape_target``, ``video_spectrum``; see
    :class:`~specfit.config.settings.FitSettings`) and the model's hyperparameters; ``race=False``
    gives every value all its initialisations. The target is what training under ``split`` would
    see (held-out samples are filled from their neighbours), so the choice is the one :func:`fit`
    makes with the same settings. Notes that name a setting (e.g. the choice is an edge of the
    grid) are warned (:class:`SpecfitWarning`) and kept in ``selection.notes``.
    """
    settings = _settings(model, {**options, "grid": grid, "inits": inits, "bins": bins}, skip=NOT_SELECTION)
    return select_settings(signal, settings, race=race, progress=progress)


select.__signature__ = inspect.signature(select).replace(parameters=[  # type: ignore[attr-defined]
    *list(inspect.signature(select).parameters.values())[:7],
    *keyword_parameters(FitSettings, skip=("model", "grid", "inits", "bins", *NOT_SELECTION)),
    inspect.Parameter("hyperparameters", inspect.Parameter.VAR_KEYWORD)])


def select_settings(
    signal: object, settings: FitSettings, *, race: bool = True, progress: Progress = ignore,
) -> Selection:
    """:func:`select` with the settings as one :class:`~specfit.config.settings.FitSettings`
    (those of training and compaction are not used)."""
    settings.check()
    entry = get_entry(settings.model)
    task = task_for(_as_signal(signal), settings.shape_target, settings.video_spectrum)
    task.check_split(settings.split)
    device = resolve_device(settings.device)
    base = {**task.model_params(entry.params), **settings.params}
    grid = settings.grid
    if grid is None and entry.knob is not None:
        grid = task.default_grid(entry.knob.grid, isinstance(entry.knob.default, int))
    target = task.fresh_target(entry.value_range, device, settings.resolved_spectrum(task.kind),
                               settings.resolved_objective(), settings.bins, settings.split,
                               settings.holdout, settings.seed)
    plan = target.plan(entry.name, base, grid, settings.inits, settings.search, settings.two_knobs)
    selection = fresh_select(
        target.values, target.coords, entry.name, seed=settings.seed, race=race, plan=plan,
        progress=lambda done, total: progress(Event(Phase.SELECT, done, total)))
    _warn_notes(selection.notes)
    return selection


@dataclass
class SignalSpectrum:
    """A signal's spectrum vector as FreSh matches it, and what it was taken over.

    Attributes:
        vector: the normalised spectrum ``(bins,)`` (it sums to 1).
        band: the frequencies it pools (:class:`~specfit.fresh.spectra.Band`; ``band.edge`` in
            cycles over the whole signal).
        spectrum: ``"signal"`` or ``"published"``.
        headline: the signal in one line (type, name, size).
        edge_hz: audio: the band's edge in Hz (``None`` for the other types).
        description: for a signal seen through measurements (CT, MRI, NeRF), what is measured.
        notes: what a user should know about the band (e.g. fewer bins than asked).
    """

    vector: np.ndarray
    band: Band
    spectrum: str
    headline: str
    edge_hz: float | None = None
    description: str | None = None
    notes: list[str] = field(default_factory=list)


def spectrum_of(
    signal: object, bins: int | None = None, video_spectrum: str = "frames", band: str | None = None,
    objective: str = "fit", shape_target: str = "occupancy",
) -> SignalSpectrum:
    """:func:`spectrum` with its band, the signal's headline and notes (what ``specfit spectrum``
    prints)."""
    task = task_for(_as_signal(signal), shape_target, video_spectrum)
    resolved = FitSettings(spectrum=band, objective=objective).resolved_spectrum(task.kind)
    target = task.fresh_target("unit", torch.device("cpu"), resolved, objective, bins)
    pooled, notes, vector = target.spectrum_vector()  # a clip: the mean of its frames' spectra
    axis = task.frequency_axis(pooled.to_json())
    edge_hz = pooled.bins * axis["scale"] if axis is not None and axis["unit"] == "Hz" else None
    description = None if target.measured is None else target.measured.description
    return SignalSpectrum(vector.cpu().numpy(), pooled, resolved, task.headline(), edge_hz, description,
                          list(notes))


def spectrum(
    signal: object, bins: int | None = None, video_spectrum: str = "frames", band: str | None = None,
    objective: str = "fit", shape_target: str = "occupancy",
) -> np.ndarray:
    """The signal's normalised spectrum vector FreSh matches (``bins`` values at most; a clip: the
    mean of its frames' spectra unless ``video_spectrum="3d"``; CT, MRI and NeRF: the spectrum of
    the measurements; a mesh: of its ``shape_target``); ``band`` is ``"signal"`` or
    ``"published"`` (default: the signal type's, see :class:`FitSettings`)."""
    return spectrum_of(signal, bins, video_spectrum, band, objective, shape_target).vector


def ntk(model: str, dims: int = 1, size: int | None = None, *, seeds: int = 3, seed: int = 0,
        **params: object) -> NTKResult:
    """The empirical neural tangent kernel of ``model`` (one output; ``params``: its hyperparameters
    by name over the defaults, e.g. ``sigma=4``) on a ``dims``-D grid of ``size`` points per axis in
    [-1, 1] (default 128 in 1-D, 24 in 2-D), averaged over ``seeds`` initialisations from ``seed``:
    the kernel, its eigenvalues, its profile through the centre and that profile's spectrum, and
    its stationarity (0 when the kernel is a function of ``v1 - v2``). See :mod:`specfit.tangent`."""
    return model_ntk(model, dims, size, params, seeds, seed)
