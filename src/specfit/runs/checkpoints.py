"""Training state saved mid-run, so that an interrupted fit can continue exactly where it stopped.

A checkpoint is one file, ``checkpoint.safetensors``: the tensors (the model's current and best
parameters, Adam's moments, the mini-batch generator's state) under prefixed names, and everything
else (the step, Adam's hyperparameters, the schedule's position, the best score, the evaluation
history, what the fit chose before training) as JSON in the file's metadata. It is written to a
temporary name and renamed, so a run killed while writing keeps its previous checkpoint. Nothing
is unpickled when it is read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from specfit.errors import SpecfitError
from specfit.models.registry import get_entry, resolve_params
from specfit.runs.folder import staged_directory
from specfit.runs.format import CHECKPOINT, CONFIG, HISTORY, config_text, write_history
from specfit.runs.records import Each, MayOmit, mismatch
from specfit.training.state import TrainingState
from specfit.util.files import dumps, staged_file

_META_KEY = "specfit_checkpoint"
_MODEL, _BEST, _ADAM, _GENERATOR = "model.", "best.", "adam.", "generator"
# The metadata as write_checkpoint writes it (see specfit.runs.records); best_score may be a
# non-finite float written as text or null.
_SCORE = (float, str, None)
_ADAM_GROUP = {"lr": float, "betas": [float], "eps": float, "weight_decay": float, "params": [int]}
_SCHEDULE = {"base_lrs": [float], "last_epoch": int, "lr_lambdas": list, "_step_count": MayOmit(int),
             "_last_lr": MayOmit([float])}  # a LambdaLR's state_dict
META_SHAPE = {"step": int, "best_score": _SCORE, "best_step": int, "has_best": bool, "history": [dict],
              "seconds": float, "step_seconds": float, "adam_groups": [_ADAM_GROUP],
              "adam_state": Each(dict), "scheduler": _SCHEDULE, "fit": dict}


@dataclass
class Checkpoint:
    """A :class:`TrainingState` and what the fit decided before training began.

    Attributes:
        state: the training state.
        fit: JSON-ready facts of the fit (the resolved parameters trained, FreSh's mode and table,
            the report's spectra) that continuing must not recompute.
    """

    state: TrainingState
    fit: dict = field(default_factory=dict)


def _cpu(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + name: value.detach().contiguous().cpu() for name, value in tensors.items()}


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a temporary name, then a rename)."""
    state = checkpoint.state
    tensors = {**_cpu(state.model, _MODEL), **_cpu(state.best or {}, _BEST)}
    adam_state: dict[str, dict] = {}
    for index, values in state.optimiser["state"].items():
        scalars = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_ADAM}{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[key] = value
        adam_state[str(index)] = scalars
    if state.generator is not None:
        tensors[_GENERATOR] = state.generator.contiguous().cpu()
    meta = {
        "step": state.step, "best_score": state.best_score, "best_step": state.best_step,
        "has_best": state.best is not None, "history": state.history, "seconds": state.seconds,
        "step_seconds": state.step_seconds, "adam_groups": state.optimiser["param_groups"],
        "adam_state": adam_state, "scheduler": state.scheduler, "fit": checkpoint.fit,
    }
    with staged_file(path) as temporary:
        save_file(tensors, str(temporary), metadata={_META_KEY: dumps(meta)})


def _number(value: object) -> float:
    """A float written by :func:`specfit.util.files.dumps` (non-finite values as strings or null)."""
    if value is None:
        return math.nan
    return float(value)  # "inf" and "-inf" parse


def _problem(
    meta: object, tensors: dict[str, torch.Tensor], params: dict | None, model: str | None,
) -> str | None:
    """What is wrong with a checkpoint's metadata and tensors, as :func:`write_checkpoint` writes
    them (``None``: nothing); ``params`` are the run's own hyperparameters of the registered
    ``model``, when known (compared with every default filled in, so a run saved before a family
    gained a hyperparameter still matches its checkpoint)."""
    problem = mismatch(meta, META_SHAPE)
    if problem is not None:
        return problem
    if meta["step"] < 0 or meta["best_step"] < 0:
        return "a negative step"
    if isinstance(meta["best_score"], str) and meta["best_score"] not in ("inf", "-inf"):
        return f"the best score {meta['best_score']!r} is not a number"
    fit = meta["fit"]
    trained = fit.get("params")
    if params is not None and model is not None and isinstance(trained, dict):
        entry = get_entry(model)
        trained, params = resolve_params(entry, trained), resolve_params(entry, params)
    if params is not None and (trained != params or not isinstance(fit.get("mode"), str)):
        return "it trained other hyperparameters than the run's config.json"
    schedule = meta["scheduler"]
    if not len(schedule["lr_lambdas"]) == len(schedule["base_lrs"]) == len(meta["adam_groups"]):
        return "its learning-rate schedule and its optimiser disagree"
    model = {name: value for name, value in tensors.items() if name.startswith(_MODEL)}
    best = {name[len(_BEST):]: value for name, value in tensors.items() if name.startswith(_BEST)}
    if not all(value.is_floating_point() for value in model.values()):
        return "a model tensor is not floating-point"
    shapes = {name[len(_MODEL):]: value.shape for name, value in model.items()}
    if meta["has_best"] and {name: value.shape for name, value in best.items()} != shapes:
        return "its best parameters do not match its model"
    for name, value in tensors.items():
        owner, _, key = name[len(_ADAM):].partition(".")
        if name.startswith(_ADAM) and owner not in meta["adam_state"]:
            return f"the optimiser tensor {name} belongs to no parameter"
        if name.startswith(_ADAM) and key == "step" and value.numel() != 1:
            return f"the optimiser tensor {name} is not one number"
    generator = tensors.get(_GENERATOR)
    if generator is not None and (generator.dtype != torch.uint8 or generator.dim() != 1):
        return "the mini-batch generator's state is not a byte vector"
    return None


def check_resumable(checkpoint: Checkpoint, model: nn.Module) -> None:
    """Refuse, before training continues, a checkpoint that does not fit ``model`` (built from the
    run's config, on its device): its parameters by name and shape, Adam's parameters and moments
    (one moment per parameter, of its shape) and the mini-batch generator's state (its size on the
    model's device). A one-line :class:`SpecfitError`; nothing is loaded.
    """
    state = checkpoint.state
    params = list(model.parameters())
    indices = sorted(i for group in state.optimiser["param_groups"] for i in group["params"])
    moments = [(index, value) for index, values in state.optimiser["state"].items()
               for key, value in values.items() if key != "step"]
    problem = None
    if {name: value.shape for name, value in state.model.items()} != {
            name: value.shape for name, value in model.state_dict().items()}:
        problem = "its parameters are not this model's"
    elif indices != list(range(len(params))):
        problem = "its optimiser does not hold this model's parameters"
    elif any(index not in indices or not isinstance(value, torch.Tensor) or value.shape != params[index].shape
             for index, value in moments):
        problem = "its optimiser's moments are not of this model's parameters"
    elif state.generator is not None:
        device = params[0].device if params else torch.device("cpu")
        if state.generator.numel() != torch.Generator(device=device).get_state().numel():
            problem = "its mini-batch generator's state is not of this device's kind"
    if problem is not None:
        raise SpecfitError(f"the checkpoint does not match this model ({problem})")


def read_checkpoint(path: Path, device: torch.device | str = "cpu", params: dict | None = None,
                    model: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`write_checkpoint`; tensors are moved to ``device``.

    ``params``, the run's resolved hyperparameters (its ``config.json``'s) of the registered
    ``model``, when given must be those the checkpoint trained. Raises :class:`SpecfitError` for a
    missing, unreadable or malformed file, checked against :data:`META_SHAPE` and its tensors'
    names, kinds and shapes before anything is built from it.
    """
    if not path.is_file():
        raise SpecfitError(f"{path.parent} has no checkpoint ({path.name}); it cannot be continued")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[_META_KEY])
            tensors = {name: handle.get_tensor(name).to(device) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, KeyError, ValueError, RecursionError) as exc:
        raise SpecfitError(f"{path} is not a readable checkpoint ({' '.join(str(exc).split())})") from None
    problem = _problem(meta, tensors, params, model)
    if problem is not None:
        raise SpecfitError(f"{path} is not a checkpoint of this run ({problem})")

    def prefixed(prefix: str) -> dict[str, torch.Tensor]:
        return {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}

    try:
        adam = prefixed(_ADAM)
        optimiser_state = {}
        for index, scalars in meta["adam_state"].items():
            values = dict(scalars)
            for name, value in adam.items():
                owner, _, key = name.partition(".")
                if owner == index:
                    values[key] = value
            optimiser_state[int(index)] = values
        groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
                  for group in meta["adam_groups"]]
        state = TrainingState(
            step=int(meta["step"]), model=prefixed(_MODEL),
            optimiser={"state": optimiser_state, "param_groups": groups}, scheduler=dict(meta["scheduler"]),
            generator=tensors[_GENERATOR].cpu() if _GENERATOR in tensors else None,
            best_score=_number(meta["best_score"]), best_step=int(meta["best_step"]),
            best=prefixed(_BEST) if meta["has_best"] else None, history=list(meta["history"]),
            seconds=float(meta["seconds"]), step_seconds=float(meta["step_seconds"]),
        )
        return Checkpoint(state=state, fit=dict(meta["fit"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise SpecfitError(f"{path} is not a checkpoint of this specfit ({problem})") from None


class CheckpointSink(Protocol):
    """Where a fit's checkpoints go (see :func:`specfit.fitting.pipeline.run_plan`)."""

    def begin(self, config: dict) -> None:
        """Called once before training with the run's configuration (``config.json``'s fields)."""

    def __call__(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint`` (the latest replaces the earlier ones)."""


class FolderCheckpoints:
    """Checkpoints written into the run folder while the fit trains.

    The first checkpoint writes the run's ``config.json`` beside it (a new fit replaces whatever
    the folder held: the caller has checked that it may); later ones rewrite
    ``checkpoint.safetensors`` and ``history.csv``. A fit that fails before its first checkpoint
    leaves nothing. ``specfit fit --resume FOLDER`` continues from them; the finished run replaces
    the folder whole.
    """

    def __init__(self, folder: Path, continuing: bool = False) -> None:
        self.folder, self.continuing = Path(folder), continuing
        self.config: dict | None = None

    def begin(self, config: dict) -> None:
        self.config = config

    def __call__(self, checkpoint: Checkpoint) -> None:

        if self.config is not None:  # the first checkpoint: the folder gets the run's config
            config, self.config = self.config, None
            if not self.continuing:
                with staged_directory(self.folder) as stage:
                    (stage / CONFIG).write_text(config_text(config))
            else:
                with staged_file(self.folder / CONFIG) as temporary:
                    temporary.write_text(config_text(config))
        write_checkpoint(self.folder / CHECKPOINT, checkpoint)
        with staged_file(self.folder / HISTORY) as temporary:
            write_history(temporary, checkpoint.state.history)
