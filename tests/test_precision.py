"""bfloat16 training of the hidden layers (``precision="bfloat16"``)."""

from __future__ import annotations

import torch

from specfit import build_model
from specfit.signals.sampling import make_sampling
from specfit.training.loop import FitOptions, fit_model


def _unit(values: torch.Tensor) -> torch.Tensor:
    return (values + 1) / 2


def _problem(n: int = 16) -> tuple:
    sampling = make_sampling((n, n), "holdout", 0.2, seed=0)
    y, x = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    return sampling, (0.6 * torch.sin(3 * x) * torch.cos(2 * y)).reshape(-1, 1)


def _fit(model: str, precision: str, **params: object) -> object:
    sampling, targets = _problem()
    torch.manual_seed(0)
    net = build_model(model, 2, 1, width=32, hidden_layers=2, **params)
    return fit_model(net, targets, sampling, FitOptions(steps=150, eval_every=50, compile="off",
                                                        precision=precision), 1e-3, _unit)


def test_only_the_hidden_layers_run_in_bfloat16_under_autocast() -> None:
    model = build_model("siren", 2, 1, width=16, hidden_layers=1)
    dtypes: dict[str, torch.dtype] = {}

    def record(name: str):
        def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            dtypes[name] = output.dtype
        return hook

    for name, layer in (("first", model.first), ("hidden", model.hidden[0]), ("last", model.last)):
        layer.register_forward_hook(record(name))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(8, 2))
    assert dtypes == {"first": torch.float32, "hidden": torch.bfloat16, "last": torch.float32}
    assert out.dtype == torch.float32


def test_bfloat16_training_learns_as_float32_does_and_changes_the_weights() -> None:
    full, reduced = _fit("siren", "float32", omega_0=10.0), _fit("siren", "bfloat16", omega_0=10.0)
    assert abs(full.history[-1]["psnr_train"] - reduced.history[-1]["psnr_train"]) < 1.5
    assert reduced.history[-1]["psnr_train"] > reduced.history[0]["psnr_train"] + 3
    weights = zip(full.model.state_dict().values(), reduced.model.state_dict().values(), strict=True)
    assert not all(torch.equal(a, b) for a, b in weights)  # it did run in another precision
    assert not reduced.notes


def test_a_model_without_float32_guards_trains_in_float32_with_a_note() -> None:
    result = _fit("ff-gaussian", "bfloat16")
    assert any("bfloat16" in note for note in result.notes)
    same = _fit("ff-gaussian", "float32")
    for a, b in zip(result.model.state_dict().values(), same.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
