"""Draw a saved model at any resolution, streaming its output so memory stays bounded.

:func:`render_run` is ``specfit render``. It checks the run folder and its config
(:mod:`specfit.runs.schema`), works out the output's size and file name, refuses up front a render
of more than :data:`RENDER_LIMIT` values, and only then builds the model and evaluates it block by
block (:func:`grid_blocks`, :data:`RENDER_CHUNK` samples at a time), handing the blocks to a
streaming writer: audio is appended to the WAV file, video is encoded frame by frame, volumes fill a
memory-mapped array. Images are drawn in chunks of rows into one array of pixels, and shapes
gather their marching-cubes grid, both within the limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from specfit.errors import SpecfitError
from specfit.kinds.kind import SignalKind
from specfit.models.evaluate import RENDER_CHUNK, grid_blocks, grid_values, unit_from_model
from specfit.models.memory import human_bytes
from specfit.signals.audio import AUDIO_SUFFIXES, check_wav, write_audio_blocks
from specfit.signals.base import Signal
from specfit.signals.image import image_to_array, write_pixels
from specfit.signals.sampling import grid_coordinates
from specfit.signals.shape import WRITE_SUFFIXES as MESH_SUFFIXES
from specfit.signals.video import DEFAULT_FPS, write_video_frames
from specfit.signals.video import WRITE_SUFFIXES as VIDEO_SUFFIXES
from specfit.signals.volume import VOLUME_SUFFIXES, voxel_dtype, write_volume_blocks
from specfit.tasks.nerf import TURNTABLE_FPS, TURNTABLE_FRAMES, turntable_frames
from specfit.tasks.shape import render_shape
from specfit.util.files import staged_file

# The most values (samples x channels) one render writes: 2**31, about 2.1e9, e.g. a 250-frame
# 1920 x 1080 RGB video (1.6e9), a 1290^3 volume or 6.7 hours of 44.1 kHz stereo audio.
RENDER_LIMIT = 2**31
# The largest --size per side: audio samples, image or video width and height, volume sides and
# the marching-cubes grid of shapes (whose default is DEFAULT_RESOLUTION).
MAX_SAMPLES = 10**9
MAX_SIDE = 32768
MAX_VOLUME_SIDE = 2048
MAX_RESOLUTION = 2048
DEFAULT_RESOLUTION = 256


def _row_coordinates(rows: torch.Tensor, width: int, height: int, convention: str) -> torch.Tensor:
    ys = grid_coordinates((height,), convention)[rows, 0]
    xs = grid_coordinates((width,), convention)[:, 0]
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def render_image(
    model: nn.Module,
    height: int,
    width: int,
    value_range: str,
    convention: str = "signed",
    bit_depth: int = 8,
    chunk: int = RENDER_CHUNK,
) -> np.ndarray:
    """Evaluate an image model on a ``height x width`` grid; returns ``(H, W, C)`` uint8/uint16 pixels.

    Coordinates follow ``convention`` at the new resolution, so the image spans the same domain.
    Peak memory is about ``chunk x width_of_network`` floats plus the output array.
    """
    device = next(model.parameters()).device
    rows_per_chunk = max(1, chunk // width)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, height, rows_per_chunk):
            rows = torch.arange(start, min(start + rows_per_chunk, height))
            coords = _row_coordinates(rows, width, height, convention).to(device)
            values = unit_from_model(model(coords).float(), value_range)
            block = values.T.reshape(-1, len(rows), width).cpu()
            pixels = image_to_array(block, bit_depth)
            if out is None:
                out = np.empty((height, width, pixels.shape[2]), dtype=pixels.dtype)
            out[start : start + len(rows)] = pixels
    assert out is not None
    return out


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_run` wrote: the file and a one-line description, e.g. ``"40 x 24"``."""

    path: Path
    description: str


@dataclass(frozen=True)
class RenderJob:
    """A render planned and checked (by a kind's ``plan_*`` function): its output file, and the
    call that draws the model into it and returns the description."""

    out: Path
    write: Callable[[nn.Module], str]


