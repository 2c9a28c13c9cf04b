"""The training loop, written once: a :class:`Trainer`, its :class:`Callbacks` and its strategies.

The :class:`Trainer` runs Adam (with an optional learning-rate schedule) on full batches or random
mini-batches, evaluates periodically, keeps each network's best parameters by its training score
and restores them at the end, stops cleanly when interrupted (Ctrl-C, or ``KeyboardInterrupt``
raised by a callback), and hands out checkpoints (:class:`~specfit.training.state.TrainingState`,
one per network) from which :meth:`Trainer.fit` continues bit for bit on the CPU. What it trains
is a :class:`Strategy`: :class:`SingleModel` (one network of any family, on its samples or through
measurements) or :class:`~specfit.training.stacked.StackedModels` (many networks of one family as
one stacked computation). :func:`fit_model` trains one model in one call.

Targets and predictions are ``(N, C)`` in the model's value range (``(B, N, C)`` for ``B`` stacked
networks with a signal each); ``to_unit`` maps them to [0, 1] for PSNR.

Speed: on request (``compile="auto"`` decides by the amount of work) the loss is compiled with
``torch.compile``; Adam uses its fused kernel where available. If compilation fails (no C++
compiler, unsupported operation) the loop falls back to eager mode and records a note.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from specfit.errors import SpecfitError
from specfit.metrics import psnr
from specfit.models.evaluate import EVAL_CHUNK, Forward, predict
from specfit.models.params import check_fields, param
from specfit.signals.sampling import Sampling
from specfit.training.state import TrainingState
from specfit.util.interrupts import deferred_interrupts

SCHEDULES = ("none", "cosine", "exp")
COMPILE_MODES = ("auto", "on", "off")
LOSSES = ("mse", "l1", "bce", "bce_prob")
PRECISIONS = ("float32", "bfloat16")
EVAL_LIMIT = 2**18  # periodic evaluation looks at a fixed random subset of larger signals
AUTO_COMPILE_MIN_STEPS = 300
TARGET_CHECK_EVERY = 5  # steps between looks at the training PSNR when a target is set (see Trainer)

Losses = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Score = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass
class FitOptions:
    """Training settings; each field's help says what it does (``specfit fit --help`` shows them)."""

    steps: int = param(2000, "optimiser steps", minimum=1, fit_default=1000)
    lr: float | None = param(None, "learning rate (default: the model's)")
    schedule: str = param(
        "none", "learning-rate schedule: none, cosine (to 0) or exp (to 0.1x at the last step)",
        choices=SCHEDULES)
    batch_size: int | None = param(
        None, "random samples per step (default: all, or the signal type's batch)", minimum=1, metavar="N")
    eval_every: int = param(
        100, "evaluate every N steps (and at the last step)", minimum=1, metavar="N", fit_default=25)
    compile: str = param("auto", "torch.compile (auto: for runs of 300 steps or more without a target PSNR, "
                         "where compiling pays for itself)", choices=COMPILE_MODES)
    seed: int = param(0, "seed of mini-batch sampling (a fit sets it to its seed)", option=False)
    checkpoint_every: int = param(
        500, "save the training state every N steps, and when interrupted (0: only then)", minimum=0,
        metavar="N")
    precision: str = param(
        "float32", "precision of the hidden layers' products in training: float32, or bfloat16 (faster on "
        "CPUs with AMX and on recent GPUs; first and output layers, optimiser and evaluation stay float32; "
        "sine and wavelet families only)", choices=PRECISIONS, written_when_set=True)
    target_psnr: float | None = param(
        None, "stop once the PSNR on the training samples reaches DB (or the steps run out)", minimum=0.0,
        metavar="DB", written_when_set=True)

    def check(self) -> None:
        check_fields(self)
        if self.lr is not None and not self.lr > 0:
            raise SpecfitError(f"lr must be a positive number, got {self.lr}", setting="lr")


@dataclass
class FitResult:
    """What training produced for one network; ``model`` holds its best parameters.

    ``train_seconds`` and ``step_seconds`` (time inside optimiser steps) are this network's share
    when several were trained together; ``state`` is its final training state (``None`` when an
    interrupt cut an optimiser step short).
    """

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
    target: TargetReached | None = None


