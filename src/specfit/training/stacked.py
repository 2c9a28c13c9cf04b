"""Train many networks of one family as one computation: a grid's knob values on one signal, or one
configuration on many signals of the same size.

:class:`StackedMLP` holds ``B`` :class:`~specfit.models.body.ActivationMLP` networks of the same
family and shape as stacked weights ``(B, ...)`` under the networks' own parameter names
(``first.weight`` is ``(B, width, d)``); what differs between them as plain numbers (``omega_0``,
the activation scale...) becomes a ``(B, 1, 1)`` tensor, so the family's own activation code runs
on all of them at once. Every layer is one batched matrix product instead of ``B``, and one Adam
step updates all of them: Adam works element by element, and each network's gradient is that of its
own loss, so each network follows exactly the trajectory it would follow alone (up to the rounding
of batched products).

:class:`StackedModels` is the :class:`~specfit.training.loop.Trainer`'s strategy for them
(full-batch MSE, the same events, best states, interrupts and checkpoints as one model): its
checkpoints are one :class:`~specfit.training.state.TrainingState` per network, each as that
network trained alone would hold it, and the trained weights are written back into the original
modules.

Families with constraints or regularisation (TUNER), per-sample layers (ResFields) or custom
kernels (the hash grid) are trained one after another instead (:func:`can_stack`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import torch
from torch import nn

from specfit.models.body import ActivationMLP
from specfit.models.params import ModelParams
from specfit.signals.sampling import Sampling
from specfit.training.loop import FitOptions, mse_psnr, psnr_score, unit_scale
from specfit.training.state import TrainingState


def can_stack(models: Sequence[nn.Module], options: FitOptions, loss: str) -> bool:
    """Whether :class:`StackedModels` can train ``models`` together (else train them one by one)."""
    first = models[0]
    declared = [getattr(m, "hparams", None) for m in models]  # what the registry built them from
    if not all(isinstance(p, ModelParams) and p.stackable for p in declared) or loss != "mse":
        return False
    if options.batch_size is not None or any(type(m) is not type(first) for m in models):
        return False
    shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
    return all(s == shapes[0] for s in shapes)


def _numbers(models: Sequence[ActivationMLP]) -> SimpleNamespace:
    """The models' float attributes as ``(B, 1, 1)`` tensors (other attributes must agree), on an
    object that has the family's activation and readout methods."""
    values: dict[str, object] = {}
    for name, value in vars(models[0]).items():
        if name.startswith("_"):
            continue
        if isinstance(value, float):
            values[name] = torch.tensor([getattr(m, name) for m in models]).view(-1, 1, 1)
        elif all(getattr(m, name) == value for m in models[1:]):
            values[name] = value
    for name in ("input_scale", "hidden_scale"):
        values[name] = torch.tensor([float(getattr(m, name)) for m in models]).view(-1, 1, 1)
    family = type(models[0])
    methods = {name: getattr(family, name) for name in ("activation", "first_activation", "readout")}
    return type(f"Stacked{family.__name__}", (SimpleNamespace,), methods)(**values)


class StackedLinear(nn.Module):
    """``B`` linear layers of one shape: ``(B, n, in)`` -> ``(B, n, out)``; ``weight`` is
    ``(B, out, in)`` and ``bias`` ``(B, out)``, layer ``b`` being ``layers[b]``'s."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]).clone())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedMLP(nn.Module):
    """``B`` networks of one :class:`ActivationMLP` family: ``(N, d)`` -> ``(B, N, C)``; its
    ``state_dict`` holds each network's parameters under their own names, stacked on a first axis."""

    def __init__(self, models: Sequence[ActivationMLP]) -> None:
        super().__init__()
        self.numbers = _numbers(models)
        self.first = StackedLinear([m.first for m in models])
        self.hidden = nn.ModuleList(StackedLinear([m.hidden[i] for m in models])
                                    for i in range(len(models[0].hidden)))
        self.last = StackedLinear([m.last for m in models])

    def to(self, *args: object, **kwargs: object) -> StackedMLP:  # the numbers move too
        super().to(*args, **kwargs)
        device = self.first.weight.device
        for name, value in vars(self.numbers).items():
            if isinstance(value, torch.Tensor):
                setattr(self.numbers, name, value.to(device))
        return self

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        n = self.numbers
        h = n.first_activation(self.first(coords.unsqueeze(0) * n.input_scale.to(coords.dtype)))
        for layer in self.hidden:
            h = n.activation(layer(h * n.hidden_scale))
        return n.readout(self.last(h * n.hidden_scale))


