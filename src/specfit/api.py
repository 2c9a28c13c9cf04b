"""The Python API: load a signal, fit it, select a knob, look at a spectrum, reload a run.

Everything here works in memory and writes nothing; :meth:`specfit.Run.save` writes a run folder.
These names are importable from ``specfit`` itself.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Event, Phase, Progress, ignore
from specfit.fitting.pipeline import fit_signal, plan_fit, run_plan
from specfit.fresh.search import Selection, fresh_select, plan_measured_selection, plan_selection
from specfit.fresh.spectra import signal_band, signal_spectrum
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal as load_file
from specfit.kinds.registry import get_kind, task_for
from specfit.models.registry import ParamValue, get_entry
from specfit.runs.checkpoints import CHECKPOINT, CheckpointSink, read_checkpoint
from specfit.runs.folder import read_config
from specfit.runs.run import Run, RunConfig, load_run
from specfit.signals.base import Signal
from specfit.signals.scene import Scene
from specfit.signals.shape import Shape, shape_from_mesh
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions
from specfit.util.runtime import resolve_device

DEFAULT_SOURCE = "skimage.data.camera"  # the bundled default signal's source
_LOAD_FIELDS = {f.name for f in fields(LoadOptions)} - {"kind"}


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
            longest axis), ``max_seconds``, ``sample_rate`` (audio), ``max_frames``,
            ``frame_step`` (video), ``allow_open`` (meshes), ``max_samples`` (size limit), and for
            arrays ``name``, ``sample_rate`` and ``fps``.

    Returns a :class:`~specfit.signals.base.Signal` (values ``(C, *grid)`` in [0, 1]) or, for a
    mesh, a :class:`~specfit.signals.shape.Shape`.
    """
    if isinstance(source, str | Path) or source is None:
        unknown = sorted(set(options) - _LOAD_FIELDS)
        if unknown:
            raise SpecfitError(f"unknown loading options {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(_LOAD_FIELDS))}")

        return load_file(source, LoadOptions(kind=kind, **options))
    if type(source).__module__.startswith("trimesh"):
        return shape_from_mesh(source, str(options.get("name", "mesh")), bool(options.get("allow_open")))
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        return _from_array(source, kind, dict(options))
    raise SpecfitError(f"cannot load a {type(source).__name__}: give a path, an array or a trimesh.Trimesh")


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
    """A loaded signal, or anything :func:`load_signal` accepts."""
    return signal if isinstance(signal, Signal | Shape | Scene) else load_signal(signal)


def fit(
    signal: object,
    model: str = "siren",
    *,
    steps: int = 1000,
    device: str = "auto",
    seed: int = 0,
    fresh: bool = True,
    grid: list[float] | None = None,
    inits: int = 10,
    bins: int | None = None,
    spectrum: str | None = None,
    objective: str | None = None,
    search: str = "bracket",
    split: str = "holdout",
    holdout: float = 0.1,
    lr: float | None = None,
    schedule: str = "none",
    batch_size: int | None = None,
    eval_every: int = 25,
    compile: str = "auto",
    shape_target: str = "occupancy",
    video_spectrum: str = "frames",
    compaction: CompactionPlan | None = None,
    progress: Progress = ignore,
    **params: ParamValue,
) -> Run:
    """Fit ``signal`` with ``model``; the knob is chosen by FreSh unless ``fresh=False`` (its
    default) or set in ``params`` (e.g. ``omega_0=60``). Writes nothing.

    ``signal`` is a loaded signal or anything :func:`load_signal` accepts; ``params`` are the
    model's hyperparameters (``specfit models``); ``progress`` receives
    :class:`~specfit.events.Event` objects. See :class:`~specfit.config.settings.FitSettings` and
    :class:`~specfit.training.loop.FitOptions` for the other arguments.
    """
    options = FitOptions(steps=steps, lr=lr, schedule=schedule, batch_size=batch_size,
                         eval_every=eval_every, compile=compile, seed=seed)
    settings = FitSettings(model=model, params=dict(params), fresh=fresh, grid=grid, inits=inits, bins=bins,
                           spectrum=spectrum, objective=objective, search=search, split=split,
                           holdout=holdout, seed=seed, device=device, fit=options,
                           shape_target=shape_target, video_spectrum=video_spectrum, compaction=compaction)
    return fit_settings(signal, settings, progress)


def fit_settings(signal: object, settings: FitSettings, progress: Progress = ignore) -> Run:
    """:func:`fit` with the settings as one :class:`~specfit.config.settings.FitSettings`."""
    return fit_signal(_as_signal(signal), settings, progress)


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