@dataclass(frozen=True)
class TargetReached:
    """When training reached ``options.target_psnr``: the step and the training wall time then."""

    psnr: float
    step: int
    seconds: float

    def to_json(self) -> dict:
        return {"psnr": self.psnr, "step": self.step, "seconds": self.seconds}


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


def psnr_score(to_unit: Callable[[torch.Tensor], torch.Tensor]) -> Score:
    """``score(prediction, target)``: PSNR in dB after mapping both to [0, 1] by ``to_unit``."""

    def score(prediction: torch.Tensor, target: torch.Tensor) -> float:
        return psnr(to_unit(prediction), to_unit(target))

    return score


def unit_scale(to_unit: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """The slope of ``to_unit`` (an affine map from model values to [0, 1])."""
    ends = to_unit(torch.tensor([0.0, 1.0]))
    return float(ends[1] - ends[0])


def mse_psnr(losses: torch.Tensor, scale: float) -> torch.Tensor:
    """PSNR in dB (peak 1) of mean squared errors ``losses`` of model values that ``to_unit`` maps
    to [0, 1] with slope ``scale``."""
    return -10.0 * torch.log10(losses.double() * scale**2)


def _autocast(losses: Losses, device_type: str) -> Losses:
    """``losses`` computed under bfloat16 autocast (the model keeps float32 where it must)."""

    def reduced(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return losses(x, y)

    return reduced


class TrainStep:
    """One forward and backward pass, compiled or eager by the compile policy.

    ``compile="on"`` compiles, ``"auto"`` compiles runs of at least :data:`AUTO_COMPILE_MIN_STEPS`
    steps, ``"off"`` never; strategies that do not support it (``compile_ok=False``) train eagerly
    with a note. If compilation fails, the step falls back to eager mode for good, with a note.
    ``losses(x, y)`` is a strategy's: one loss per network (a scalar for one network); each
    network's gradients are those of its own loss.
    """

    def __init__(self, losses: Losses, options: FitOptions, compile_ok: bool, autocast_ok: bool = False,
                 device_type: str = "cpu") -> None:
        self.notes: list[str] = []
        long_run = options.steps >= AUTO_COMPILE_MIN_STEPS and options.target_psnr is None
        want = options.compile == "on" or (options.compile == "auto" and long_run)
        self.compiled = bool(compile_ok and want)
        if options.compile == "on" and not compile_ok:
            self.notes.append("this model does not support torch.compile; trained eagerly")
        if options.precision == "bfloat16":
            if autocast_ok:
                losses = _autocast(losses, device_type)
            else:
                self.notes.append("this model does not support bfloat16 training; trained in float32")
        self.eager = losses
        self.loss = torch.compile(losses) if self.compiled else losses

    def _backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = self.loss(x, y)
        value.backward(torch.ones_like(value))
        return value

    def __call__(self, x: torch.Tensor, y: torch.Tensor, optimiser: torch.optim.Optimizer) -> torch.Tensor:
        """The losses of ``(x, y)`` with their gradients accumulated; returns the losses."""
        try:
            return self._backward(x, y)
        except (KeyboardInterrupt, SpecfitError):
            raise
        except Exception as exc:
            if self.loss is self.eager:
                raise
            self.notes.append(f"torch.compile failed ({type(exc).__name__}); trained eagerly")
            self.compiled, self.loss = False, self.eager
            optimiser.zero_grad(set_to_none=True)
            return self._backward(x, y)


class BestState:
    """One network's parameters at the best score offered so far (a copy), and their step."""

    def __init__(self) -> None:
        self.score, self.step = -math.inf, 0
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, parameters: Mapping[str, torch.Tensor], score: float, step: int) -> None:
        """Keep a copy of ``parameters`` (name -> tensor) if ``score`` beats the best so far."""
        if score > self.score:
            self.score, self.step = score, step
            self.state = {k: v.detach().clone() for k, v in parameters.items()}


class Evaluator:
    """Scores networks on all, training and held-out samples (a fixed subset of large signals, see
    :func:`_evaluation_samples`): ``coords`` are where the networks are evaluated, ``targets``
    their values there, ``(n, C)`` shared by all networks or ``(B, n, C)``, one signal each."""

    def __init__(self, targets: torch.Tensor, sampling: Sampling, seed: int, score: Score, score_name: str,
                 limit: int = EVAL_LIMIT) -> None:
        indices, self.train, self.test = _evaluation_samples(sampling, seed, limit)
        self.coords, self.targets = sampling.coords[indices], targets[..., indices, :]
        self.score, self.name = score, score_name

    def __call__(self, step: int, losses: torch.Tensor, predictions: Sequence[torch.Tensor]) -> list[dict]:
        """One record ``{step, loss, NAME, NAME_train, NAME_test}`` per network, from its ``(n, C)``
        prediction at :attr:`coords` and its training loss ``losses[b]``."""
        records = []
        for index, prediction in enumerate(predictions):
            targets = self.targets if self.targets.dim() == 2 else self.targets[index]
            records.append({
                "step": step,
                "loss": float(losses[index]),
                self.name: self.score(prediction, targets),
                f"{self.name}_train": self.score(prediction[self.train], targets[self.train]),
                f"{self.name}_test": None if self.test is None else self.score(prediction[self.test],
                                                                                targets[self.test]),
            })
        return records


class Strategy(Protocol):
    """What a :class:`Trainer` trains and how: :class:`SingleModel`, or
    :class:`~specfit.training.stacked.StackedModels`.

    Attributes:
        module: holds every trained parameter (Adam trains ``module.parameters()``).
        count: how many networks it trains (``B``).
        targets: ``(N, C)`` values of all samples, or ``(B, N, C)``, one signal per network.
        sampling: coordinates ``(N, d)`` and split, shared by all networks.
        score, score_name: ``score(prediction, target) -> float`` (higher is better) on raw
            outputs, and its name in history records; the best parameters are those with the best
            training score.
        forward: for a signal seen through measurements (see :class:`Forward`), else ``None``.
        compile_ok: whether :meth:`losses` may be compiled.
        autocast_ok: whether :meth:`losses` may run under bfloat16 autocast (``precision``).
    """

    module: nn.Module
    count: int
    targets: torch.Tensor
    sampling: Sampling
    score: Score
    score_name: str
    forward: Forward | None
    compile_ok: bool
    autocast_ok: bool

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each network's loss on coordinates ``x`` ``(n, d)`` and targets ``y`` (``(n, C)`` or
        ``(B, n, C)``): a scalar for one network, ``(B,)`` for ``B``."""
        ...

    def after_step(self) -> None:
        """Called after every optimiser step (e.g. to enforce a model's constraints)."""
        ...

    def loss_psnr(self, losses: torch.Tensor) -> torch.Tensor | None:
        """Each network's training PSNR ``(B,)`` as the step's ``losses`` ``(B,)`` estimate it, or
        ``None`` when they do not (another loss, a regularizer, measurements)."""
        ...

    def predict(self, coords: torch.Tensor) -> Sequence[torch.Tensor]:
        """Each network's ``(n, C)`` output at ``coords`` ``(n, d)``, without gradients."""
        ...

    def parameters(self, index: int) -> dict[str, torch.Tensor]:
        """Network ``index``'s parameters now (name -> tensor, as its own ``state_dict``)."""
        ...

    def network_states(self, adam: dict, copy_adam: bool) -> list[tuple[dict[str, torch.Tensor], dict]]:
        """Each network's parameters (copies) and its share of Adam's ``state_dict`` ``adam`` (a copy
        when ``copy_adam``), as one network trained alone would hold them."""
        ...

    def joined_states(self, states: Sequence[TrainingState]) -> tuple[dict[str, torch.Tensor], dict]:
        """The ``state_dict`` of :attr:`module` and of Adam made of the networks' ``states``."""
        ...

    def finish(self, best: Sequence[dict[str, torch.Tensor] | None]) -> list[nn.Module]:
        """The trained networks, each with its ``best`` parameters (its current ones if ``None``)."""
        ...


class SingleModel:
    """One network of any family: the :class:`Strategy` of :func:`fit_model` (see its arguments).

    The loss is ``loss(model(x), y)`` (``forward.apply(model, x)`` for a measured signal) plus
    ``model.regularization()`` when the model has it; ``model.project()``, when it exists, runs
    after every optimiser step to enforce constraints.
    """

    count = 1

    def __init__(self, model: nn.Module, targets: torch.Tensor, sampling: Sampling,
                 to_unit: Callable[[torch.Tensor], torch.Tensor], loss: str = "mse",
                 score: Score | None = None, score_name: str = "psnr", forward: Forward | None = None,
                 compile_ok: bool = True) -> None:
        self.module, self.targets, self.sampling, self.forward = model, targets, sampling, forward
        self.score, self.score_name = score or psnr_score(to_unit), score_name
        self.compile_ok = compile_ok
        self.autocast_ok = bool(getattr(model, "autocast_safe", False))
        self.project = getattr(model, "project", None)
        data_loss = _loss_function(loss)
        regularization = getattr(model, "regularization", None)  # e.g. TUNER's L1 penalties
        plain = loss == "mse" and score is None and forward is None and regularization is None
        self.unit_scale = unit_scale(to_unit) if plain else None

        def losses(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            value = data_loss(model(x) if forward is None else forward.apply(model, x), y)
            return value if regularization is None else value + regularization()

        self.losses = losses

    def after_step(self) -> None:
        if self.project is not None:
            self.project()

    def loss_psnr(self, losses: torch.Tensor) -> torch.Tensor | None:
        return None if self.unit_scale is None else mse_psnr(losses, self.unit_scale)

    def predict(self, coords: torch.Tensor) -> list[torch.Tensor]:
        return [predict(self.module, coords, forward=self.forward)]

    def parameters(self, index: int) -> dict[str, torch.Tensor]:
        return dict(self.module.state_dict())

    def network_states(self, adam: dict, copy_adam: bool) -> list[tuple[dict[str, torch.Tensor], dict]]:
        model = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        return [(model, copy.deepcopy(adam) if copy_adam else adam)]

    def joined_states(self, states: Sequence[TrainingState]) -> tuple[dict[str, torch.Tensor], dict]:
        return states[0].model, states[0].optimiser

    def finish(self, best: Sequence[dict[str, torch.Tensor] | None]) -> list[nn.Module]:
        if best[0] is not None:
            self.module.load_state_dict(best[0])
        return [self.module]


@dataclass
class Callbacks:
    """What a :class:`Trainer` reports while it trains; each hook is optional. A hook that raises
    ``KeyboardInterrupt`` stops training as Ctrl-C does (the best parameters so far are kept).

    Attributes:
        on_step: called with the step number after every optimiser step.
        on_eval: called with a network's index and its history record at each evaluation.
        on_checkpoint: receives the training state of every network (a list, in network order)
            every ``options.checkpoint_every`` steps and when training is interrupted.
    """

    on_step: Callable[[int], None] | None = None
    on_eval: Callable[[int, dict], None] | None = None
    on_checkpoint: Callable[[list[TrainingState]], None] | None = None


class Trainer:
    """Trains a :class:`Strategy`'s networks by ``options`` (once: build one Trainer per run).

    Every network gets the same schedule, mini-batches (drawn from ``options.seed``) and
    evaluation steps (every ``options.eval_every`` steps and the last), and ends with its own best
    parameters by training score (evaluated at the last completed step if no evaluation happened).
    ``lr`` is the model's default learning rate (``options.lr`` overrides it); ``adam_betas`` and
    ``adam_eps`` are Adam's.
    """

    def __init__(self, strategy: Strategy, options: FitOptions, lr: float,
                 adam_betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8,
                 callbacks: Callbacks | None = None) -> None:
        options.check()
        self.strategy, self.options, self.callbacks = strategy, options, callbacks or Callbacks()
        sampling = strategy.sampling
        self.coords_train = sampling.coords[sampling.train]
        self.targets_train = strategy.targets[..., sampling.train, :]
        n_train = self.coords_train.shape[0]
        self.full_batch = options.batch_size is None or options.batch_size >= n_train
        self.generator = torch.Generator(device=self.coords_train.device).manual_seed(options.seed)
        self.optimiser = adam_optimizer(strategy.module, options.lr or lr, adam_betas, adam_eps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimiser,
                                                           _lr_lambda(options.schedule, options.steps))
        self.train_step = TrainStep(strategy.losses, options, strategy.compile_ok, strategy.autocast_ok,
                                    self.coords_train.device.type)
        limit = EVAL_LIMIT if strategy.forward is None else strategy.forward.eval_limit
        self.evaluator = Evaluator(strategy.targets, sampling, options.seed, strategy.score,
                                   strategy.score_name, limit)
        self.best = [BestState() for _ in range(strategy.count)]
        self.histories: list[list[dict]] = [[] for _ in range(strategy.count)]
        self.completed, self.step_seconds, self.earlier_seconds, self.updating = 0, 0.0, 0.0, False
        self.last_losses = torch.full((strategy.count,), math.nan)
        self.generator_state: torch.Tensor | None = None
        self.reached: TargetReached | None = None
        self.next_target_check = 0
        if options.target_psnr is not None and strategy.score_name != "psnr":
            raise SpecfitError(f"target_psnr needs a PSNR score; this signal is scored by "
                               f"{strategy.score_name}", setting="target_psnr")
        self.started = time.perf_counter()

    def fit(self, resume: Sequence[TrainingState] | None = None) -> list[FitResult]:
        """Train to ``options.steps``; one :class:`FitResult` per network, in order.

        ``resume``: the states of an earlier run with the same strategy and options (from a
        checkpoint): training continues from their step and ends with the weights an
        uninterrupted run would have (bit for bit on the CPU), also when ``options.steps`` is
        larger than the earlier run's.
        """
        options, callbacks, strategy = self.options, self.callbacks, self.strategy
        notes = self.train_step.notes
        if resume is not None:
            self._restore(resume)
        self.started = time.perf_counter()
        self.generator_state = None if self.full_batch else self.generator.get_state()
        interrupted, self.updating = False, False
        try:
            for number in range(self.completed + 1, options.steps + 1):
                value = self._step(number)
                if callbacks.on_step is not None:
                    callbacks.on_step(number)
                evaluated = number % options.eval_every == 0 or number == options.steps
                if evaluated:
                    self.last_losses = value.detach().reshape(-1)
                    self._evaluate(number)
                if options.target_psnr is not None and self._target_reached(number, value, evaluated):
                    break
                every, on_checkpoint = options.checkpoint_every, callbacks.on_checkpoint
                if on_checkpoint is not None and every and number % every == 0 and number < options.steps:
                    on_checkpoint(self._states())
        except KeyboardInterrupt:
            interrupted = True
            notes.append(f"interrupted after step {self.completed}; keeping the best model so far")
        if any(best.state is None for best in self.best):
            self._evaluate(self.completed)
        final = None if self.updating else self._states(training_goes_on=False)  # none inside a half step
        if self.updating:
            notes.append("interrupted inside an optimiser step: no checkpoint of this point (the last "
                         "periodic one stays)")
        if callbacks.on_checkpoint is not None and interrupted and final is not None:
            with deferred_interrupts():
                callbacks.on_checkpoint(final)
        models = strategy.finish([best.state for best in self.best])
        count, seconds, compiled = strategy.count, self._seconds(), self.train_step.compiled
        return [
            FitResult(model=model, history=self.histories[index], steps=self.completed,
                      best_step=self.best[index].step, train_seconds=seconds / count,
                      step_seconds=self.step_seconds / count, interrupted=interrupted, compiled=compiled,
                      notes=list(notes), state=None if final is None else final[index], target=self.reached)
            for index, model in enumerate(models)
        ]

    def _target_reached(self, number: int, losses: torch.Tensor, evaluated: bool) -> bool:
        """Whether every network's training PSNR has reached ``options.target_psnr`` after step
        ``number`` (then :attr:`reached` records it). Between evaluations the step's ``losses`` say
        when to look (:meth:`Strategy.loss_psnr`), or, when they cannot, every
        :data:`TARGET_CHECK_EVERY` steps; a look is an evaluation, recorded in the history."""
        target = self.options.target_psnr
        if not evaluated:
            if number < self.next_target_check:
                return False
            estimate = self.strategy.loss_psnr(losses.detach().reshape(-1))
            if estimate is not None and not bool((estimate >= target).all()):
                return False
            self.last_losses = losses.detach().reshape(-1)
            self._evaluate(number)
        key = f"{self.strategy.score_name}_train"
        if all(history[-1][key] >= target for history in self.histories):
            self.reached = TargetReached(psnr=target, step=number, seconds=self._seconds())
            return True
        self.next_target_check = number + TARGET_CHECK_EVERY
        return False

    def _step(self, number: int) -> torch.Tensor:
        """Optimiser step ``number``; returns the losses it was taken on. ``updating`` is true while
        an interrupt would leave the step half applied."""
        tick = time.perf_counter()
        x, y = self._batch(number)
        value = self.train_step(x, y, self.optimiser)
        self.updating = True
        self.optimiser.step()
        self.strategy.after_step()
        self.optimiser.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.completed = number
        if not self.full_batch:
            self.generator_state = self.generator.get_state()
        self.updating = False
        self.step_seconds += time.perf_counter() - tick
        return value

    def _seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def _batch(self, number: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step ``number``'s coordinates ``(n, d)`` and targets (``(n, C)`` or ``(B, n, C)``)."""
        if self.full_batch:
            return self.coords_train, self.targets_train
        forward = self.strategy.forward
        pool = forward.pool(number) if forward is not None and forward.pool is not None else None
        size = self.coords_train.shape[0] if pool is None else len(pool)
        idx = torch.randint(0, size, (self.options.batch_size,), generator=self.generator,
                            device=self.coords_train.device)
        if pool is not None:
            idx = pool.to(idx.device)[idx]
        return self.coords_train[idx], self.targets_train[..., idx, :]

    def _evaluate(self, at: int) -> None:
        """Score every network now, record it and offer its parameters as the best."""
        strategy, on_eval = self.strategy, self.callbacks.on_eval
        records = self.evaluator(at, self.last_losses, strategy.predict(self.evaluator.coords))
        for index, record in enumerate(records):
            self.histories[index].append(record)
            self.best[index].offer(strategy.parameters(index), record[f"{strategy.score_name}_train"], at)
            if on_eval is not None:
                on_eval(index, record)

    def _states(self, training_goes_on: bool = True) -> list[TrainingState]:
        """Each network's training state after step ``completed``, safe to keep: copies, except
        Adam's state once training is over (nothing changes it then)."""
        count, seconds = self.strategy.count, self._seconds()
        parts = self.strategy.network_states(self.optimiser.state_dict(), copy_adam=training_goes_on)
        return [
            TrainingState(
                step=self.completed, model=model, optimiser=adam, scheduler=self.scheduler.state_dict(),
                generator=self.generator_state, best_score=best.score, best_step=best.step,
                best=None if best.state is None else dict(best.state), history=list(history),
                seconds=seconds / count, step_seconds=self.step_seconds / count,
            )
            for (model, adam), best, history in zip(parts, self.best, self.histories, strict=True)
        ]

    def _restore(self, states: Sequence[TrainingState]) -> None:
        """Put training back where ``states`` (one per network) left it."""
        count = self.strategy.count
        if len(states) != count:
            raise SpecfitError(f"the checkpoint holds {len(states)} networks; this training has {count}")
        if len({state.step for state in states}) != 1:
            raise SpecfitError("the checkpoints of networks trained together are from different steps")
        try:
            model, adam = self.strategy.joined_states(states)
            self.strategy.module.load_state_dict(model, strict=True)
            self.optimiser.load_state_dict(adam)
        except (RuntimeError, ValueError, KeyError) as exc:
            problem = " ".join(str(exc).split())[:200]
            raise SpecfitError(f"the checkpoint does not match this model ({problem})") from None
        first = states[0]
        self.scheduler.load_state_dict(first.scheduler)
        if first.generator is not None:
            self.generator.set_state(first.generator)
        for best, history, state in zip(self.best, self.histories, states, strict=True):
            best.score, best.step = state.best_score, state.best_step
            best.state = None if state.best is None else dict(state.best)
            history[:] = state.history
        self.completed = first.step
        self.step_seconds = sum(state.step_seconds for state in states)
        self.earlier_seconds = sum(state.seconds for state in states)


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
    score: Score | None = None,
    score_name: str = "psnr",
    forward: Forward | None = None,
    resume: TrainingState | None = None,
    on_checkpoint: Callable[[TrainingState], None] | None = None,
) -> FitResult:
    """Train ``model`` to map ``sampling.coords[train]`` to ``targets[train]``: a :class:`Trainer`
    with the :class:`SingleModel` strategy, in one call.

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
    strategy = SingleModel(model, targets, sampling, to_unit, loss, score, score_name, forward, compile_ok)
    callbacks = Callbacks(
        on_step=on_step,
        on_eval=None if on_eval is None else lambda _, record: on_eval(record),
        on_checkpoint=None if on_checkpoint is None else lambda states: on_checkpoint(states[0]),
    )
    trainer = Trainer(strategy, options, lr, adam_betas, adam_eps, callbacks)
    (result,) = trainer.fit(None if resume is None else [resume])
    return result
