"""Gradient PSNR (methods.md 3): Sobel magnitudes, network spatial gradients, and the metric in runs."""

from __future__ import annotations

import math

import torch
from torch import nn

from specfit.metrics import gradient_psnr, sobel_gradient_magnitude
from specfit.signals import make_sampling
from specfit.training.loop import spatial_gradient_magnitude


def _ramp(height: int, width: int, per_pixel: float) -> torch.Tensor:
    """A (1, H, W) image rising by ``per_pixel`` along x."""
    return (torch.arange(width, dtype=torch.float64) * per_pixel).expand(height, width).unsqueeze(0)


def test_sobel_magnitude_of_a_ramp_is_its_slope_per_pixel():
    """Inside the image, the normalised Sobel magnitude of a linear ramp equals its slope."""
    magnitude = sobel_gradient_magnitude(_ramp(12, 16, 0.01))
    assert torch.allclose(magnitude[1:-1, 1:-1], torch.full((10, 14), 0.01, dtype=torch.float64))
    assert float(sobel_gradient_magnitude(torch.full((3, 8, 8), 0.5)).abs().max()) == 0.0


def test_network_gradient_is_converted_to_per_pixel_units():
    """A linear model's autograd gradient, scaled by 2/(N-1), matches the Sobel slope of its image."""
    height, width = 12, 16
    sampling = make_sampling((height, width), "all")
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.3]]))  # d(value)/dx = 0.3 per coordinate unit
    scale = 2.0 / (torch.tensor([height, width], dtype=torch.float32) - 1)
    magnitude = spatial_gradient_magnitude(model, sampling.coords, (height, width), scale, lambda v: v)
    image = model(sampling.coords).detach().T.reshape(1, height, width)
    expected = sobel_gradient_magnitude(image)
    assert torch.allclose(magnitude[1:-1, 1:-1].double(), expected[1:-1, 1:-1], atol=1e-6)
    assert math.isclose(float(magnitude.mean()), 0.3 * 2 / 15, rel_tol=1e-5)


def test_gradient_psnr_rewards_the_right_gradient():
    """The exact gradient scores best, a gradient 1.5x too large next, a zero gradient worst."""
    image = _ramp(10, 10, 0.05) + 0.1 * torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(0))
    reference = sobel_gradient_magnitude(image)
    exact = gradient_psnr(reference, image)
    assert math.isinf(exact)
    assert gradient_psnr(1.5 * reference, image) > gradient_psnr(torch.zeros_like(reference), image)


def test_fit_reports_gradient_psnr(cli, images, tmp_path):
    """A fit's metrics.json carries a finite gradient PSNR for an image."""
    result = cli("fit", images["portrait_rgb"], "--set", "omega_0=30", "--set", "width=32", "--steps", 5,
                 "--compile", "off", "--json", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert math.isfinite(result.json()["psnr_grad"])
