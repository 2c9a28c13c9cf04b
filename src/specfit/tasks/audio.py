"""Audio: a 1-D grid of samples per channel; the reconstruction as WAV, waveform and spectrogram views."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from specfit.figures import View, audio_player, figure_uri, subplots, wav_data_uri
from specfit.metrics import psnr, snr
from specfit.models.evaluate import unit_from_model
from specfit.signals.audio import write_audio
from specfit.tasks.base import Outcome, TrainingData, cycles_per_bin
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


PLAYER_SECONDS = 10.0  # the report's players hold at most this much of the clip


def waveform_figure(target: np.ndarray, recon: np.ndarray, sample_rate: int) -> str:
    """Whole waveform and a 20 ms excerpt from the middle: target, reconstruction, error (channel 0
    of ``(C, T)`` waveforms in the file's units)."""
    t, r = target[0], recon[0]
    seconds = np.arange(t.size) / sample_rate
    figure, axes = subplots(2, 1, figsize=(11, 5.5))
    axes[0].plot(seconds, t, lw=0.4, label="target")
    axes[0].plot(seconds, r - t, lw=0.4, label="error (reconstruction - target)", color="C3")
    excerpt = slice(max(0, t.size // 2 - sample_rate // 100), t.size // 2 + sample_rate // 100)
    axes[1].plot(seconds[excerpt], t[excerpt], lw=1.2, label="target")
    axes[1].plot(seconds[excerpt], r[excerpt], lw=1.0, ls="--", label="reconstruction")
    for axis, title in zip(axes, ("whole signal", "20 ms from the middle"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("time (s)")
        axis.set_ylabel("amplitude")
        axis.legend(loc="upper right")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_uri(figure)


def spectrogram_figure(target: np.ndarray, recon: np.ndarray, sample_rate: int) -> str:
    """Log-power spectrograms of target and reconstruction (channel 0) on one colour scale."""
    figure, axes = subplots(1, 2, sharey=True, figsize=(12, 4))
    nfft = 1024 if target.shape[1] >= 4096 else max(16, 2 ** int(np.log2(max(target.shape[1] // 4, 16))))
    for axis, values, title in ((axes[0], target, "target"), (axes[1], recon, "reconstruction")):
        with np.errstate(divide="ignore"):  # silent stretches have zero power
            *_, image = axis.specgram(values[0], NFFT=nfft, Fs=sample_rate, noverlap=nfft // 2, cmap="magma",
                                      vmin=-160, vmax=-20)
        image.set_interpolation("nearest")  # one block per STFT cell: faithful, and small as PNG
        axis.set_title(title)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    figure.colorbar(image, ax=list(axes), fraction=0.03, pad=0.01, label="power (dB)")
    return figure_uri(figure, dpi=90)  # noise-like pictures make large PNGs


def _level(samples: np.ndarray) -> str:
    """RMS level in dB relative to full scale, for the players' table."""
    rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    return f"{20 * np.log10(rms):.1f} dBFS" if rms > 0 else "silent"


def players_view(target: np.ndarray, recon: np.ndarray, sample_rate: int,
                 max_seconds: float = PLAYER_SECONDS) -> View:
    """HTML5 players for the target, the reconstruction and the residual, ``(C, T)`` waveforms in
    the file's units, as 16-bit WAV data URIs of at most ``max_seconds`` (1 or 2 channels; more
    are mixed down to one)."""
    peak = max(1.0, float(np.abs(target).max(initial=0.0)))  # a peak-scaled float file is louder than 1
    length = target.shape[1]
    kept = min(length, max(1, int(max_seconds * sample_rate)))
    tracks = (("target", target), ("reconstruction", recon), ("residual (reconstruction - target)",
                                                              recon - target))
    rows = []
    for label, wave in tracks:
        wave = wave[:, :kept] / peak
        if wave.shape[0] > 2:
            wave = wave.mean(axis=0, keepdims=True)
        player = audio_player(wav_data_uri(wave, sample_rate), label)
        level = _level(wave)
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{player}</td><td class='note'>{level}</td></tr>")
    clip = length / sample_rate
    cut = (f"the first {kept / sample_rate:.3g} s of the {clip:.3g} s clip are embedded (the whole "
           "reconstruction is in reconstruction.wav)" if kept < length else f"the whole {clip:.3g} s clip")
    mixed = "; channels mixed down to one" if target.shape[0] > 2 else ""
    scaled = f"; scaled by 1/{peak:.3g} to fit 16 bits" if peak > 1 else ""
    guide = ("<b>How to read:</b> play the target, the network's reconstruction and the residual, all at "
             "the same level (the residual is not amplified; its RMS level is beside it). Good: the "
             "reconstruction sounds like the target and the residual is a faint hiss with no recognisable "
             f"music or speech. 16-bit WAV at {sample_rate} Hz, {html.escape(cut + mixed + scaled)}.")
    return View("Listen", None, guide, extra="<table class='players'>" + "".join(rows) + "</table>")


class AudioTask(GridTask):
    """Audio ``(C, T)``: coordinate ``t`` in [-1, 1] over the clip; values are the waveform.

    PSNR is the audio convention: on the waveform in its own units ([-1, 1] for PCM) with peak 1,
    ``10 log10(1 / MSE)``, about 6 dB below PSNR on the values mapped to [0, 1]; SNR is reported
    beside it.
    """

    def frequency_axis(self, band: dict | None) -> dict | None:
        """In Hz: bin ``k`` ends at ``k * scale`` Hz (``None`` without the band's edge)."""
        per_bin = cycles_per_bin(band)
        rate = self.signal.meta.get("sample_rate")
        if per_bin is None or not rate:
            return None
        return {"label": "frequency (Hz)", "scale": per_bin * float(rate) / self.signal.values.shape[-1],
                "unit": "Hz"}

    @property
    def psnr_peak(self) -> float:  # amplitude 1 of the waveform, in the normalised values' units
        return 1.0 / float(self.signal.value_scale)

    def score(self, value_range: str) -> Callable[[torch.Tensor, torch.Tensor], float]:
        peak = self.psnr_peak

        def waveform_psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
            return psnr(unit_from_model(prediction, value_range), unit_from_model(target, value_range), peak)

        return waveform_psnr

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
        outcome.summary = f"waveform {outcome.summary}; SNR {outcome.metrics['snr']:.2f} dB"
        bit_depth = 32 if signal.bit_depth == 32 else 16
        outcome.files["reconstruction.wav"] = lambda path: write_audio(
            path, recon, rate, bit_depth, value_offset=signal.value_offset, value_scale=signal.value_scale)
        wave_np, truth_np = flat_w.double().numpy(), flat_t.double().numpy()
        outcome.views.append(players_view(truth_np, wave_np, rate))
        outcome.views.append(View(
            "Waveform", waveform_figure(truth_np, wave_np, rate),
            "<b>How to read:</b> x: time in seconds; y: amplitude in the file's units (1 is full scale). "
            "Top: the whole target (blue) with the error (red) drawn over it; bottom: 20 ms from the "
            "middle, target against reconstruction (dashed). Good: the red error is a thin band far below "
            "the signal, and the dashed line lies on the blue one."))
        outcome.views.append(View(
            "Spectrogram", spectrogram_figure(truth_np, wave_np, rate),
            "<b>How to read:</b> x: time in seconds; y: frequency in Hz (up to half the sample rate); "
            "colour: power in dB on one scale for both. Good: the right panel shows the same harmonics "
            "and onsets as the left, up to the same height; a reconstruction that fades above some "
            "frequency has too low a frequency knob, broadband haze too high a one."))
