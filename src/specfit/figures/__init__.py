"""Figures shared by tasks and the report: matplotlib helpers, report views, mesh renders."""

from __future__ import annotations

import base64
import html
import io
import json
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure


@dataclass(frozen=True)
class View:
    """One section of the report.

    Attributes:
        title: the section's heading.
        image: the figure as a data-URI PNG (``None``: the section is only ``extra``).
        guide: one line of HTML under the figure: what its axes are and what a good fit looks like.
        extra: trusted HTML placed after the figure (audio players, the 3-D viewer).
        script: whether ``extra`` holds a script (only such reports carry one).
        lead: trusted HTML placed above the figure, where the eye lands first: what the figure
            shows for this run in one or two sentences ("110 chosen; 120 tied ...").
    """

    title: str
    image: str | None
    guide: str
    extra: str = ""
    script: bool = False
    lead: str = ""


def subplots(*args: object, figsize: tuple[float, float], **kwargs: object) -> tuple[Figure, Any]:
    """``matplotlib.pyplot.subplots`` without pyplot: no global figure registry, no backend switch."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(*args, **kwargs)


def figure_uri(figure: Figure, dpi: int = 110) -> str:
    """``figure`` as a data-URI PNG for the self-contained report."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def show_error(figure: Figure, axis: Axes, error: np.ndarray, title: str = "|error|") -> None:
    """Draw a non-negative ``(H, W)`` error map (inferno, from 0 to its maximum) with a colour bar."""
    shown = axis.imshow(error, cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
    axis.set_title(title)
    axis.axis("off")
    figure.colorbar(shown, ax=axis, fraction=0.046)


def show_image(axis: Axes, image: torch.Tensor, title: str) -> None:
    """Draw a ``(C, H, W)`` image in [0, 1] (1 channel grey, 2 grey + alpha, 3-4 colour) without axes."""
    array = image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        axis.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=1)
    elif array.shape[2] == 2:
        axis.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=1, alpha=array[:, :, 1])
    else:
        axis.imshow(array)
    axis.set_title(title)
    axis.axis("off")


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """``(C, T)`` samples in [-1, 1] (clipped) as a 16-bit PCM WAV file."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    pcm = np.clip(np.round(np.nan_to_num(samples) * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(pcm.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return buffer.getvalue()


def wav_data_uri(samples: np.ndarray, sample_rate: int) -> str:
    """``(C, T)`` samples in [-1, 1] as a data-URI 16-bit WAV for an ``<audio>`` element."""
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(samples, sample_rate)).decode("ascii")


def audio_player(uri: str, label: str) -> str:
    """An HTML5 audio player for a data-URI sound."""
    return f"<audio controls preload='metadata' src='{uri}' aria-label='{html.escape(label)}'></audio>"


def json_script(element_id: str, data: object) -> str:
    """``data`` as an inert ``<script type='application/json'>`` block a page script can read."""
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f"<script type='application/json' id='{html.escape(element_id)}'>{text}</script>"


