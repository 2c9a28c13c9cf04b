"""Video: a (t, y, x) grid fitted from random mini-batches; PSNR per frame; the reconstruction as MP4."""

from __future__ import annotations

import torch
from torch import nn

from specfit.figures import View, figure_uri, show_error, show_image, subplots
from specfit.models.params import ParamValue, declared
from specfit.signals.base import Signal
from specfit.signals.video import frame_psnr, write_video
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.grid import GridTask

BATCH_SIZE = 2**16  # samples per step when the clip has more


def frames_figure(target: torch.Tensor, recon: torch.Tensor) -> str:
    """First, middle and last frame: target, reconstruction and |error|."""
    count = target.shape[1]
    picks = sorted({0, count // 2, count - 1})
    figure, axes = subplots(3, len(picks), squeeze=False, figsize=(4.2 * len(picks), 8))
    for column, k in enumerate(picks):
        show_image(axes[0, column], target[:, k], f"frame {k}: target")
        show_image(axes[1, column], recon[:, k], "reconstruction")
        show_error(figure, axes[2, column], (recon[:, k] - target[:, k]).abs().mean(dim=0).numpy())
    figure.tight_layout()
    return figure_uri(figure)


def frame_psnr_figure(psnrs: list[float]) -> str:
    """PSNR of every frame."""
    figure, axis = subplots(figsize=(7, 3.5))
    axis.plot(range(len(psnrs)), psnrs, "o-" if len(psnrs) < 40 else "-", ms=3)
    axis.set_xlabel("frame")
    axis.set_ylabel("PSNR (dB)")
    axis.grid(alpha=0.3)
    return figure_uri(figure)


class VideoTask(GridTask):
    """A clip ``(C, T, H, W)``: coordinates ``(t, y, x)``, each in [-1, 1].

    ``spectrum="frames"`` (the published protocol) compares mean per-frame 2-D spectra in FreSh,
    ``"3d"`` the clip's 3-D spectrum.
    """

    def __init__(self, signal: Signal, spectrum: str = "frames") -> None:
        super().__init__(signal)
        self.per_frame = spectrum == "frames"
        self.frequency_label = ("frequency (cycles per frame, |k_y| + |k_x|)" if self.per_frame
                                else "frequency (cycles per clip, |k_t| + |k_y| + |k_x|)")
        samples = signal.values[0].numel()
        self.default_batch_size = BATCH_SIZE if samples > BATCH_SIZE else None

    def size_text(self) -> str:
        frames, height, width = self.signal.spatial_shape
        return f"{frames} frames of {width} x {height}"

    def model_params(self, params: object) -> dict[str, ParamValue]:
        return declared(params).frame_params(self.signal.spatial_shape[0])

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        signal = self.signal
        psnrs = frame_psnr(recon, signal.values)
        outcome.metrics["psnr_frames"] = psnrs
        outcome.metrics["psnr_frames_min"] = min(psnrs)
        outcome.summary += f", worst frame {min(psnrs):.2f} dB"
        fps = float(signal.meta.get("fps", 25.0))
        outcome.files["reconstruction.mp4"] = lambda path: write_video(path, recon, fps)
        outcome.views.append(View(
            "Frames", frames_figure(signal.values, recon),
            "<b>How to read:</b> columns are the first, middle and last frame; rows the target, the "
            "reconstruction and the absolute error (mean over channels, each map scaled to its own maximum, "
            "given by its colour bar). Good: dark error maps without edges, and the same quality in every "
            "column."))
        outcome.views.append(View(
            "PSNR per frame", frame_psnr_figure(psnrs),
            "<b>How to read:</b> x: frame index; y: PSNR of that frame in dB (higher is better). Good: a "
            "flat line; dips mark frames with fast motion or cuts the network fits worse."))