class StackedModels:
    """Many :func:`can_stack` networks trained as one :class:`StackedMLP` by full-batch MSE: a
    :class:`~specfit.training.loop.Strategy` whose every network gets PSNR (after ``to_unit``) on
    all, training and held-out samples, keeps its best state by training PSNR, and is written back
    into ``models`` when training ends.

    ``targets`` (on the device the networks train on) is ``(N, C)``, one signal for every network
    (a knob grid), or ``(B, N, C)``, one signal per network (one configuration on a folder of
    signals of the same size).
    """

    score_name = "psnr"
    forward = None
    compile_ok = False
    autocast_ok = False

    def __init__(self, models: Sequence[ActivationMLP], targets: torch.Tensor, sampling: Sampling,
                 to_unit: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.models = list(models)
        self.count = len(self.models)
        self.module = StackedMLP(self.models).to(targets.device)
        self.targets, self.sampling, self.score = targets, sampling, psnr_score(to_unit)
        self.unit_scale = unit_scale(to_unit)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.module(x) - y).square().mean(dim=(1, 2))

    def after_step(self) -> None:
        """Nothing: stacked families have no constraints."""

    def loss_psnr(self, losses: torch.Tensor) -> torch.Tensor:
        return mse_psnr(losses, self.unit_scale)

    def predict(self, coords: torch.Tensor) -> list[torch.Tensor]:
        with torch.inference_mode():
            return list(self.module(coords))

    def parameters(self, index: int) -> dict[str, torch.Tensor]:
        return {name: value[index] for name, value in self.module.state_dict().items()}

    def network_states(self, adam: dict, copy_adam: bool) -> list[tuple[dict[str, torch.Tensor], dict]]:
        """Slices of the stacked parameters and Adam moments (always copies); Adam's step counters
        (0-d tensors, the same for all networks) are copied to each."""
        stacked = self.module.state_dict()

        def part(value: object, index: int) -> object:
            if not isinstance(value, torch.Tensor):
                return value
            return (value[index] if value.dim() else value).clone()

        states = []
        for index in range(self.count):
            model = {name: value[index].clone() for name, value in stacked.items()}
            moments = {key: {name: part(value, index) for name, value in values.items()}
                       for key, values in adam["state"].items()}
            groups = [{**group, "params": list(group["params"])} for group in adam["param_groups"]]
            states.append((model, {"state": moments, "param_groups": groups}))
        return states

    def joined_states(self, states: Sequence[TrainingState]) -> tuple[dict[str, torch.Tensor], dict]:
        """The networks' parameters and Adam moments stacked (every parameter of an
        :class:`ActivationMLP` has at least one axis); step counters from the first network."""

        def joined(values: list[object]) -> object:
            first = values[0]
            if isinstance(first, torch.Tensor) and first.dim():
                return torch.stack(values)
            return first

        model = {name: torch.stack([state.model[name] for state in states]) for name in states[0].model}
        adams = [state.optimiser for state in states]
        moments = {key: {name: joined([adam["state"][key][name] for adam in adams]) for name in values}
                   for key, values in adams[0]["state"].items()}
        return model, {"state": moments, "param_groups": adams[0]["param_groups"]}

    def finish(self, best: Sequence[dict[str, torch.Tensor] | None]) -> list[nn.Module]:
        """Write each network's best parameters (its current ones when it has none) into its module."""
        for index, (model, state) in enumerate(zip(self.models, best, strict=True)):
            model.load_state_dict(self.parameters(index) if state is None else state)
        return list(self.models)
