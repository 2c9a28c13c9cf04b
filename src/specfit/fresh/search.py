"""FreSh: choose a model's embedding frequency by comparing spectra at initialisation.

For a candidate value ``theta`` of the model's knob, ``R`` untrained models are drawn from the same
random stream (the generator is re-seeded before every candidate, so candidates differ only by
``theta``), evaluated on the signal's sampling grid in chunks of samples (on a few whole segments
of a long 1-D signal, see :mod:`specfit.fresh.spectra`), and scored by the mean Wasserstein distance
``W`` between their output spectra and the target's. The target is what training sees: held-out
samples never enter it.

Search (``search="bracket"``, the default): the ``W`` curve over the knob is U-shaped on every
signal measured, so about five evenly spread values are evaluated first, with 1 initialisation a
value (all candidates share it, so the curve it traces is smooth in the knob). If that curve
falls to one minimum and rises after it, the bracket around that minimum is halved until the
best value's neighbours are known, and only those three race on towards ``R`` initialisations;
if a value met earlier beats the race's winner on the initialisations they share, the bracket was
misled by noise and is searched again around that value. Otherwise (a second dip), every value is
searched (``search="full"`` always does).

Racing (``race=True``): candidates raised to ``R`` get 2 initialisations first, then 4, 6 and
``R``. Because every candidate draws from the same random stream, initialisation ``r`` of one
candidate and of another share their random weights, so candidates are compared in pairs: after a
round from 4 initialisations on, a candidate is dropped when its distance minus the current best's,
over the shared initialisations, has a mean above ``z = 3`` standard errors of that difference, or
when its mean distance is within one standard error of the best's (a tie: either choice is as
good). The race stops when one candidate is left (the ranking is settled) or all left have ``R``
initialisations; the choice is the best of those left. Every candidate keeps its statistics in the table.

Two knobs (``two_knobs``, for a family that declares a second knob, see
:class:`~specfit.models.registry.ModelEntry`): the search above runs once for each value of the
second knob's small grid, every pair drawing from the same random stream (so pairs differ only by
their values); each run's best value is raised to ``R`` initialisations, and the pair of least mean
``W`` is chosen. Distances that agree to :data:`SAME_W` (relative) are the same: what float rounding
leaves when the second knob does not change the untrained network (SIREN's ``hidden_omega_0`` in
the fresh convention only scales weights it first divides); such a tie goes to the second knob's
default.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise

import torch
from torch.func import functional_call, stack_module_state, vmap

from specfit.errors import SpecfitError
from specfit.fresh.measured import MeasuredSpectrum
from specfit.fresh.options import SEARCHES, SPECTRUM_SEARCHES
from specfit.fresh.spectra import Band, signal_band, signal_spectrum, spectra, spectrum_side, wasserstein
from specfit.models.params import DEFAULT_LAYER_WIDTH, declared
from specfit.models.registry import ModelEntry, ParamValue, check_buildable, get_entry, models, resolve_params

RACE_ROUNDS = (2, 4, 6)
RACE_Z = 3.0
MIN_PAIRED = 4
BRACKET_INITS = 1
COARSE_POINTS = 5
MIN_BRACKET = 8
FLAT = 0.1
EVAL_SEGMENTS = 4
CHUNK_ACTIVATIONS = 2**22
MAX_INITS = 1000
SAME_W = 1e-4


@dataclass
class Candidate:
    """One row of the selection table."""

    value: ParamValue
    w_mean: float | None
    w_stderr: float | None
    inits: int


@dataclass
class Table2D:
    """The distances of a two-knob search: one row per value of the second knob, one column per
    value of the first (both in grid order); ``cells[i][j]`` is the pair ``(rows[i], columns[j])``
    (a pair the search skipped has no mean and 0 initialisations)."""

    rows: list[ParamValue]
    columns: list[ParamValue]
    cells: list[list[Candidate]]

    def to_json(self) -> dict:
        """``rows``, ``columns`` and, as matrices of rows, ``w_mean``, ``w_stderr`` and ``inits``."""
        return {"rows": self.rows, "columns": self.columns,
                **{name: [[getattr(cell, name) for cell in row] for row in self.cells]
                   for name in ("w_mean", "w_stderr", "inits")}}


@dataclass
class Selection:
    """Result of FreSh selection.

    Attributes:
        knob: name of the searched hyperparameter.
        chosen: the value with the smallest mean distance, or the probes' winner when they ran.
        table: one :class:`Candidate` per grid value, in grid order (a value the search skipped
            has no mean and 0 initialisations).
        seconds: wall time of the whole selection.
        bins: spectrum size used.
        target_spectrum: the target's normalised spectrum, ``bins`` numbers.
        mean_spectra: per grid value, the mean spectrum of its evaluated initialisations.
        notes: remarks for the user (a spectrum shrunk for a small signal, a choice at the grid's
            edge).
        band: the spectrum's band (:class:`specfit.fresh.spectra.Band` as JSON).
        spectrum: ``"signal"`` or ``"published"``.
        objective: ``"fit"`` or ``"generalize"``.
        probes: with ``search="probes"``, the record of the probes that trained FreSh's best values
            and chose among them (:meth:`specfit.fitting.probes.ProbeResult.to_json`); else ``None``.
        second_knob: with two knobs, the second knob's name (else ``None``); second_chosen: its
            value in the chosen pair; table_2d: every pair's distances. ``table`` and
            ``mean_spectra`` are then those of the first knob at ``second_chosen``.
    """

    knob: str
    chosen: ParamValue
    table: list[Candidate]
    seconds: float
    bins: int
    inits: int
    target_spectrum: list[float]
    mean_spectra: dict[str, list[float]]
    notes: list[str] = field(default_factory=list)
    band: dict = field(default_factory=dict)
    spectrum: str = "signal"
    objective: str = "fit"
    probes: dict | None = None
    second_knob: str | None = None
    second_chosen: ParamValue = None
    table_2d: Table2D | None = None

    def edge_note(self) -> str | None:
        """A warning when the choice is the first or last grid value (the optimum may lie beyond)."""
        values = [row.value for row in self.table]
        if len(values) > 1 and self.chosen in (values[0], values[-1]):
            side = "smallest" if self.chosen == values[0] else "largest"
            return (f"FreSh chose the {side} {self.knob} of the grid ({self.chosen}); "
                    "the best value may lie outside it (widen it with --grid)")
        return None

    @property
    def pair(self) -> dict[str, ParamValue]:
        """The chosen value of each searched knob, by name."""
        chosen = {self.knob: self.chosen}
        return chosen if self.second_knob is None else {**chosen, self.second_knob: self.second_chosen}

    def to_json(self, with_spectra: bool = False) -> dict:
        data = {
            "knob": self.knob,
            "chosen": self.chosen,
            "table": [asdict(row) for row in self.table],
            "seconds": self.seconds,
            "bins": self.bins,
            "inits": self.inits,
            "band": self.band,
            "spectrum": self.spectrum,
            "objective": self.objective,
        }
        if self.probes is not None:
            data["probes"] = self.probes
        if self.table_2d is not None:
            data.update(second_knob=self.second_knob, second_chosen=self.second_chosen,
                        table_2d=self.table_2d.to_json())
        if with_spectra:
            data["target_spectrum"] = self.target_spectrum
            data["mean_spectra"] = self.mean_spectra
        return data


def chunk_rows(width: int) -> int:
    """Samples per forward chunk: about 2^22 activations (16384 samples of a 256-wide network).

    Chunks bound memory: a 256-wide layer over a 1024^2 grid would otherwise need 1 GiB per
    activation. On 2 CPU cores a matrix product costs about 8 ms a call on top of its arithmetic, so
    chunks of 2048 samples ran 5 times slower than one full-grid forward; 16384 run as fast.
    """
    return max(256, CHUNK_ACTIVATIONS // max(width, 1))


class InitEvaluator:
    """Evaluates ``R`` seeded initialisations of one model configuration on a full grid.

    On CPU the initialisations are evaluated one after another in cache-sized chunks of samples;
    on CUDA they are evaluated together (``torch.func.vmap`` over stacked parameters), which keeps
    the GPU busy.

    Args:
        build: ``build(value) -> nn.Module`` for a knob value, drawing from the global RNG.
        coords: ``(N, d)`` coordinates of every sample, row-major over ``shape``.
        shape: ``(C, *spatial)`` of the signal.
        seed: every candidate's random stream starts from this seed.
        inits: ``R``.
        batched: evaluate initialisations together (default: on CUDA only).
        observe: for a measured signal, ``observe(model) -> (C', *layout)`` replaces the
            evaluation on ``coords`` (see :class:`~specfit.fresh.measured.MeasuredSpectrum`).
        width: units of the model's widest hidden layer, as its parameters declare
            (:meth:`~specfit.models.params.ModelParams.layer_width`); sizes the chunks of samples.
    """

    def __init__(
        self,
        build: Callable[[ParamValue], torch.nn.Module],
        coords: torch.Tensor,
        shape: tuple[int, ...],
        seed: int,
        inits: int,
        batched: bool | None = None,
        observe: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        width: int = DEFAULT_LAYER_WIDTH,
    ) -> None:
        self.build = build
        self.observe = observe
        self.width = width
        self.coords = coords
        self.shape = shape
        self.seed = seed
        self.inits = inits
        self.batched = coords.is_cuda if batched is None else batched

    def outputs(self, value: ParamValue, start: int, stop: int) -> torch.Tensor:
        """Outputs of initialisations ``start .. stop - 1`` as ``(stop - start, C, *spatial)``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            models = [self.build(value) for _ in range(stop)][start:]
        models = [m.to(self.coords.device) for m in models]
        if self.observe is not None:
            with torch.inference_mode():
                return torch.stack([self.observe(m).float() for m in models])
        chunk = chunk_rows(self.width)
        with torch.inference_mode():
            if self.batched:
                out = self._batched(models, chunk * len(models))
            else:
                out = torch.stack([self._single(m, chunk) for m in models])
        return out.transpose(1, 2).reshape(len(models), *self.shape)

    def _single(self, model: torch.nn.Module, chunk: int) -> torch.Tensor:
        coords = self.coords
        return torch.cat([model(coords[i : i + chunk]).float() for i in range(0, coords.shape[0], chunk)])

    def _batched(self, models: list[torch.nn.Module], chunk: int) -> torch.Tensor:
        params, buffers = stack_module_state(models)
        template = copy.deepcopy(models[0]).to("meta")

        def single(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (p, b), (x,))

        batched = vmap(single, in_dims=(0, 0, None))
        coords = self.coords
        pieces = [batched(params, buffers, coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)]
        return torch.cat(pieces, dim=1).float()


def _clearly_worse(candidate: list[float], best: list[float]) -> bool:
    """Paired test over shared initialisations: ``candidate`` worse than ``best`` by > z stderrs."""
    n = min(len(candidate), len(best))
    if n < MIN_PAIRED:
        return False
    d = torch.tensor(candidate[:n], dtype=torch.float64) - torch.tensor(best[:n], dtype=torch.float64)
    return float(d.mean() - RACE_Z * d.std(unbiased=True) / math.sqrt(n)) > 0.0


def _stats(distances: list[float]) -> tuple[float | None, float | None]:
    if not distances:
        return None, None
    t = torch.tensor(distances, dtype=torch.float64)
    mean = float(t.mean())
    stderr = float(t.std(unbiased=True) / math.sqrt(len(distances))) if len(distances) > 1 else None
    return mean, stderr


@dataclass
class SelectionPlan:
    """Validated inputs of a selection.

    Attributes:
        band: the spectrum's band (see :mod:`specfit.fresh.spectra`).
        target: the target's spectrum vector, ``band.bins`` values.
        samples: indices of the coordinates an untrained model is evaluated on (``None``: all);
            a segmented band evaluates a few whole segments of a long 1-D signal.
        output_shape: ``(C, *spatial)`` the outputs on those samples are reshaped to (``()`` for a
            measured signal).
        resample: with the signal spectrum, a non-cubic grid's target is resampled to a cube and
            the models are evaluated on that cube directly (its spatial shape; ``None``: on the
            signal's own grid).
        second_knob: with two knobs, the second knob's name (``None``: one knob); second_values:
            its grid, resolved (``base`` holds its default).
    """

    entry: ModelEntry
    knob: str
    candidates: list[ParamValue]
    base: dict[str, ParamValue]
    band: Band
    target: torch.Tensor
    inits: int
    output_shape: tuple[int, ...]
    samples: torch.Tensor | None = None
    resample: tuple[int, ...] | None = None
    per_frame: bool = False
    spectrum: str = "signal"
    objective: str = "fit"
    search: str = "bracket"
    notes: tuple[str, ...] = ()
    measured: MeasuredSpectrum | None = None
    second_knob: str | None = None
    second_values: list[ParamValue] = field(default_factory=list)

    @property
    def bins(self) -> int:
        return self.band.bins

    def vectors(self, outputs: torch.Tensor) -> torch.Tensor:
        """Normalised spectrum vectors ``(R, n)`` of ``R`` untrained outputs (or observations)."""
        if self.measured is not None:
            return self.measured.vectors(outputs)
        return spectra(outputs, self.band, self.per_frame)


def _segments(length: int, segment: int) -> torch.Tensor:
    """Sample indices of :data:`EVAL_SEGMENTS` whole segments spread evenly over ``length``."""
    count = length // segment
    starts = torch.linspace(0, count - 1, min(EVAL_SEGMENTS, count)).round().long().unique() * segment
    return (starts.view(-1, 1) + torch.arange(segment).view(1, -1)).flatten()


def plan_selection(
    values: torch.Tensor,
    model: str,
    params: dict[str, ParamValue] | None = None,
    grid: Sequence[float] | None = None,
    inits: int = 10,
    bins: int | None = None,
    per_frame: bool = False,
    spectrum: str = "signal",
    objective: str = "fit",
    search: str = "bracket",
    two_knobs: bool = False,
) -> SelectionPlan:
    """Check everything a selection needs before any work is done.

    ``values`` is what training sees of the signal (see the tasks' ``spectrum_target``).
    ``per_frame`` compares the mean 2-D spectrum of the frames of a clip ``(C, T, H, W)`` instead
    of its 3-D spectrum (the published video protocol); a constant output counts as flat.
    ``two_knobs`` searches the model's second knob too (see the module docstring).

    Raises:
        SpecfitError: the model has no knob (or no second knob with ``two_knobs``, or the user set
            it), a grid value or parameter is invalid, ``inits < 2``, ``bins`` is too large, an
            unknown spectrum, objective or search, or the target has no spectrum (constant signal).
    """
    entry, knob, candidates, base, second = _checked_candidates(model, params, grid, inits, search,
                                                                values.dim() - 1, values.shape[0], two_knobs)
    band, notes = signal_band(values, spectrum, objective, bins, per_frame)  # raises for a constant signal
    target = signal_spectrum(values, band, per_frame)
    samples, output_shape, resample = None, tuple(values.shape), None
    if band.segment is not None:
        samples = _segments(values.shape[1], band.segment)
        output_shape = (values.shape[0], len(samples))
    elif spectrum == "signal" and len(spatial := values.shape[2 if per_frame else 1 :]) > 1:
        side = spectrum_side(tuple(spatial))
        if any(n != side for n in spatial):  # evaluate on the cube the target is resampled to
            output_shape = (*values.shape[: values.dim() - len(spatial)], *(side,) * len(spatial))
            resample = output_shape[1:]
    return SelectionPlan(entry, knob, candidates, base, band, target, inits, output_shape, samples,
                         resample, per_frame, spectrum, objective, search, tuple(notes), None, *second)


def _checked_candidates(
    model: str, params: dict[str, ParamValue] | None, grid: Sequence[float] | None, inits: int, search: str,
    in_features: int, out_features: int, two_knobs: bool,
) -> tuple[ModelEntry, str, list[ParamValue], dict[str, ParamValue], tuple[str | None, list[ParamValue]]]:
    """The model's entry, knob, resolved candidate values, base parameters, and the second knob's
    name and values (``(None, [])`` for one knob), all checked."""
    entry = get_entry(model)
    if entry.knob is None:
        raise SpecfitError(f"model {model} has no frequency knob for FreSh to choose")
    if not 2 <= inits <= MAX_INITS:
        raise SpecfitError(f"--inits must be 2 to {MAX_INITS} (2 for a standard error), got {inits}")
    if search not in SEARCHES:
        raise SpecfitError(f"unknown search {search!r}; choose from {', '.join(SEARCHES)}", setting="search")
    if search not in SPECTRUM_SEARCHES:
        raise SpecfitError(f"search {search} trains candidate values, which only a fit does (specfit fit); "
                           f"FreSh alone searches by {' or '.join(SPECTRUM_SEARCHES)}", setting="search")
    knob = entry.knob.name
    candidates = list(entry.knob.grid if grid is None else grid)
    if not candidates:
        raise SpecfitError("the FreSh grid is empty")
    base = resolve_params(entry, params)
    candidates = [resolve_params(entry, {**base, knob: value})[knob] for value in candidates]
    second_knob, seconds = _second_knob(entry, params, two_knobs)
    for value in candidates:
        for other in seconds:
            check_buildable(entry, in_features, out_features,
                            {**base, **entry.selection_overrides, **other, knob: value})
    second_values = [value for other in seconds for value in other.values()]
    return entry, knob, candidates, base, (second_knob, second_values)


def _second_knob(entry: ModelEntry, params: dict[str, ParamValue] | None, two_knobs: bool
                 ) -> tuple[str | None, list[dict[str, ParamValue]]]:
    """The second knob's name and its resolved values, each as ``{name: value}`` (``(None, [{}])``
    for one knob)."""
    if not two_knobs:
        return None, [{}]
    second = entry.second_knob
    if second is None:
        having = ", ".join(name for name, other in models().items() if other.second_knob is not None)
        raise SpecfitError(f"model {entry.name} has no second knob for FreSh to choose with its "
                           f"{entry.knob.name} (two_knobs works with {having})", setting="two_knobs")
    name, given = second.name, params or {}
    default = resolve_params(entry, {})[name]
    if name in given and resolve_params(entry, {name: given[name]})[name] != default:
        raise SpecfitError(f"two_knobs chooses {name}, which is set to {given[name]}; "
                           "leave it unset or turn two_knobs off", setting="two_knobs")
    return name, [{name: resolve_params(entry, {**given, name: value})[name]} for value in second.grid]


def plan_measured_selection(
    measured: MeasuredSpectrum,
    model: str,
    params: dict[str, ParamValue] | None = None,
    grid: Sequence[float] | None = None,
    inits: int = 10,
    spectrum: str = "signal",
    objective: str = "fit",
    search: str = "bracket",
    two_knobs: bool = False,
) -> SelectionPlan:
    """:func:`plan_selection` for a signal seen only through measurements: the target and the
    candidates' spectra are those of the measurements (see :mod:`specfit.fresh.measured`)."""
    entry, knob, candidates, base, (second_knob, second_values) = _checked_candidates(
        model, params, grid, inits, search, measured.in_features, measured.out_features, two_knobs)
    return SelectionPlan(entry, knob, candidates, base, measured.band, measured.target, inits, (),
                         spectrum=spectrum, objective=objective, search=search, notes=tuple(measured.notes),
                         measured=measured, second_knob=second_knob, second_values=second_values)


@dataclass
class FreshTarget:
    """What FreSh matches for one signal (:meth:`specfit.tasks.Task.fresh_target` makes it): the
    spectrum of the signal as training sees it, on its grid, or that of its measurements.

    Attributes:
        values: the signal as training sees it, ``(C, *spatial)`` in the model's value range
            (empty for a measured signal).
        coords: ``(N, d)`` coordinates of that grid, row-major, on the device FreSh runs on
            (``(0, d)`` for a measured signal).
        spectrum, objective, bins: the band (see :func:`plan_selection`).
        per_frame: compare the mean per-frame spectra of a clip.
        measured: the comparison in the measurement domain (CT, MRI, NeRF), else ``None``.
    """

    values: torch.Tensor
    coords: torch.Tensor
    spectrum: str = "signal"
    objective: str = "fit"
    bins: int | None = None
    per_frame: bool = False
    measured: MeasuredSpectrum | None = None

    def plan(
        self, model: str, params: dict[str, ParamValue] | None = None, grid: Sequence[float] | None = None,
        inits: int = 10, search: str = "bracket", two_knobs: bool = False,
    ) -> SelectionPlan:
        """The checked plan of a selection of ``model``'s knob (and second knob, with
        ``two_knobs``) against this target (see :func:`plan_selection` and
        :func:`plan_measured_selection`)."""
        if self.measured is not None:
            return plan_measured_selection(self.measured, model, params, grid, inits, self.spectrum,
                                           self.objective, search, two_knobs)
        return plan_selection(self.values, model, params, grid, inits, self.bins, self.per_frame,
                              self.spectrum, self.objective, search, two_knobs)

    def spectrum_vector(self) -> tuple[Band, list[str], torch.Tensor]:
        """The band, its notes and the normalised spectrum vector ``(band.bins,)`` FreSh matches
        (a clip's: the mean of its frames' spectra when ``per_frame``)."""
        if self.measured is not None:
            return self.measured.band, list(self.measured.notes), self.measured.target
        band, notes = signal_band(self.values, self.spectrum, self.objective, self.bins, self.per_frame)
        return band, notes, signal_spectrum(self.values, band, self.per_frame)


def evaluation_points(coords: torch.Tensor, plan: SelectionPlan) -> torch.Tensor:
    """The coordinates ``(M, d)`` an untrained model is evaluated on: all of ``coords`` (the
    signal's grid, row-major), a few segments of them, or a grid of ``plan.resample`` spanning the
    same range on every axis."""
    if plan.samples is not None:
        return coords[plan.samples.to(coords.device)]
    if plan.resample is None:
        return coords
    low, high = coords.amin(dim=0), coords.amax(dim=0)
    axes = [torch.linspace(float(a), float(b), n, device=coords.device)
            for a, b, n in zip(low, high, plan.resample, strict=True)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1).to(coords.dtype)


def _coarse(count: int) -> list[int]:
    """Positions of about :data:`COARSE_POINTS` evenly spread values, both ends included."""
    steps = torch.linspace(0, count - 1, min(COARSE_POINTS, count)).round().long().unique()
    return [int(i) for i in steps]


def _unimodal(means: list[float]) -> bool:
    """Whether ``means`` falls to its minimum and rises after it: no second dip deeper than
    :data:`FLAT` of the curve's range (a plateau's noise is not a dip)."""
    low = min(range(len(means)), key=means.__getitem__)
    slack = FLAT * (max(means) - min(means))
    falling = all(a >= b - slack for a, b in pairwise(means[: low + 1]))
    rising = all(a <= b + slack for a, b in pairwise(means[low:]))
    return falling and rising


class _Search:
    """Distances per candidate, filled in on demand from one :class:`InitEvaluator`."""

    def __init__(self, plan: SelectionPlan, evaluator: InitEvaluator, target: torch.Tensor,
                 progress: Callable[[int, int], None] | None) -> None:
        self.plan, self.evaluator, self.target, self.progress = plan, evaluator, target, progress
        n = len(plan.candidates)
        self.distances: list[list[float]] = [[] for _ in range(n)]
        self.spectra_sum = [torch.zeros(plan.bins, dtype=torch.float64, device=target.device)
                            for _ in range(n)]
        self.done = 0
        self.total = n * plan.inits

    def extend(self, k: int, stop: int) -> None:
        """Give candidate ``k`` initialisations up to ``stop``."""
        start = len(self.distances[k])
        if start >= stop:
            return
        outputs = self.evaluator.outputs(self.plan.candidates[k], start, stop)
        vectors = self.plan.vectors(outputs)
        self.distances[k] += wasserstein(self.target, vectors).tolist()
        self.spectra_sum[k] += vectors.sum(dim=0)
        self.done += stop - start
        if self.progress is not None:
            self.progress(self.done, max(self.done, self.total))

    def mean(self, k: int) -> float:
        return sum(self.distances[k]) / len(self.distances[k])

    def _tied(self, k: int, best: int) -> bool:
        """``k``'s mean W is within one standard error of the best's: either choice is as good."""
        if len(self.distances[best]) < MIN_PAIRED:
            return False
        _, stderr = _stats(self.distances[best])
        return self.mean(k) - self.mean(best) <= (stderr or 0.0)

    def race(self, alive: list[int], race: bool) -> list[int]:
        """Raise ``alive`` towards ``R`` initialisations in rounds, dropping clearly worse
        candidates; stops as soon as one is left. Returns the candidates still in the race."""
        inits = self.plan.inits
        rounds = [r for r in RACE_ROUNDS if r < inits] + [inits] if race else [inits]
        for stop in rounds:
            for k in alive:
                self.extend(k, stop)
            if stop < inits:
                best = min(alive, key=self.mean)
                alive = [k for k in alive if k == best or not (
                    _clearly_worse(self.distances[k], self.distances[best]) or self._tied(k, best))]
                if len(alive) == 1:
                    break
                self.total = self.done + len(alive) * (inits - stop)
        return alive

    def bracket(self, race: bool) -> list[int] | None:
        """Coarse-to-fine search of a U-shaped curve: the candidates left in the final race, or
        ``None`` (having evaluated only a coarse subset) when the coarse curve is not U-shaped, for
        the caller to search every value."""
        order = sorted(range(len(self.plan.candidates)), key=lambda k: self.plan.candidates[k])
        first = BRACKET_INITS
        coarse = _coarse(len(order))
        self.total = len(coarse) * first + 6 * first + 3 * self.plan.inits
        for position in coarse:
            self.extend(order[position], first)
        if not _unimodal([self.mean(order[p]) for p in coarse]):
            return None
        low = min(coarse, key=lambda p: self.mean(order[p]))
        raced: set[int] = set()
        while True:
            finalists = [order[p] for p in self._narrow(order, low, first)]
            self.total = self.done + sum(self.plan.inits - len(self.distances[k]) for k in finalists)
            alive = self.race(finalists, race)
            raced.update(finalists)
            winner = min(alive, key=self.mean)
            # A value met earlier with fewer initialisations that beats the winner on the ones they
            # share: the bracket was misled by noise; search again around it.
            better = [p for p in range(len(order)) if order[p] not in raced and self.distances[order[p]]
                      and self._ahead(order[p], winner)]
            if not better:
                return alive
            low = min(better, key=lambda p: self.mean(order[p]))

    def _ahead(self, k: int, winner: int) -> bool:
        """``k``'s mean W is below the winner's over the initialisations both have."""
        n = min(len(self.distances[k]), len(self.distances[winner]))
        return sum(self.distances[k][:n]) < sum(self.distances[winner][:n])

    def _narrow(self, order: list[int], low: int, first: int) -> list[int]:
        """Halve the bracket around grid position ``low`` (between its evaluated neighbours) until
        the best value's neighbours are evaluated; returns the positions of the best and them."""
        known = [p for p in range(len(order)) if self.distances[order[p]]]
        left = max((p for p in known if p < low), default=low)
        right = min((p for p in known if p > low), default=low)
        while right - left > 2:
            for probe in ((left + low) // 2, (low + right + 1) // 2):
                if left < probe < right:
                    self.extend(order[probe], first)
            inner = [p for p in range(left, right + 1) if self.distances[order[p]]]
            low = min(inner, key=lambda p: self.mean(order[p]))
            left = max((p for p in inner if p < low), default=low)
            right = min((p for p in inner if p > low), default=low)
        for p in range(left, right + 1):
            self.extend(order[p], first)
        return list(range(left, right + 1))


def fresh_select(
    values: torch.Tensor,
    coords: torch.Tensor,
    model: str,
    params: dict[str, ParamValue] | None = None,
    grid: Sequence[float] | None = None,
    inits: int = 10,
    bins: int | None = None,
    seed: int = 0,
    race: bool = True,
    progress: Callable[[int, int], None] | None = None,
    per_frame: bool = False,
    plan: SelectionPlan | None = None,
) -> Selection:
    """Run FreSh selection for ``model`` on a signal.

    Args:
        values: target ``(C, *spatial)`` as training sees it; any value range (spectra ignore
            scale and mean). Unused with a measured plan (:func:`plan_measured_selection`).
        coords: ``(N, d)`` coordinates of all samples in row-major order, on the device to use
            (with a measured plan, only its device counts).
        model: registry name; its knob is searched (and its second knob, when the plan says so:
            :func:`plan_selection`'s ``two_knobs``).
        params: fixed hyperparameters (the knob's value in them is ignored).
        grid: candidate knob values (default: the registry's grid).
        inits: initialisations ``R`` per candidate.
        bins: spectrum size (default 64, fewer for a narrow band or a small signal).
        seed: seed of every candidate's random stream.
        race: drop clearly worse candidates early (see module docstring).
        progress: called as ``progress(done, total)`` after each evaluated batch.
        per_frame: compare mean per-frame spectra of a clip (see :func:`plan_selection`).
        plan: the checked plan of :func:`plan_selection`, when the caller made it already
            (``params``, ``grid``, ``inits``, ``bins`` and ``per_frame`` are then taken from it).

    Raises:
        SpecfitError: the model has no knob, the grid is empty, or the target has no spectrum.
        With two knobs, ``table``, ``chosen`` and ``mean_spectra`` are those of the first knob at the
        chosen value of the second, and ``table_2d`` holds every pair.
    """
    started = time.perf_counter()
    plan = plan or plan_selection(values, model, params, grid, inits, bins, per_frame)
    knob, candidates = plan.knob, plan.candidates
    target = plan.target.to(coords.device)
    if plan.measured is not None:
        features = plan.measured.in_features, plan.measured.out_features
    else:
        features = coords.shape[1], values.shape[0]

    def search_at(others: dict[str, ParamValue], report: Callable[[int, int], None] | None
                  ) -> tuple[_Search, int]:
        return _search_knob(plan, {**plan.base, **others}, coords, features, target, seed, race, report)

    second_chosen, table_2d, notes = None, None, list(plan.notes)
    if plan.second_knob is None:
        search, best = search_at({}, progress)
    else:
        rows = _search_rows(plan, search_at, progress)
        pick, alike = _best_row(plan, rows)
        if alike:
            notes.append(f"{plan.second_knob} does not change the untrained models' spectra here (every "
                         f"value's distance is the same); it stays at its default "
                         f"{plan.second_values[pick]}")
        search, best = rows[pick]
        second_chosen = plan.second_values[pick]
        table_2d = Table2D(list(plan.second_values), list(candidates), [_table(plan, row) for row, _ in rows])
    selection = Selection(
        knob=knob,
        chosen=candidates[best],
        table=_table(plan, search),
        seconds=time.perf_counter() - started,
        bins=plan.bins,
        inits=plan.inits,
        target_spectrum=target.tolist(),
        mean_spectra={
            str(v): (s / len(d)).tolist()
            for v, s, d in zip(candidates, search.spectra_sum, search.distances, strict=True) if d
        },
        notes=notes,
        band=plan.band.to_json(),
        spectrum=plan.spectrum,
        objective=plan.objective,
        second_knob=plan.second_knob,
        second_chosen=second_chosen,
        table_2d=table_2d,
    )
    if selection.edge_note():
        selection.notes.append(selection.edge_note())
    return selection


def _search_knob(
    plan: SelectionPlan, params: dict[str, ParamValue], coords: torch.Tensor, features: tuple[int, int],
    target: torch.Tensor, seed: int, race: bool, progress: Callable[[int, int], None] | None,
) -> tuple[_Search, int]:
    """One search of ``plan``'s knob, the other hyperparameters at ``params``: the search (its
    distances per candidate) and the position of the best candidate."""
    entry, knob = plan.entry, plan.knob

    def build(value: ParamValue) -> torch.nn.Module:
        return entry.create(*features, {**params, **entry.selection_overrides, knob: value})

    evaluator = _evaluator(build, coords, plan, seed, _layer_width(entry, params))
    search = _Search(plan, evaluator, target, progress)
    numeric = all(isinstance(v, int | float) for v in plan.candidates)
    bracketed = plan.search == "bracket" and numeric and len(plan.candidates) >= MIN_BRACKET
    alive = search.bracket(race) if bracketed else None
    if alive is None:
        search.total = search.done + sum(plan.inits - len(d) for d in search.distances)
        alive = search.race(list(range(len(plan.candidates))), race)
    return search, min(alive, key=search.mean)


def _search_rows(
    plan: SelectionPlan, search_at: Callable[[dict[str, ParamValue], Callable[[int, int], None] | None],
                                             tuple[_Search, int]],
    progress: Callable[[int, int], None] | None,
) -> list[tuple[_Search, int]]:
    """One search of the knob per value of the second knob, in its grid order; each one's best
    candidate raised to ``R`` initialisations, so that rows compare on the same ones. Progress
    counts every row, the rows to come estimated at the current one's total."""
    rows: list[tuple[_Search, int]] = []
    for index, value in enumerate(plan.second_values):
        before, after = sum(row.done for row, _ in rows), len(plan.second_values) - index - 1

        def report(done: int, total: int, before: int = before, after: int = after) -> None:
            if progress is not None:
                progress(before + done, before + total * (1 + after))

        search, best = search_at({plan.second_knob: value}, report)
        search.extend(best, plan.inits)
        rows.append((search, best))
    return rows


def _same(a: float, b: float) -> bool:
    """Two mean distances that agree to :data:`SAME_W` (relative): float rounding apart."""
    return abs(a - b) <= SAME_W * max(abs(a), abs(b))


def _best_row(plan: SelectionPlan, rows: list[tuple[_Search, int]]) -> tuple[int, bool]:
    """The row of least mean ``W`` at its best candidate (among rows the same as it, see
    :func:`_same`, the second knob's default), and whether every row is the same as it (more
    than one)."""
    means = [search.mean(best) for search, best in rows]
    low = min(range(len(rows)), key=means.__getitem__)
    tied = [i for i in range(len(rows)) if _same(means[i], means[low])]
    default = plan.base[plan.second_knob]
    return next((i for i in tied if plan.second_values[i] == default), low), 1 < len(tied) == len(rows)


def _table(plan: SelectionPlan, search: _Search) -> list[Candidate]:
    """One :class:`Candidate` per grid value of the knob, in grid order."""
    return [Candidate(v, *_stats(d), len(d)) for v, d in zip(plan.candidates, search.distances, strict=True)]


def _layer_width(entry: ModelEntry, params: dict[str, ParamValue]) -> int:
    """The widest hidden layer of ``entry``'s models with ``params`` as FreSh evaluates them."""
    return declared(entry.hyperparameters({**params, **entry.selection_overrides})).layer_width()


def _evaluator(build: Callable[[ParamValue], torch.nn.Module], coords: torch.Tensor, plan: SelectionPlan,
               seed: int, width: int) -> InitEvaluator:
    if plan.measured is not None:
        return InitEvaluator(build, coords, (), seed, plan.inits, observe=plan.measured.observe, width=width)
    return InitEvaluator(build, evaluation_points(coords, plan), plan.output_shape, seed, plan.inits,
                         width=width)


def init_spectrum(
    coords: torch.Tensor,
    model: str,
    params: dict[str, ParamValue],
    plan: SelectionPlan,
    seed: int = 0,
) -> list[float]:
    """Mean spectrum (in ``plan``'s band) of one configuration's untrained outputs, for reports."""
    entry = get_entry(model)
    measured = plan.measured
    in_features = coords.shape[1] if measured is None else measured.in_features
    out_features = plan.output_shape[0] if measured is None else measured.out_features

    def build(_: ParamValue) -> torch.nn.Module:
        return entry.create(in_features, out_features, {**params, **entry.selection_overrides})

    outputs = _evaluator(build, coords, plan, seed, _layer_width(entry, params)).outputs(None, 0, plan.inits)
    return plan.vectors(outputs).mean(dim=0).tolist()
