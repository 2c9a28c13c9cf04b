"""Audio: a 1-D grid of samples per channel; the reconstruction as WAV, waveform and spectrogram views."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specfit.metrics import snr
from specfit.report import figure_uri, subplots
from specfit.signals.audio import write_audio
from specfit.tasks.base import Outcome, TrainingData
from specfit.tasks.grid import GridTask

# FreSh grid for audio: from the knob's smallest default value up to its largest times the clip's
# samples per IMAGE_SIDE (the models' grids are made for images of about 512 px a side; a clip has
# hundreds of thousands of samples on its one axis), at least AUDIO_GRID_SPAN times, log-spaced.
# SIREN's own audio setting is omega_0 = 3000 on [-100, 100], about 43 000 per second of audio on
# [-1, 1] (Sitzmann et al. 2020).
AUDIO_GRID_SPAN = 100.0
AUDIO_GRID_SIZE = 20
IMAGE_SIDE = 512


def audio_grid(grid: tuple[float, ...], integer: bool, samples: int) -> list[float]:
    """The default grid widened for a clip of ``samples`` samples: ``min(grid)`` to
    ``max(grid) * max(AUDIO_GRID_SPAN, samples / IMAGE_SIDE)``, log-spaced."""
    low = min(v for v in grid if v > 0)
    high = max(grid) * max(AUDIO_GRID_SPAN, samples / IMAGE_SIDE)
    values = np.geomspace(low, high, AUDIO_GRID_SIZE)
    if integer:
        return sorted({round(float(v)) for v in values})
    return [float(f"{v:.3g}") for v in values]


def waveform_figure(target: torch.Tensor, recon: torch.Tensor, sample_rate: int) -> str:
    """Whole waveform and a 20 ms excerpt from the middle: target, reconstruction, error (channel 0)."""
    t, r = target[0].numpy() * 2 - 1, recon[0].numpy() * 2 - 1
    seconds = np.arange(t.size) / sample_rate
    figure, axes = subplots(2, 1, figsize=(11, 5.5))
    axes[0].plot(seconds, t, lw=0.4, label="target")
    axes[0].plot(seconds, r - t, lw=0.4, label="error", color="C3")
    excerpt = slice(max(0, t.size // 2 - sample_rate // 100), t.size // 2 + sample_rate // 100)
    axes[1].plot(seconds[excerpt], t[excerpt], lw=1.2, label="target")
    axes[1].plot(seconds[excerpt], r[excerpt], lw=1.0, ls="--", label="reconstruction")
    for axis, title in zip(axes, ("whole signal", "20 ms from the middle"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("time (s)")
        axis.legend(loc="upper right")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_uri(figure)


def spectrogram_figure(target: torch.Tensor, recon: torch.Tensor, sample_rate: int) -> str:
    """Log-power spectrograms of target and reconstruction (channel 0) on one colour scale."""
    figure, axes = subplots(1, 2, sharey=True, figsize=(12, 4))
    nfft = 1024 if target.shape[1] >= 4096 else max(16, 2 ** int(np.log2(max(target.shape[1] // 4, 16))))
    for axis, values, title in ((axes[0], target, "target"), (axes[1], recon, "reconstruction")):
        with np.errstate(divide="ignore"):  # silent stretches have zero power
            axis.specgram(values[0].numpy() * 2 - 1, NFFT=nfft, Fs=sample_rate, noverlap=nfft // 2,
                          cmap="magma", vmin=-160, vmax=-20)
        axis.set_title(title)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    return figure_uri(figure)


class AudioTask(GridTask):
    """Audio ``(C, T)``: coordinate ``t`` in [-1, 1] over the clip; values are the waveform."""

    def default_grid(self, knob_grid: tuple[float, ...], integer: bool) -> list[float] | None:
        return audio_grid(knob_grid, integer, self.sample_count)

    def outputs(
        self, outcome: Outcome, model: nn.Module, value_range: str, data: TrainingData,
        recon: torch.Tensor, device: torch.device,
    ) -> None:
        signal = self.signal
        rate = int(signal.meta["sample_rate"])
        wave = recon * signal.value_scale + signal.value_offset
        truth = signal.values * signal.value_scale + signal.value_offset
        flat_w, flat_t = wave.reshape(signal.channels, -1), truth.reshape(signal.channels, -1)
        train = data.sampling.train.cpu()
        test = data.sampling.test.cpu() if data.sampling.test is not None else None
        outcome.metrics["snr"] = snr(wave, truth)
        outcome.metrics["snr_train"] = snr(flat_w[:, train], flat_t[:, train])
        outcome.metrics["snr_test"] = None if test is None else snr(flat_w[:, test], flat_t[:, test])
        outcome.summary += f"; SNR {outcome.metrics['snr']:.2f} dB on the waveform"
        bit_depth = 32 if signal.bit_depth == 32 else 16
        outcome.files["reconstruction.wav"] = lambda path: write_audio(
            path, recon, rate, bit_depth, value_offset=signal.value_offset, value_scale=signal.value_scale)
        outcome.views.append(("Waveform", waveform_figure(signal.values, recon, rate)))
        outcome.views.append(("Spectrogram", spectrogram_figure(signal.values, recon, rate)))
