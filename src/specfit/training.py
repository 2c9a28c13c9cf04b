"""The training loop: Adam, optional schedule, full batch or random mini-batches, periodic evaluation.

Targets and predictions are ``(N, C)`` in the model's value range; ``to_unit`` maps them to [0, 1]
for PSNR. The loop keeps the best model by training-sample PSNR at evaluation points and restores
it at the end, also when interrupted with Ctrl-C (``KeyboardInterrupt``).

Speed: on request (``compile="auto"`` decides by the amount of work) the loss is compiled with
``torch.compile``; Adam uses its fused kernel where available. If compilation fails (no C++
compiler, unsupported operation) the loop falls back to eager mode and records a note.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from specfit.errors import SpecfitError
from specfit.metrics import psnr
from specfit.signals.sampling import Sampling

SCHEDULES = ("none", "cosine", "exp")
COMPILE_MODES = ("auto", "on", "off")
LOSSES = ("mse", "l1", "bce", "bce_prob")
EVAL_CHUNK = 4096
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
    """

    steps: int = 2000
    lr: float | None = None
    schedule: str = "none"
    batch_size: int | None = None
    eval_every: int = 100
    compile: str = "auto"
    seed: int = 0

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


def predict(model: nn.Module, coords: torch.Tensor, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """Model output for ``(N, d)`` coordinates as ``(N, C)``, evaluated in chunks without gradients."""
    with torch.inference_mode():
        return torch.cat([model(coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)])


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
    sampling: Sampling, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Indices evaluated periodically, and which of them are training / held-out samples.

    Every sample when there are at most :data:`EVAL_LIMIT`; otherwise a fixed seeded subset, so
    evaluation of a long clip or a large volume stays a small part of training.
    """
    n = sampling.coords.shape[0]
    device = sampling.coords.device
    if n <= EVAL_LIMIT:
        indices = torch.arange(n, device=device)
    else:
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(n, generator=generator)[:EVAL_LIMIT].sort().values.to(device)
    is_train = torch.zeros(n, dtype=torch.bool, device=device)
    is_train[sampling.train] = True
    train = is_train[indices]
    test = None
    if sampling.test is not None:
        is_test = torch.zeros(n, dtype=torch.bool, device=device)
        is_test[sampling.test] = True
        test = is_test[indices]
    return indices, train, test


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

    Signals with more than :data:`EVAL_LIMIT` samples are evaluated on a fixed random subset of
    that many samples.
    """
    options.check()
    notes: list[str] = []
    coords_train = sampling.coords[sampling.train]
    targets_train = targets[sampling.train]
    n_train = coords_train.shape[0]
    full_batch = options.batch_size is None or options.batch_size >= n_train
    generator = torch.Generator(device=coords_train.device).manual_seed(options.seed)
    optimiser = adam_optimizer(model, options.lr or lr, adam_betas, adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(options.schedule, options.steps))

    regularization = getattr(model, "regularization", None)  # e.g. TUNER's L1 penalties
    data_loss = _loss_function(loss)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = data_loss(model(x), y)
        return value if regularization is None else value + regularization()

    want_compile = options.compile == "on" or (
        options.compile == "auto" and options.steps >= AUTO_COMPILE_MIN_STEPS
    )
    compiled = bool(compile_ok and want_compile)
    if options.compile == "on" and not compile_ok:
        notes.append("this model does not support torch.compile; trained eagerly")
    step_loss = torch.compile(loss_of) if compiled else loss_of
    history: list[dict] = []
    best_score, best_step, best_state = -math.inf, 0, None
    if score is None:
        def score(prediction: torch.Tensor, target: torch.Tensor) -> float:
            return psnr(to_unit(prediction), to_unit(target))
    eval_indices, eval_train, eval_test = _evaluation_samples(sampling, options.seed)
    eval_coords, eval_targets = sampling.coords[eval_indices], targets[eval_indices]
    step_time = 0.0
    started = time.perf_counter()

    def evaluate(at: int, loss: float) -> None:
        nonlocal best_score, best_step, best_state
        pred = predict(model, eval_coords)
        record = {
            "step": at,
            "loss": loss,
            score_name: score(pred, eval_targets),
            f"{score_name}_train": score(pred[eval_train], eval_targets[eval_train]),
            f"{score_name}_test": None
            if eval_test is None
            else score(pred[eval_test], eval_targets[eval_test]),
        }
        history.append(record)
        if record[f"{score_name}_train"] > best_score:
            best_score, best_step = record[f"{score_name}_train"], at
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_eval is not None:
            on_eval(record)

    project = getattr(model, "project", None)  # models with constraints enforce them after each step
    interrupted = False
    completed = 0
    last_loss = math.nan
    try:
        for step in range(1, options.steps + 1):
            tick = time.perf_counter()
            if full_batch:
                x, y = coords_train, targets_train
            else:
                idx = torch.randint(
                    0, n_train, (options.batch_size,), generator=generator, device=coords_train.device
                )
                x, y = coords_train[idx], targets_train[idx]
            try:
                loss = step_loss(x, y)
                loss.backward()
            except (KeyboardInterrupt, SpecfitError):
                raise
            except Exception as exc:
                if step_loss is loss_of:
                    raise
                notes.append(f"torch.compile failed ({type(exc).__name__}); trained eagerly")
                compiled, step_loss = False, loss_of
                optimiser.zero_grad(set_to_none=True)
                loss = step_loss(x, y)
                loss.backward()
            optimiser.step()
            if project is not None:
                project()
            optimiser.zero_grad(set_to_none=True)
            scheduler.step()
            completed = step
            step_time += time.perf_counter() - tick
            if on_step is not None:
                on_step(step)
            if step % options.eval_every == 0 or step == options.steps:
                last_loss = float(loss.detach())
                evaluate(step, last_loss)
    except KeyboardInterrupt:
        interrupted = True
        notes.append(f"interrupted after step {completed}; keeping the best model so far")
    if best_state is None:
        evaluate(completed, last_loss)
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        model=model,
        history=history,
        steps=completed,
        best_step=best_step,
        train_seconds=time.perf_counter() - started,
        step_seconds=step_time,
        interrupted=interrupted,
        compiled=compiled,
        notes=notes,
    )
