"""What a fit does besides its signal, as one typed, JSON-serialisable configuration.

A run's ``config.json`` holds these settings (``"settings"``) next to the signal's description and
the options it was loaded with, so a saved run can be fitted again exactly
(:func:`specfit.rerun`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from specfit.errors import SpecfitError
from specfit.fresh.options import DEFAULT_OBJECTIVE, DEFAULT_SPECTRUM, OBJECTIVES, SEARCHES, SPECTRA
from specfit.models.registry import ParamValue
from specfit.signals.sampling import SPLITS
from specfit.tasks.base import SHAPE_TARGETS, VIDEO_SPECTRA
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions

DEVICES = ("auto", "cpu", "cuda")

MAX_SEED = 2**32 - 1


@dataclass
class FitSettings:
    """Everything :func:`specfit.fit` does with a signal.

    Attributes:
        model: registry name (``specfit models``).
        params: hyperparameters set by the user; setting the model's knob fixes it (no FreSh).
        fresh: choose the knob by FreSh (else train its default), unless ``params`` sets it.
        grid: FreSh's candidate values (``None``: the signal type's or the model's grid).
        inits: FreSh initialisations per candidate.
        bins: spectrum size (``None``: 64, fewer for a narrow band or a small signal).
        spectrum: FreSh's spectrum band: ``"signal"`` (follows the signal's content) or
            ``"published"`` (the lowest 64 frequencies, as published); ``None`` picks by the
            signal type (:meth:`resolved_spectrum`).
        objective: what FreSh's choice serves: ``"fit"`` (the training samples) or
            ``"generalize"`` (the held-out samples); ``None`` picks by the split
            (:meth:`resolved_objective`).
        search: FreSh's search over the grid: ``"bracket"`` (coarse to fine on the U-shaped
            curve) or ``"full"`` (every value).
        split: ``"all"``, ``"holdout"`` (a random ``holdout`` fraction is held out) or
            ``"lattice"`` (images: train on even pixels, test on odd ones).
        seed: seed of initialisation, selection and split.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        fit: training settings (steps, learning rate, schedule, batches, evaluation, compile).
        shape_target: meshes: ``"occupancy"`` or ``"sdf"``.
        video_spectrum: video: FreSh compares mean per-frame spectra (``"frames"``) or the clip's
            3-D spectrum (``"3d"``).
        compaction: prune or densify after training (models that support it: TUNER).
    """

    model: str = "siren"
    params: dict[str, ParamValue] = field(default_factory=dict)
    fresh: bool = True
    grid: list[float] | None = None
    inits: int = 10
    bins: int | None = None
    spectrum: str | None = None
    objective: str | None = None
    search: str = "bracket"
    split: str = "holdout"
    holdout: float = 0.1
    seed: int = 0
    device: str = "auto"
    fit: FitOptions = field(default_factory=FitOptions)
    shape_target: str = "occupancy"
    video_spectrum: str = "frames"
    compaction: CompactionPlan | None = None

    def check(self) -> None:
        """Raise :class:`SpecfitError` for a setting that is invalid whatever the signal."""
        self.fit.check()
        _choice("split", self.split, SPLITS)
        _choice("shape_target", self.shape_target, SHAPE_TARGETS)
        _choice("video_spectrum", self.video_spectrum, VIDEO_SPECTRA)
        _choice("device", self.device, DEVICES)
        if self.spectrum is not None:
            _choice("spectrum", self.spectrum, SPECTRA)
        _choice("search", self.search, SEARCHES)
        if self.objective is not None:
            _choice("objective", self.objective, OBJECTIVES)
        if self.spectrum == "published" and self.objective == "generalize":
            raise SpecfitError("the generalize objective needs the signal spectrum, not the published one",
                               setting="objective")
        if self.split == "holdout" and not 0.0 < self.holdout < 1.0:
            raise SpecfitError(f"holdout must be in (0, 1), got {self.holdout}", setting="holdout")
        if not 0 <= self.seed <= MAX_SEED:
            raise SpecfitError(f"seed must be 0 to {MAX_SEED}, got {self.seed}", setting="seed")
        if self.grid is not None and not (self.grid and all(math.isfinite(v) for v in self.grid)):
            raise SpecfitError("the FreSh grid must hold finite values")
        if self.compaction is not None:
            self.compaction.check()

    def resolved_spectrum(self, kind: str) -> str:
        """The spectrum FreSh uses on a signal of type ``kind``: the one set, else ``"signal"`` with
        the generalize objective, else the type's default from the validation
        (:data:`specfit.fresh.options.DEFAULT_SPECTRUM`: the signal band for audio and images, the
        published band for the other types)."""
        if self.spectrum is not None:
            return self.spectrum
        if self.objective == "generalize":
            return "signal"
        return DEFAULT_SPECTRUM.get(kind, "published")

    def resolved_objective(self) -> str:
        """The objective FreSh uses: the one set, else :data:`DEFAULT_OBJECTIVE` for the split
        (``"fit"`` when nothing is held out or with the published spectrum)."""
        if self.objective is not None:
            return self.objective
        if self.spectrum == "published" or self.split == "all":
            return "fit"
        return DEFAULT_OBJECTIVE

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> FitSettings:
        """Settings from :meth:`to_json`'s output; unknown or ill-typed fields are errors."""
        if not isinstance(data, dict):
            raise SpecfitError(f"settings must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecfitError(f"unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        try:
            if "fit" in values:
                values["fit"] = FitOptions(**values["fit"])
            if values.get("compaction") is not None:
                values["compaction"] = CompactionPlan(**values["compaction"])
            settings = cls(**values)
        except TypeError as exc:
            raise SpecfitError(f"malformed settings ({exc})") from None
        if not isinstance(settings.params, dict):
            raise SpecfitError("settings: params must be a mapping")
        return settings


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecfitError(f"{name} must be one of {', '.join(choices)}, got {value!r}", setting=name)
