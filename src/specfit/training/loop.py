"""The training loop: Adam, optional schedule, full batch or random mini-batches, periodic evaluation.

Targets and predictions are ``(N, C)`` in the model's value range; ``to_unit`` maps them to [0, 1]
for PSNR. The loop keeps the best model by training-sample PSNR at evaluation points and restores
it at the end, also when interrupted with Ctrl-C (``KeyboardInterrupt``).

Speed: on request (``compile="auto"`` decides by the amount of work) the loss is compiled with
``torch.compile``; Adam uses its fused kernel where available. If compilation fails (no C++
compiler, unsupported operation) the loop falls back to eager mode and records a note.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from specfit.errors import SpecfitError
from specfit.metrics import psnr
from specfit.models.evaluate import EVAL_CHUNK, Forward, predict
from specfit.signals.sampling import Sampling
from specfit.training.state import TrainingState
from specfit.util.interrupts import deferred_interrupts

SCHEDULES = ("none", "cosine", "exp")
COMPILE_MODES = ("auto", "on", "off")
LOSSES = ("mse", "l1", "bce", "bce_prob")
EVAL_LIMIT = 2**18  # periodic evaluation looks at a fixed random subset of larger signals
AUTO_COMPILE_MIN_STEPS = 300


@dataclass
class FitOptions:
    """Training settings.

    Attributes:
        steps: optimiser steps.
        lr: Adam learning rate; ``None`` uses the model's default.
        schedule: ``"none"``, ``"cosine"`` (to 0) or ``"exp"`` (to 0.1x at the last step).
        batch_size: random samples per step; ``None`` trains on all training samples every step.
        eval_every: evaluate PSNR every this many steps (and at the last step).
        compile: ``"auto"``, ``"on"`` or ``"off"``.
        seed: seed for mini-batch sampling.
        checkpoint_every: hand the training state to ``on_checkpoint`` every this many steps
            (0: only when interrupted and at the end).
    """

    steps: int = 2000
    lr: float | None = None
    schedule: str = "none"
    batch_size: int | None = None
    eval_every: int = 100
    compile: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500

    def check(self) -> None:
        if self.steps < 1:
            raise SpecfitError(f"--steps must be at least 1, got {self.steps}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpecfitError(f"--lr must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise SpecfitError(f"--schedule must be one of {', '.join(SCHEDULES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise SpecfitError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.eval_every < 1:
            raise SpecfitError(f"--eval-every must be at least 1, got {self.eval_every}")
        if self.compile not in COMPILE_MODES:
            raise SpecfitError(f"--compile must be one of {', '.join(COMPILE_MODES)}")
        if self.checkpoint_every < 0:
            raise SpecfitError(f"--checkpoint-every must be 0 or more, got {self.checkpoint_every}")




@dataclass
class FitResult:
    """What training produced; ``model`` holds the best parameters."""

    model: nn.Module
    history: list[dict]
    steps: int
    best_step: int
    train_seconds: float
    step_seconds: float
    interrupted: bool
    compiled: bool
    notes: list[str] = field(default_factory=list)
    state: TrainingState | None = None


def spatial_gradient_magnitude(
    model: nn.Module, coords: torch.Tensor, shape: tuple[int, int], scale: torch.Tensor,
    to_unit: Callable[[torch.Tensor], torch.Tensor], chunk: int = EVAL_CHUNK,
) -> torch.Tensor:
    """Magnitude of the model's gradient with respect to its coordinates, per sample, as ``(H, W)``.

    ``scale`` ``(d,)`` converts a derivative per coordinate unit to one per pixel (for ``"signed"``
    coordinates, ``2 / (N - 1)``). Channels are differentiated separately (outputs mapped by
    ``to_unit``) and their magnitudes averaged.
    """
    pieces = []
    for i in range(0, coords.shape[0], chunk):
        x = coords[i : i + chunk].detach().clone().requires_grad_(True)
        out = to_unit(model(x))
        norms = []
        for channel in range(out.shape[1]):
            (grad,) = torch.autograd.grad(out[:, channel].sum(), x, retain_graph=channel + 1 < out.shape[1])
            norms.append((grad * scale).norm(dim=1))
        pieces.append(torch.stack(norms).mean(0).detach())
    return torch.cat(pieces).reshape(shape)


def _lr_lambda(schedule: str, steps: int) -> Callable[[int], float]:
    if schedule == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, steps) / steps))
    if schedule == "exp":
        return lambda t: 0.1 ** (min(t, steps) / steps)
    return lambda t: 1.0


def adam_optimizer(model: nn.Module, lr: float, betas: tuple[float, float], eps: float) -> torch.optim.Adam:
    params = list(model.parameters())
    fused = all(p.is_floating_point() for p in params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=fused or None)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


def _loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return F.mse_loss
    if name == "l1":
        return F.l1_loss
    if name == "bce":
        return F.binary_cross_entropy_with_logits
    if name == "bce_prob":
        return F.binary_cross_entropy
    raise SpecfitError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def _evaluation_samples(
    sampling: Sampling, seed: int, limit: int = EVAL_LIMIT
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Indices evaluated periodically, and which of them are training / held-out samples.

    Every sample when there are at most ``limit``; otherwise a fixed seeded subset, so
    evaluation of a long clip or a large volume stays a small part of training.
    """
    n = sampling.coords.shape[0]
    device = sampling.coords.device
    if n <= limit:
        indices = torch.arange(n, device=device)
    else:
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(n, generator=generator)[:limit].sort().values.to(device)
    is_train = torch.zeros(n, dtype=torch.bool, device=device)
    is_train[sampling.train] = True
    train = is_train[indices]
    test = None
    if sampling.test is not None:
        is_test = torch.zeros(n, dtype=torch.bool, device=device)
        is_test[sampling.test] = True
        test = is_test[indices]
    return indices, train, test