def _parse_size(text: str, axes: int, example: str, limit: int) -> tuple[int, ...]:
    """``"WxH"`` (or ``"N"``, ``"DxHxW"``) to ``axes`` integers from 1 to ``limit``."""
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        values = ()
    if len(values) != axes:
        raise SpecfitError(f"malformed --size {text!r}: use {example}")
    if min(values) < 1 or max(values) > limit:
        raise SpecfitError(f"--size {text} is out of range (1 to {limit} a side)")
    return values


def _out_path(out: Path | None, default: Path, suffixes: tuple[str, ...]) -> Path:
    """``out`` (else ``default``), refused unless it ends in one of ``suffixes``; whether the
    path may be written is checked by the caller (:func:`specfit.runs.render.render_run`)."""
    path = default if out is None else Path(out)
    if not path.name.lower().endswith(suffixes):
        raise SpecfitError(f"--out must be a {' or '.join(suffixes)} file, got {path}")
    return path


def _check_limit(what: str, values: int, value_bytes: int) -> None:
    """Refuse a render of more than :data:`RENDER_LIMIT` values (``value_bytes`` each as written)."""
    if values > RENDER_LIMIT:
        raise SpecfitError(
            f"{what} is {values:.1e} values ({human_bytes(values * value_bytes)} uncompressed), more than "
            f"the render limit of {RENDER_LIMIT} (2^31) values; choose a smaller --size")