def resume(
    folder: str | Path, steps: int | None = None, progress: Progress = ignore,
    checkpoints: CheckpointSink | None = None, command: str | None = None,
) -> Run:
    """Continue the fit saved in ``folder`` from its checkpoint (``checkpoint.safetensors``).

    The run may have been interrupted (Ctrl-C, SIGTERM, a killed job: the last periodic
    checkpoint) or finished. Training goes on to the run's step count, or to ``steps`` when given
    (at least the checkpoint's step), and ends with the weights an uninterrupted fit of as many
    steps would have (bit for bit on the CPU; a ``cosine`` or ``exp`` schedule follows the new
    step count from the checkpoint on). FreSh is not run again. Writes nothing unless
    ``checkpoints`` is given; save the returned :class:`Run` to replace the folder.
    """
    folder = Path(folder)
    config = RunConfig.from_json(read_config(folder, weights=False))
    if not (folder / CHECKPOINT).is_file():
        raise SpecfitError(f"{folder} has no checkpoint ({CHECKPOINT}); it cannot be continued")
    settings = config.settings
    if steps is not None:
        settings = replace(settings, fit=replace(settings.fit, steps=steps))
    # Planned without FreSh (its choice is in the checkpoint), the run keeps its own settings.
    plan = replace(plan_fit(_signal_again(config), replace(settings, fresh=False)), settings=settings)
    plan.command = command if command is not None else config.command
    checkpoint = read_checkpoint(folder / CHECKPOINT, plan.device, config.params)
    if settings.fit.steps < checkpoint.state.step:
        raise SpecfitError(f"{folder} has trained {checkpoint.state.step} steps already; --steps must be "
                           "at least that")
    return run_plan(plan, progress, checkpoints, resume=checkpoint)


def select(
    signal: object,
    model: str = "siren",
    grid: list[float] | None = None,
    inits: int = 10,
    bins: int | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    race: bool = True,
    shape_target: str = "occupancy",
    video_spectrum: str = "frames",
    spectrum: str | None = None,
    objective: str | None = None,
    search: str = "bracket",
    split: str = "holdout",
    holdout: float = 0.1,
    progress: Progress = ignore,
    **params: ParamValue,
) -> Selection:
    """FreSh alone: the distance table of the candidate knob values and the choice.

    The target is what training under ``split`` would see (held-out samples are filled from their
    neighbours), so the choice is the one :func:`fit` makes with the same settings; ``objective``,
    ``spectrum`` and ``search`` are as in :class:`FitSettings`.
    """
    settings = FitSettings(model=model, spectrum=spectrum, objective=objective, search=search, split=split,
                           holdout=holdout, seed=seed, device=device)
    settings.check()
    entry = get_entry(model)
    task = task_for(_as_signal(signal), shape_target, video_spectrum)
    task.check_split(split)
    device_ = resolve_device(device)
    base = {**task.model_params(entry.defaults), **params}
    if grid is None and entry.knob is not None:
        grid = task.default_grid(entry.knob.grid, isinstance(entry.knob.default, int))
    band, goal = settings.resolved_spectrum(task.kind), settings.resolved_objective()
    measured = task.measured_spectrum(entry.value_range, device_, band, goal, bins)
    if measured is not None:  # CT, MRI, NeRF: spectra of what is measured
        plan = plan_measured_selection(measured, entry.name, base, grid, inits, band, goal, search)
        values, coords = torch.empty(0), torch.empty(0, task.in_features, device=device_)
    else:
        values, coords = task.spectrum_target(entry.value_range, device_, split, holdout, seed)
        plan = plan_selection(values, entry.name, base, grid, inits, bins, task.per_frame, band, goal, search)
    return fresh_select(values, coords, entry.name, seed=seed, race=race, plan=plan,
                        progress=lambda done, total: progress(Event(Phase.SELECT, done, total)))


def spectrum(
    signal: object, bins: int | None = None, video_spectrum: str = "frames", band: str | None = None,
    objective: str = "fit",
) -> np.ndarray:
    """The signal's normalised spectrum vector FreSh matches (``bins`` values at most; a clip: the
    mean of its frames' spectra unless ``video_spectrum="3d"``; CT, MRI and NeRF: the spectrum of
    the measurements); ``band`` is ``"signal"`` or ``"published"`` (default: the signal type's, see
    :class:`FitSettings`)."""
    task = task_for(_as_signal(signal), video_spectrum=video_spectrum)
    band = FitSettings(spectrum=band, objective=objective).resolved_spectrum(task.kind)
    measured = task.measured_spectrum("unit", torch.device("cpu"), band, objective, bins)
    if measured is not None:  # CT, MRI, NeRF: the spectrum of the measurements
        return measured.target.cpu().numpy()
    values, _ = task.spectrum_target("unit", torch.device("cpu"))
    resolved, _ = signal_band(values, band, objective, bins, task.per_frame)
    return signal_spectrum(values, resolved, task.per_frame).numpy()
