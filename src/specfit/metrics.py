"""Quality metrics (methods.md 5). Images are ``(C, H, W)`` with values in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

SSIM_MIN_SIDE = 7


def psnr(prediction: torch.Tensor, target: torch.Tensor, peak: float = 1.0) -> float:
    """PSNR in dB of ``prediction`` against ``target`` (same shape, values in [0, peak])."""
    mse = float(torch.mean((prediction.double() - target.double()) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> float | None:
    """SSIM with scikit-image's Gaussian window (sigma 1.5, data range 1), averaged over channels.

    Returns ``None`` for images smaller than 7 pixels a side, where the window does not fit.
    """
    if min(target.shape[-2:]) < SSIM_MIN_SIDE:
        return None
    a = prediction.detach().double().clamp(0, 1).cpu().numpy()
    b = target.detach().double().cpu().numpy()
    return float(
        structural_similarity(
            np.moveaxis(a, 0, -1),
            np.moveaxis(b, 0, -1),
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