def plan_image(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    signal = config["signal"]
    height, width = signal["shape"][1:]
    if size:
        width, height = _parse_size(size, 2, "WIDTHxHEIGHT, e.g. 1024x768", MAX_SIDE)
    path = _out_path(out, run_dir / f"render-{width}x{height}.png", (".png",))
    bit_depth = 16 if signal["bit_depth"] == 16 else 8
    _check_limit(f"a {width} x {height} {signal['mode']} image", height * width * config["out_features"],
                 bit_depth // 8)

    def write(model: nn.Module) -> str:
        convention = config.get("coordinates", "signed")
        pixels = render_image(model, height, width, config["value_range"], convention, bit_depth)
        with staged_file(path) as temp:
            write_pixels(temp, pixels)
        return f"{width} x {height}"

    return RenderJob(path, write)


def plan_audio(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    """Audio at ``size`` samples keeps the clip's duration: the sample rate scales with it."""
    signal = config["signal"]
    channels, length = signal["shape"]
    samples = _parse_size(size, 1, "a number of samples, e.g. 88200", MAX_SAMPLES)[0] if size else length
    path = _out_path(out, run_dir / f"render-{samples}.wav", AUDIO_SUFFIXES)
    bit_depth = 32 if signal["bit_depth"] == 32 else 16
    _check_limit(f"{samples} samples of {channels}-channel audio", samples * channels, bit_depth // 8)
    rate = round(signal["meta"]["sample_rate"] * samples / length)
    check_wav(samples, channels, rate, bit_depth)

    def write(model: nn.Module) -> str:
        blocks = (unit_from_model(block, config["value_range"]) for block in grid_blocks(model, (samples,)))
        write_audio_blocks(path, blocks, samples, channels, rate, bit_depth,
                           value_offset=signal["value_offset"], value_scale=signal["value_scale"])
        return f"{samples} samples at {rate} Hz"

    return RenderJob(path, write)


def _frames(model: nn.Module, grid: tuple[int, int, int], value_range: str) -> Iterator[torch.Tensor]:
    """The ``(C, H, W)`` frames in [0, 1] of a video model on the ``(T, H, W)`` grid, one at a time."""
    _, height, width = grid
    for start in range(0, math.prod(grid), height * width):
        values = grid_values(model, grid, start, start + height * width)
        yield unit_from_model(values, value_range).T.reshape(-1, height, width)


def plan_video(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    signal = config["signal"]
    frames, height, width = signal["shape"][1:]
    if size:
        width, height = _parse_size(size, 2, "WIDTHxHEIGHT, e.g. 640x272", MAX_SIDE)
    path = _out_path(out, run_dir / f"render-{width}x{height}.mp4", VIDEO_SUFFIXES)
    _check_limit(f"a {width} x {height} x {frames}-frame video", frames * height * width * 3, 1)
    fps = float(signal.get("meta", {}).get("fps", DEFAULT_FPS))

    def write(model: nn.Module) -> str:
        write_video_frames(path, _frames(model, (frames, height, width), config["value_range"]), fps)
        return f"{frames} frames of {width} x {height}"

    return RenderJob(path, write)


def plan_volume(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    signal = config["signal"]
    channels = signal["shape"][0]
    grid = tuple(signal["shape"][1:])
    if size:
        grid = _parse_size(size, 3, "DxHxW, e.g. 128x128x128", MAX_VOLUME_SIDE)
    text = " x ".join(map(str, grid))
    path = _out_path(out, run_dir / f"render-{'x'.join(map(str, grid))}.npy", (".npy", *VOLUME_SUFFIXES))
    source = Signal.from_description(signal, torch.empty(0))
    components = f" of {channels} channels" if channels > 1 else ""
    _check_limit(f"a {text} volume{components}", math.prod(grid) * channels,
                 voxel_dtype(path, source).itemsize)

    def write(model: nn.Module) -> str:
        blocks = (unit_from_model(block, config["value_range"]) for block in grid_blocks(model, grid))
        write_volume_blocks(path, blocks, grid, channels, source)
        return text

    return RenderJob(path, write)


def plan_shape(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    resolution = DEFAULT_RESOLUTION
    if size:
        (resolution,) = _parse_size(size, 1, "a grid resolution, e.g. 256", MAX_RESOLUTION)
    path = _out_path(out, run_dir / f"render-{resolution}.ply", MESH_SUFFIXES)
    _check_limit(f"a {resolution}^3 marching-cubes grid", resolution**3, 4)

    def write(model: nn.Module) -> str:
        faces = render_shape(model, config, resolution, path)
        return f"{faces} triangles, marching cubes on a {resolution}^3 grid"

    return RenderJob(path, write)


def plan_nerf(config: dict, size: str | None, out: Path | None, run_dir: Path) -> RenderJob:
    """A NeRF run renders a turntable video of novel views around the scene."""
    height, width = config["signal"]["shape"][2:]
    if size:
        width, height = _parse_size(size, 2, "WIDTHxHEIGHT, e.g. 200x200", MAX_SIDE)
    path = _out_path(out, run_dir / f"render-{width}x{height}.mp4", VIDEO_SUFFIXES)
    values = TURNTABLE_FRAMES * height * width * 3
    _check_limit(f"a {width} x {height} x {TURNTABLE_FRAMES}-frame turntable", values, 1)

    def write(model: nn.Module) -> str:
        frames = turntable_frames(model, config["value_range"], config, (height, width), TURNTABLE_FRAMES,
                                  run_dir)
        write_video_frames(path, frames, TURNTABLE_FPS)
        return f"a {TURNTABLE_FRAMES}-frame turntable of {width} x {height}"

    return RenderJob(path, write)


def scaled_size(size: str | None, kind: SignalKind, signal: Mapping) -> str | None:
    """``size`` with a factor such as ``"2x"`` or ``"0.5x"`` turned into the kind's explicit size
    (:attr:`~specfit.kinds.kind.SignalKind.scale_size`: the signal's own size times the factor,
    rounded, at least 1; shapes scale the default marching-cubes resolution); any other ``size`` is
    returned as given."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)x", (size or "").strip().lower())
    if match is None:
        return size
    factor = float(match.group(1))
    if not 0.0 < factor <= 1000.0:
        raise SpecfitError(f"--size factor must be above 0 and at most 1000, got {size}")
    return kind.scale_size(signal, lambda n: max(1, round(n * factor)))


def scale_picture(signal: Mapping, times: Callable[[int], int]) -> str:
    """Images, CT, video frames, NeRF views: ``WIDTHxHEIGHT`` from the last two axes."""
    height, width = signal["shape"][-2:]
    return f"{times(width)}x{times(height)}"


def scale_samples(signal: Mapping, times: Callable[[int], int]) -> str:
    """Audio: a number of samples."""
    return str(times(signal["shape"][1]))


def scale_grid(signal: Mapping, times: Callable[[int], int]) -> str:
    """Volumes: ``DxHxW``."""
    return "x".join(str(times(n)) for n in signal["shape"][1:])


def scale_resolution(signal: Mapping, times: Callable[[int], int]) -> str:
    """Shapes: the marching-cubes resolution, from :data:`DEFAULT_RESOLUTION`."""
    return str(times(DEFAULT_RESOLUTION))
