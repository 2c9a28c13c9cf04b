"""Train many networks of one family as one computation: a grid's knob values on one signal, or one
configuration on many signals of the same size.

:class:`StackedMLP` holds ``B`` :class:`~specfit.models.body.ActivationMLP` networks of the same
family and shape as stacked weights ``(B, ...)``; what differs between them as plain numbers
(``omega_0``, the activation scale...) becomes a ``(B, 1, 1)`` tensor, so the family's own
activation code runs on all of them at once. Every layer is one batched matrix product instead of
``B``, and one Adam step updates all of them: Adam works element by element, and the loss is the
sum of the networks' own losses, so each network follows exactly the trajectory it would follow
alone (up to the rounding of batched products). :func:`train_stacked` mirrors
:func:`specfit.training.loop.fit_model` for full-batch MSE training, keeping each network's best state
by its training score, and writes the trained weights back into the original modules.

Families with constraints or regularisation (TUNER), per-sample structure (ResFields) or custom
kernels (the hash grid) are trained one after another instead (:func:`can_stack`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn

from specfit.metrics import psnr
from specfit.models.body import ActivationMLP
from specfit.models.params import ModelParams
from specfit.signals.sampling import Sampling
from specfit.training.loop import FitOptions, _evaluation_samples, _lr_lambda, adam_optimizer


def can_stack(models: Sequence[nn.Module], options: FitOptions, loss: str) -> bool:
    """Whether :func:`train_stacked` can train ``models`` together (else train them one by one)."""
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


class StackedMLP(nn.Module):
    """``B`` networks of one :class:`ActivationMLP` family: ``(N, d)`` -> ``(B, N, C)``."""

    def __init__(self, models: Sequence[ActivationMLP]) -> None:
        super().__init__()
        self.numbers = _numbers(models)

        def stack(get: Callable[[ActivationMLP], torch.Tensor]) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach() for m in models]).clone())

        self.first_w, self.first_b = stack(lambda m: m.first.weight), stack(lambda m: m.first.bias)
        self.hidden_w = nn.ParameterList(
            stack(lambda m, i=i: m.hidden[i].weight) for i in range(len(models[0].hidden)))
        self.hidden_b = nn.ParameterList(
            stack(lambda m, i=i: m.hidden[i].bias) for i in range(len(models[0].hidden)))
        self.last_w, self.last_b = stack(lambda m: m.last.weight), stack(lambda m: m.last.bias)

    def to(self, *args: object, **kwargs: object) -> StackedMLP:  # the numbers move too
        super().to(*args, **kwargs)
        device = self.first_w.device
        for name, value in vars(self.numbers).items():
            if isinstance(value, torch.Tensor):
                setattr(self.numbers, name, value.to(device))
        return self

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        n = self.numbers
        x = coords.unsqueeze(0) * n.input_scale.to(coords.dtype)
        h = n.first_activation(torch.baddbmm(self.first_b.unsqueeze(1), x, self.first_w.transpose(1, 2)))
        for weight, bias in zip(self.hidden_w, self.hidden_b, strict=True):
            h = n.activation(torch.baddbmm(bias.unsqueeze(1), h * n.hidden_scale, weight.transpose(1, 2)))
        out = torch.baddbmm(self.last_b.unsqueeze(1), h * n.hidden_scale, self.last_w.transpose(1, 2))
        return n.readout(out)

    def write_back(
        self, models: Sequence[ActivationMLP], state: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Copy network ``b``'s weights (from ``state``, default the current ones) into ``models[b]``."""
        state = dict(self.state_dict()) if state is None else state
        with torch.no_grad():
            for b, model in enumerate(models):
                model.first.weight.copy_(state["first_w"][b])
                model.first.bias.copy_(state["first_b"][b])
                for i, layer in enumerate(model.hidden):
                    layer.weight.copy_(state[f"hidden_w.{i}"][b])
                    layer.bias.copy_(state[f"hidden_b.{i}"][b])
                model.last.weight.copy_(state["last_w"][b])
                model.last.bias.copy_(state["last_b"][b])


@dataclass
class StackedResult:
    """What :func:`train_stacked` did: each network's best step and evaluation history, the
    seconds spent, the steps completed and whether Ctrl-C stopped it early."""

    best_steps: list[int]
    histories: list[list[dict]]
    seconds: float
    steps: int
    interrupted: bool


def train_stacked(
    models: Sequence[ActivationMLP],
    targets: torch.Tensor,
    sampling: Sampling,
    options: FitOptions,
    lr: float,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
    adam_betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    on_step: Callable[[int], None] | None = None,
) -> StackedResult:
    """Train ``models`` (on ``targets``' device) together by full-batch MSE, as
    :func:`~specfit.training.loop.fit_model` would train each; each ends with its best parameters by
    training PSNR at the evaluation steps, also when Ctrl-C stops training early.

    ``targets`` is ``(N, C)``, one signal for every network (a knob grid), or ``(B, N, C)``, one
    signal per network (one configuration on a folder of signals of the same size). Each
    network's history holds ``step``, ``loss`` and PSNR on all, training and held-out samples.
    """
    started = time.perf_counter()
    stacked = StackedMLP(models).to(targets.device)
    optimiser = adam_optimizer(stacked, options.lr or lr, adam_betas, adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(options.schedule, options.steps))
    per_signal = targets.dim() == 3
    samples = (slice(None),) if per_signal else ()
    x, y = sampling.coords[sampling.train], targets[(*samples, sampling.train)]
    indices, eval_train, eval_test = _evaluation_samples(sampling, options.seed)
    eval_x = sampling.coords[indices]
    eval_y = targets[(*samples, indices)]
    count = len(models)
    best_score, best_step = [-math.inf] * count, [0] * count
    histories: list[list[dict]] = [[] for _ in range(count)]
    best_state = {k: v.detach().clone() for k, v in stacked.state_dict().items()}

    def evaluate(step: int, losses: torch.Tensor) -> None:
        with torch.inference_mode():
            prediction = stacked(eval_x)
        for b in range(count):
            pred, goal = to_unit(prediction[b]), to_unit(eval_y[b] if per_signal else eval_y)
            score = psnr(pred[eval_train], goal[eval_train])
            histories[b].append({
                "step": step, "loss": float(losses[b]), "psnr": psnr(pred, goal), "psnr_train": score,
                "psnr_test": None if eval_test is None else psnr(pred[eval_test], goal[eval_test])})
            if score > best_score[b]:
                best_score[b], best_step[b] = score, step
                with torch.no_grad():
                    for key, value in stacked.state_dict().items():
                        best_state[key][b] = value[b]

    completed, interrupted = 0, False
    try:
        for step in range(1, options.steps + 1):
            losses = (stacked(x) - y).square().mean(dim=(1, 2))
            losses.sum().backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            scheduler.step()
            completed = step
            if on_step is not None:
                on_step(step)
            if step % options.eval_every == 0 or step == options.steps:
                evaluate(step, losses.detach())
    except KeyboardInterrupt:
        interrupted = True
    if completed and not histories[0]:
        evaluate(completed, torch.full((count,), math.nan))
    stacked.write_back(models, best_state if histories[0] else None)
    return StackedResult(best_step, histories, time.perf_counter() - started, completed, interrupted)
