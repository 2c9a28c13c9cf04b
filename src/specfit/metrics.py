"""Quality metrics. Images are ``(C, H, W)`` with values in [0, 1]; shapes are scored
with IoU of occupancy labels and Chamfer distance between surface point sets."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from skimage.metrics import structural_similarity

SSIM_MIN_SIDE = 11  # the Gaussian window (sigma 1.5, truncated at 3.5 sigma) is 11 wide


def psnr(prediction: torch.Tensor, target: torch.Tensor, peak: float = 1.0) -> float:
    """PSNR in dB of ``prediction`` against ``target`` (same shape, values in [0, peak])."""
    mse = float(torch.mean((prediction.double() - target.double()) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def snr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Signal-to-noise ratio in dB of a waveform: ``10 log10(sum(target^2) / sum(error^2))``, in
    the signal's own units (audio: the waveform in [-1, 1], not values rescaled to [0, 1])."""
    error = float(torch.sum((prediction.double() - target.double()) ** 2))
    power = float(torch.sum(target.double() ** 2))
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(power / error) if power > 0 else -math.inf


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> float | None:
    """SSIM with scikit-image's Gaussian window (sigma 1.5, data range 1), averaged over channels.

    Returns ``None`` for images smaller than 11 pixels a side, where the window does not fit.
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


def sobel_gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of ``(C, H, W)`` values, per pixel, averaged over channels: ``(H, W)``.

    The kernels are normalised (``[1, 2, 1] x [1, 0, -1] / 8``) so that each component estimates the
    derivative in intensity per pixel; borders are replicated.
    """
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64) / 4.0
    diff = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64) / 2.0
    kernel_y = torch.outer(diff, smooth).flip(0, 1)
    kernel_x = kernel_y.T
    padded = torch.nn.functional.pad(image.double().unsqueeze(1), (1, 1, 1, 1), mode="replicate")
    gy = torch.nn.functional.conv2d(padded, kernel_y.view(1, 1, 3, 3))
    gx = torch.nn.functional.conv2d(padded, kernel_x.view(1, 1, 3, 3))
    return torch.sqrt(gx**2 + gy**2).squeeze(1).mean(0)


def gradient_psnr(network_gradient: torch.Tensor, image: torch.Tensor) -> float:
    """PSNR between a network's gradient magnitude and the Sobel gradient magnitude of ``image``.

    Args:
        network_gradient: ``(H, W)`` magnitude of the network's spatial gradient (autograd), in
            intensity per pixel, averaged over channels.
        image: ``(C, H, W)`` target in [0, 1].

    The peak is the largest Sobel magnitude of the image ("gradient PSNR", after the TUNER paper).
    """
    reference = sobel_gradient_magnitude(image)
    peak = float(reference.max())
    if peak == 0.0:
        return math.inf
    return psnr(network_gradient.double() / peak, reference / peak)


def _bool_array(value: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.dtype != np.bool_:
        raise ValueError(f"iou needs boolean {name}, got {array.dtype} (threshold it first)")
    return array


def iou(predicted: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Intersection over union ``|P & T| / |P | T|`` of two boolean arrays of the same shape.

    When both are empty (no point occupied in either) the union is empty and the two agree
    perfectly: the result is 1.0.
    """
    p = _bool_array(predicted, "predictions")
    t = _bool_array(target, "targets")
    if p.shape != t.shape:
        raise ValueError(f"iou needs arrays of the same shape, got {p.shape} and {t.shape}")
    union = int(np.count_nonzero(p | t))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & t)) / union


def _points(value: torch.Tensor | np.ndarray) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    array = array.astype(np.float64, copy=False)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"chamfer_distance needs (N, 3) point sets, got shape {array.shape}")
    return array


def chamfer_distance(points_a: torch.Tensor | np.ndarray, points_b: torch.Tensor | np.ndarray) -> float:
    """Symmetric Chamfer distance between ``(N, 3)`` and ``(M, 3)`` point sets.

    ``(mean_a min_b |a - b| + mean_b min_a |a - b|) / 2`` with plain (not squared) Euclidean
    distances, so it is in the points' units: two copies of a set shifted by a small ``d`` are at
    distance ``d``. Infinite when exactly one set is empty, 0 when both are.
    """
    a, b = _points(points_a), _points(points_b)
    if len(a) == 0 or len(b) == 0:
        return 0.0 if len(a) == len(b) else math.inf
    a_to_b, _ = cKDTree(b).query(a, k=1)
    b_to_a, _ = cKDTree(a).query(b, k=1)
    return float((np.mean(a_to_b) + np.mean(b_to_a)) / 2.0)
