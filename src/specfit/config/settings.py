"""What a fit does besides its signal, as one typed, JSON-serialisable tree of settings.

Each setting is declared once, as a field (:func:`~specfit.models.params.param`) of the tree below
or of the dataclasses it nests (:class:`~specfit.training.loop.FitOptions`,
:class:`~specfit.training.compaction.CompactionPlan`); :mod:`specfit.config.tree` makes of the
declarations the keywords of :func:`specfit.fit`, the flags of ``specfit fit``, the keys of config
files and the JSON. A run's ``config.json`` holds these settings (``"settings"``) next to the
signal's description and the options it was loaded with, so a saved run can be fitted again
exactly (:func:`specfit.rerun`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from specfit.config.tree import build, check_tree, group, leaves, tree
from specfit.config.tree import from_json as tree_from_json
from specfit.config.tree import to_json as tree_to_json
from specfit.errors import SpecfitError
from specfit.fresh.options import DEFAULT_OBJECTIVE, DEFAULT_SPECTRUM, OBJECTIVES, SEARCHES, SPECTRA
from specfit.models.params import param
from specfit.models.registry import ParamValue
from specfit.signals.sampling import SPLITS
from specfit.tasks.base import SHAPE_TARGETS, VIDEO_SPECTRA
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions
from specfit.util.runtime import check_device_name

MAX_SEED = 2**32 - 1
# The objective FreSh uses when none is set (see FitSettings.resolved_objective), as --help says it.
_DEFAULT_OBJECTIVE_TEXT = "fit" if DEFAULT_OBJECTIVE == "fit" else \
    f"{DEFAULT_OBJECTIVE} when samples are held out, else fit"


@dataclass
class SelectionSettings:
    """How FreSh chooses the knob (see :func:`specfit.select`)."""

    fresh: bool = param(
        True, "choose the knob by FreSh unless the knob is set (off, --no-fresh: train its default value)")
    grid: list[float] | None = param(
        None, "FreSh's candidate values, on the command line 10,20,30 or START:STOP:STEP (default: the "
        "signal type's or the model's grid, see `specfit models`)")
    inits: int = param(10, "FreSh's initialisations per candidate value")
    bins: int | None = param(None, "spectrum size (default 64, fewer for a narrow band or a small signal)")
    spectrum: str | None = param(
        None, "FreSh's band: signal (follows the signal's content; the default for audio and images) or "
        "published (the lowest 64 frequencies, as in the FreSh paper; the default for video, volumes and "
        "shapes)", choices=SPECTRA)
    objective: str | None = param(
        None, "what FreSh's choice serves: fit (the training samples) or generalize (the held-out samples); "
        f"default: {_DEFAULT_OBJECTIVE_TEXT}", choices=OBJECTIVES)
    search: str = param(
        "bracket", "FreSh's search: bracket (coarse to fine on the U-shaped distance curve), full (every "
        "value) or probes (fit only: the bracket's best values and their neighbours trained briefly, the "
        "best kept by successive halving on the objective; about twice the fit's training)",
        choices=SEARCHES)
    two_knobs: bool = param(
        False, "FreSh chooses the model's knob together with its second knob (siren: hidden_omega_0, "
        "hashgrid: log2_table, ff-gaussian: features, tuner: c_high, wire: scale): the knob is searched "
        "once for each value of the second knob's small grid and the pair of least distance kept (as "
        "many searches)", written_when_set=True)


@dataclass
class SplitSettings:
    """Which samples training sees and which are held out to score it."""

    split: str = param(
        "holdout", "samples held out of training: none (all), a random fraction (holdout) or odd pixels "
        "(lattice, images)", choices=SPLITS)
    holdout: float = param(0.1, "held-out fraction for split holdout")


@dataclass
class KindOptions:
    """Settings that only some signal types read."""

    shape_target: str = param(
        "occupancy", "meshes: fit occupancy or signed distance (sdf)", choices=SHAPE_TARGETS)
    video_spectrum: str = param(
        "frames", "video: FreSh compares mean per-frame spectra (frames) or the clip's 3-D spectrum (3d)",
        choices=VIDEO_SPECTRA)


@tree
@dataclass(init=False)
class FitSettings:
    """Everything :func:`specfit.fit` does with a signal.

    A tree: FreSh's settings (:class:`SelectionSettings`), the split (:class:`SplitSettings`), the
    training (:class:`~specfit.training.loop.FitOptions`, ``fit``), the per-type options
    (:class:`KindOptions`) and the compaction after training
    (:class:`~specfit.training.compaction.CompactionPlan`, ``None``: none). The leaves of the first
    three are also keywords and attributes of the settings themselves (``FitSettings(grid=...)``,
    ``settings.grid``), as they are keys of its JSON. Each field's help says what it does.
    """

    model: str = param("siren", "the model", metavar="MODEL")
    params: dict[str, ParamValue] = param(
        {}, "hyperparameters of the model by name, as `specfit models` lists them (on the command line "
        "KNOB=VALUE, repeatable); setting the knob skips FreSh", flag="--set", metavar="KNOB=VALUE")
    selection: SelectionSettings = group(SelectionSettings, "FreSh (choosing the knob)", flat=True)
    sampling: SplitSettings = group(SplitSettings, "training", flat=True)
    seed: int = param(0, "seed of initialisation, selection and split", minimum=0, maximum=MAX_SEED)
    device: str = param(
        "auto", "auto (the first CUDA GPU when present, else the CPU), cpu, cuda, cuda:N (the N-th GPU) or "
        "mps (Apple GPUs); a device named here must be present", metavar="DEVICE")
    fit: FitOptions = group(FitOptions, "training")
    kind_options: KindOptions = group(KindOptions, "signal types", flat=True)
    compaction: CompactionPlan | None = group(CompactionPlan, "compaction (tuner models)", optional=True)

    @classmethod
    def for_fit(cls, **options: object) -> FitSettings:
        """Checked settings from options by name (see :func:`specfit.config.tree.build`), at the
        defaults of :func:`specfit.fit` where not given; the training's seed is the fit's seed."""
        settings = build(cls, options, fit_defaults=True)
        settings.fit = replace(settings.fit, seed=settings.seed)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`SpecfitError` for a setting that is invalid whatever the signal."""
        check_tree(self)
        check_device_name(self.device)
        if self.spectrum == "published" and self.objective == "generalize":
            raise SpecfitError("the generalize objective needs the signal spectrum, not the published one",
                               setting="objective")
        if self.split == "holdout" and not 0.0 < self.holdout < 1.0:
            raise SpecfitError(f"holdout must be in (0, 1), got {self.holdout}", setting="holdout")

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
        """The settings as JSON: the flat keys ``model``, ``params``, FreSh's, the split's, ``seed``,
        ``device``, ``fit`` (a mapping), the per-type options and ``compaction`` (a mapping or null)."""
        return tree_to_json(self)

    @classmethod
    def from_json(cls, data: object) -> FitSettings:
        """Settings from :meth:`to_json`'s output; unknown fields are errors, missing ones defaults."""
        settings = tree_from_json(cls, data)
        if not isinstance(settings.params, dict):
            raise SpecfitError("settings: params must be a mapping")
        return settings


# What FreSh alone (specfit.select) does not read: its off switch, the training and the compaction.
NOT_SELECTION = ("fresh", "fit", "compaction", *(leaf.name for leaf in leaves(FitSettings).values()
                                                  if leaf.key.startswith(("fit.", "compaction."))))