def _psnr_score(
    to_unit: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    def score(prediction: torch.Tensor, target: torch.Tensor) -> float:
        return psnr(to_unit(prediction), to_unit(target))

    return score


class TrainStep:
    """One forward and backward pass, compiled or eager by the compile policy.

    ``compile="on"`` compiles, ``"auto"`` compiles runs of at least :data:`AUTO_COMPILE_MIN_STEPS`
    steps, ``"off"`` never; models that do not support it (``compile_ok=False``) train eagerly
    with a note. If compilation fails, the step falls back to eager mode for good, with a note.
    The loss is ``data_loss(model(x), y)`` (``forward.apply(model, x)`` for a measured signal) plus
    ``model.regularization()`` when the model has it.
    """

    def __init__(self, model: nn.Module, data_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 options: FitOptions, compile_ok: bool, forward: Forward | None = None) -> None:
        regularization = getattr(model, "regularization", None)  # e.g. TUNER's L1 penalties

        def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            value = data_loss(model(x) if forward is None else forward.apply(model, x), y)
            return value if regularization is None else value + regularization()

        self.notes: list[str] = []
        long_run = options.steps >= AUTO_COMPILE_MIN_STEPS
        want = options.compile == "on" or (options.compile == "auto" and long_run)
        self.compiled = bool(compile_ok and want)
        if options.compile == "on" and not compile_ok:
            self.notes.append("this model does not support torch.compile; trained eagerly")
        self.eager = loss_of
        self.loss = torch.compile(loss_of) if self.compiled else loss_of

    def __call__(self, x: torch.Tensor, y: torch.Tensor, optimiser: torch.optim.Optimizer) -> torch.Tensor:
        """The loss of ``(x, y)`` with its gradients accumulated; returns the loss."""
        try:
            value = self.loss(x, y)
            value.backward()
            return value
        except (KeyboardInterrupt, SpecfitError):
            raise
        except Exception as exc:
            if self.loss is self.eager:
                raise
            self.notes.append(f"torch.compile failed ({type(exc).__name__}); trained eagerly")
            self.compiled, self.loss = False, self.eager
            optimiser.zero_grad(set_to_none=True)
            value = self.loss(x, y)
            value.backward()
            return value


class BestState:
    """The parameters at the best score offered so far (a copy), and the step they are from."""

    def __init__(self) -> None:
        self.score, self.step, self.state = -math.inf, 0, None

    def offer(self, model: nn.Module, score: float, step: int) -> None:
        if score > self.score:
            self.score, self.step = score, step
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


class Evaluator:
    """Scores a model on all, training and held-out samples (a fixed subset of large signals,
    see :func:`_evaluation_samples`) and keeps the history of records."""

    def __init__(self, model: nn.Module, targets: torch.Tensor, sampling: Sampling, seed: int,
                 score: Callable[[torch.Tensor, torch.Tensor], float], score_name: str,
                 forward: Forward | None = None) -> None:
        limit = EVAL_LIMIT if forward is None else forward.eval_limit
        indices, self.train, self.test = _evaluation_samples(sampling, seed, limit)
        self.coords, self.targets = sampling.coords[indices], targets[indices]
        self.model, self.score, self.name, self.forward = model, score, score_name, forward
        self.history: list[dict] = []

    def __call__(self, step: int, loss: float) -> dict:
        """Evaluate now; returns the record ``{step, loss, NAME, NAME_train, NAME_test}``."""
        pred, name, targets = predict(self.model, self.coords, forward=self.forward), self.name, self.targets
        record = {
            "step": step,
            "loss": loss,
            name: self.score(pred, targets),
            f"{name}_train": self.score(pred[self.train], targets[self.train]),
            f"{name}_test": None if self.test is None else self.score(pred[self.test], targets[self.test]),
        }
        self.history.append(record)
        return record


def fit_model(
    model: nn.Module,
    targets: torch.Tensor,
    sampling: Sampling,
    options: FitOptions,
    lr: float,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
    compile_ok: bool = True,
    adam_betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    on_eval: Callable[[dict], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    loss: str = "mse",
    score: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    score_name: str = "psnr",
    forward: Forward | None = None,
    resume: TrainingState | None = None,
    on_checkpoint: Callable[[TrainingState], None] | None = None,
) -> FitResult:
    """Train ``model`` to map ``sampling.coords[train]`` to ``targets[train]``.

    A model may define ``regularization() -> scalar tensor`` (added to the loss every step) and
    ``project()`` (called after every optimiser step to enforce constraints).

    Args:
        model: network on the target device.
        targets: ``(N, C)`` values of all samples in the model's value range, on the same device.
        sampling: coordinates and split (``coords`` on the same device).
        options: training settings; ``options.lr`` overrides ``lr``.
        lr: the model's default learning rate.
        to_unit: maps model-range values to [0, 1] for PSNR.
        compile_ok: whether the model supports ``torch.compile``.
        on_eval: called with each history record ``{step, loss, psnr, psnr_train, psnr_test}``
            (``score_name`` replaces ``psnr`` in the keys).
        on_step: called with the step number after every step.
        loss: ``"mse"``, ``"l1"``, ``"bce"`` (binary cross-entropy on logits, targets in {0, 1}) or
            ``"bce_prob"`` (the same on probabilities, for models with a sigmoid output).
        score: ``score(prediction, target) -> float``, higher is better, on raw model outputs;
            default: PSNR after ``to_unit``. The best model is the one with the best training score.
        score_name: the score's name in history records.
        forward: for a signal seen only through measurements: ``coords`` are measurement
            coordinates, ``targets`` the measurements, and the model is trained through
            ``forward.apply`` (see :class:`Forward`).
        resume: a state saved by an earlier call with the same arguments: training continues from
            its step and ends with the weights an uninterrupted run would have (bit for bit on
            the CPU), also when ``options.steps`` is larger than the earlier run's.
        on_checkpoint: receives the training state every ``options.checkpoint_every`` steps and
            when training is interrupted; the final state is in the result's ``state``.

    Signals with more than :data:`EVAL_LIMIT` samples are evaluated on a fixed random subset of
    that many samples.
    """
    options.check()
    coords_train, targets_train = sampling.coords[sampling.train], targets[sampling.train]
    n_train = coords_train.shape[0]
    full_batch = options.batch_size is None or options.batch_size >= n_train
    generator = torch.Generator(device=coords_train.device).manual_seed(options.seed)
    optimiser = adam_optimizer(model, options.lr or lr, adam_betas, adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(options.schedule, options.steps))
    step = TrainStep(model, _loss_function(loss), options, compile_ok, forward)
    evaluator = Evaluator(model, targets, sampling, options.seed, score or _psnr_score(to_unit), score_name,
                          forward)
    best = BestState()
    project = getattr(model, "project", None)  # models with constraints enforce them after each step
    interrupted, completed, last_loss, step_time, earlier = False, 0, math.nan, 0.0, 0.0
    updating = False
    if resume is not None:
        completed, step_time, earlier = resume.step, resume.step_seconds, resume.seconds
        _restore(resume, model, optimiser, scheduler, generator, best, evaluator)
    started = time.perf_counter()
    generator_state = generator.get_state() if not full_batch else None

    def state_now(training_goes_on: bool = True) -> TrainingState:
        """The training state after step ``completed``, safe to keep: copies, except Adam's state
        once training is over (nothing changes it then)."""
        adam = optimiser.state_dict()
        return TrainingState(
            step=completed, model={k: v.detach().clone() for k, v in model.state_dict().items()},
            optimiser=copy.deepcopy(adam) if training_goes_on else adam, scheduler=scheduler.state_dict(),
            generator=generator_state, best_score=best.score, best_step=best.step,
            best=None if best.state is None else dict(best.state), history=list(evaluator.history),
            seconds=earlier + time.perf_counter() - started, step_seconds=step_time,
        )

    def evaluate(at: int) -> None:
        record = evaluator(at, last_loss)
        best.offer(model, record[f"{score_name}_train"], at)
        if on_eval is not None:
            on_eval(record)

    try:
        for number in range(completed + 1, options.steps + 1):
            tick = time.perf_counter()
            if full_batch:
                x, y = coords_train, targets_train
            else:
                pool = forward.pool(number) if forward is not None and forward.pool is not None else None
                size = n_train if pool is None else len(pool)
                idx = torch.randint(0, size, (options.batch_size,), generator=generator,
                                    device=coords_train.device)
                if pool is not None:
                    idx = pool.to(idx.device)[idx]
                x, y = coords_train[idx], targets_train[idx]
            value = step(x, y, optimiser)
            updating = True  # an interrupt from here to the step's end leaves a half-applied step
            optimiser.step()
            if project is not None:
                project()
            optimiser.zero_grad(set_to_none=True)
            scheduler.step()
            completed = number
            if not full_batch:
                generator_state = generator.get_state()
            updating = False
            step_time += time.perf_counter() - tick
            if on_step is not None:
                on_step(number)
            if number % options.eval_every == 0 or number == options.steps:
                last_loss = float(value.detach())
                evaluate(number)
            every = options.checkpoint_every
            if on_checkpoint is not None and every and number % every == 0 and number < options.steps:
                on_checkpoint(state_now())
    except KeyboardInterrupt:
        interrupted = True
        step.notes.append(f"interrupted after step {completed}; keeping the best model so far")
    if best.state is None:
        evaluate(completed)
    final = None if updating else state_now(training_goes_on=False)  # none inside a half-applied step
    if updating:
        step.notes.append("interrupted inside an optimiser step: no checkpoint of this point (the last "
                          "periodic one stays)")
    if on_checkpoint is not None and interrupted and final is not None:
        with deferred_interrupts():
            on_checkpoint(final)
    best.restore(model)
    return FitResult(
        model=model,
        history=evaluator.history,
        steps=completed,
        best_step=best.step,
        train_seconds=earlier + time.perf_counter() - started,
        step_seconds=step_time,
        interrupted=interrupted,
        compiled=step.compiled,
        notes=step.notes,
        state=final,
    )


def _restore(
    state: TrainingState, model: nn.Module, optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator, best: BestState,
    evaluator: Evaluator,
) -> None:
    """Put training back where ``state`` left it (see :class:`~specfit.training.state.TrainingState`)."""
    try:
        model.load_state_dict(state.model, strict=True)
        optimiser.load_state_dict(state.optimiser)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise SpecfitError(f"the checkpoint does not match this model ({' '.join(str(exc).split())[:200]})") \
            from None
    scheduler.load_state_dict(state.scheduler)
    if state.generator is not None:
        generator.set_state(state.generator)
    best.score, best.step = state.best_score, state.best_step
    best.state = None if state.best is None else dict(state.best)
    evaluator.history = list(state.history)
