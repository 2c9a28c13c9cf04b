"""Videos: read with PyAV into ``(3, T, H, W)`` RGB values in [0, 1], write back as H.264 mp4.

Axis order is channel, then time ``t``, row ``y``, column ``x``; on the signed coordinate grid frame
``k`` of ``T`` sits at ``t = -1 + 2 k / (T - 1)``. Only the first video stream is read; audio,
subtitles, alpha and rotation metadata are ignored. Frames are converted to 8-bit RGB by FFmpeg's
default (BT.601, limited range) conversion, the same one :func:`write_video` uses, so a written video
reads back with the same colours.

Size: frames x height x width of what will be kept is checked against ``max_samples`` from the
stream header before decoding, and again for every frame kept while decoding, since headers may
lack a frame count or misstate it.

PyAV is an optional dependency (``pip install 'specfit[video]'``): it is imported inside the
functions, and a missing PyAV is reported as a :class:`SpecfitError`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from specfit.errors import SpecfitError
from specfit.signals.base import Signal
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, check_size
from specfit.util.files import staged_file

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
# Containers that take an H.264 stream; the container is chosen from the suffix.
WRITE_SUFFIXES = (".mp4", ".mov", ".mkv")
MIN_SIDE = 4
DEFAULT_FPS = 25.0
MAX_FPS = 1e6  # a written frame rate, as a fraction of denominator <= 1001, fits FFmpeg's 32-bit rates
RESIZE_CHUNK = 16  # frames resized at once (bounds the float32 working memory)


def _import_av() -> ModuleType:
    try:
        import av
    except ImportError:
        raise SpecfitError("reading video needs PyAV: pip install 'specfit[video]'") from None
    return av


def _frame_rate(stream: object) -> tuple[float, bool]:
    """The stream's frame rate and whether it was known (else :data:`DEFAULT_FPS`)."""
    for attribute in ("average_rate", "guessed_rate", "base_rate"):
        rate = getattr(stream, attribute, None)
        if rate is not None and float(rate) > 0 and math.isfinite(float(rate)):
            return float(rate), True
    return DEFAULT_FPS, False


def _kept_frames(frames: int, max_frames: int | None, frame_step: int, start_frame: int = 0) -> int:
    """How many of a header's ``frames`` decoding will keep (1 when the header has no count)."""
    kept = max(1, math.ceil((frames - start_frame) / frame_step))
    return kept if max_frames is None else min(kept, max_frames)


def _decode(
    path: Path, max_frames: int | None, frame_step: int, limit: int, start_frame: int = 0
) -> tuple[list[np.ndarray], float, bool, bool]:
    """Decode kept frames as ``(H, W, 3)`` uint8 arrays, at most ``limit`` pixels over all frames,
    from frame ``start_frame`` of the file on.

    Returns (frames, stream fps, whether the fps was known, whether ``max_frames`` cut the video).
    """
    what = "frames x height x width"
    av = _import_av()
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise SpecfitError(f"{path} has no video stream")
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise SpecfitError(f"{path} is a still image ({container.format.name}), not a video")
            stream = container.streams.video[0]
            kept = _kept_frames(stream.frames, max_frames, frame_step, start_frame)
            check_size(path, what, (kept, stream.height, stream.width), limit)
            fps, known = _frame_rate(stream)
            size: tuple[int, int] | None = None
            limited = False
            for index, frame in enumerate(container.decode(stream)):
                if index < start_frame or (index - start_frame) % frame_step:
                    continue
                if max_frames is not None and len(frames) >= max_frames:
                    limited = True  # one frame beyond the limit exists: the video was cut
                    break
                if size is None:
                    size = (frame.width, frame.height)
                check_size(path, what, (len(frames) + 1, size[1], size[0]), limit)
                # A stream whose frame size changes mid-way is scaled to its first frame's size.
                rgb = frame.reformat(width=size[0], height=size[1], format="rgb24")
                frames.append(rgb.to_ndarray())
    except SpecfitError:
        raise
    except av.error.FFmpegError as exc:
        raise SpecfitError(f"{path} is not a readable video, the file may be truncated ({exc})") from exc
    except (OSError, EOFError, ValueError) as exc:
        raise SpecfitError(f"{path} could not be decoded ({exc})") from exc
    if not frames and start_frame:
        raise SpecfitError(f"start_frame {start_frame} is past the last frame of {path}")
    if not frames:
        raise SpecfitError(f"{path} has no decodable video frames")
    return frames, fps, known, limited


def _resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    factor = short_side / min(height, width)
    return max(MIN_SIDE, round(height * factor)), max(MIN_SIDE, round(width * factor))


def _to_values(frames: list[np.ndarray], size: tuple[int, int] | None) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` frames to ``(3, T, H', W')`` float32 in [0, 1], resized in chunks."""
    chunks = []
    for start in range(0, len(frames), RESIZE_CHUNK):
        batch = torch.from_numpy(np.stack(frames[start:start + RESIZE_CHUNK]))
        batch = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (t, 3, H, W)
        if size is not None:
            batch = torch.nn.functional.interpolate(
                batch, size=size, mode="bilinear", antialias=True, align_corners=False
            ).clamp_(0.0, 1.0)
        chunks.append(batch)
    return torch.cat(chunks).permute(1, 0, 2, 3).contiguous()


def load_video(
    path: Path,
    max_frames: int | None = None,
    frame_step: int = 1,
    short_side: int | None = None,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    start_frame: int = 0,
) -> Signal:
    """Read the first video stream of ``path`` as an RGB signal ``(3, T, H, W)`` in [0, 1].

    Args:
        path: a video file PyAV (FFmpeg) can demux and decode.
        max_frames: keep at most this many frames (after subsampling); ``None`` keeps all.
        frame_step: keep every ``frame_step``-th decoded frame, starting with the first kept.
        short_side: downscale each frame (antialiased bilinear) so its shorter side is
            ``short_side``; never upscales, like ``--resize`` for images.
        max_samples: refuse, before decoding where the header allows, a video whose kept frames
            hold more than this many pixels (frames x height x width, at the decoded size).
        start_frame: skip the file's first ``start_frame`` frames (before ``frame_step``).

    Returns a signal with ``kind="video"``, ``mode="RGB"``, ``bit_depth=8`` and
    ``meta={"fps": fps / frame_step, "frames": T}``; subsampling and resizing are listed in
    ``notes``. Raises :class:`SpecfitError` for a file without a video stream, an unreadable,
    truncated or garbage file, or one with no decodable frame.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise SpecfitError(f"max_frames must be at least 1, got {max_frames}")
    if frame_step < 1:
        raise SpecfitError(f"frame_step must be at least 1, got {frame_step}")
    if start_frame < 0:
        raise SpecfitError(f"start_frame must be at least 0, got {start_frame}")
    if short_side is not None and short_side < MIN_SIDE:
        raise SpecfitError(f"the short side must be at least {MIN_SIDE} pixels, got {short_side}")
    if not path.is_file():
        raise SpecfitError(f"{path} does not exist or is not a file")
    frames, fps, known, limited = _decode(path, max_frames, frame_step, max_samples, start_frame)
    height, width = frames[0].shape[:2]
    notes = []
    if not known:
        notes.append(f"frame rate unknown, assumed {DEFAULT_FPS:g} fps")
    if start_frame:
        notes.append(f"skipped the first {start_frame} frames")
    if frame_step > 1:
        notes.append(f"kept one frame in {frame_step} ({fps:g} -> {fps / frame_step:g} fps)")
    if limited:
        notes.append(f"kept the first {max_frames} frames")
    size = None
    if short_side is not None and min(height, width) > short_side:
        size = _resized_size(height, width, short_side)
        notes.append(f"resized from {height} x {width} to {size[0]} x {size[1]}")
    return _video_signal(_to_values(frames, size), fps / frame_step, path.stem, str(path), notes)


def _video_signal(
    values: torch.Tensor, fps: float, name: str, source: str | None, notes: list[str]
) -> Signal:
    return Signal(values=values, name=name, kind="video", mode="RGB", bit_depth=8, source=source,
                  notes=notes, meta={"fps": fps, "frames": int(values.shape[1])})


def video_from_array(frames: np.ndarray, fps: float = DEFAULT_FPS, name: str = "video") -> Signal:
    """A video signal ``(3, T, H, W)`` from RGB frames ``(T, H, W, 3)``: uint8, or float in [0, 1]."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or min(array.shape[1:3]) < MIN_SIDE or array.shape[0] < 1:
        raise SpecfitError(f"{name}: expected RGB frames (T, H, W, 3) of at least {MIN_SIDE} pixels a side, "
                           f"got {array.shape}")
    if not fps > 0:
        raise SpecfitError(f"{name}: fps must be positive, got {fps}")
    if array.dtype == np.uint8:
        values = torch.from_numpy(array).permute(3, 0, 1, 2).float().div(255.0)
    elif np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all() and (
            array.min() >= 0 and array.max() <= 1):
        values = torch.from_numpy(array.astype(np.float32)).permute(3, 0, 1, 2)
    else:
        raise SpecfitError(f"{name}: frames must be uint8 or float in [0, 1], got {array.dtype}")
    return _video_signal(values.contiguous(), float(fps), name, None, [])


def _even_frame(values: torch.Tensor) -> np.ndarray:
    """A ``(C, H, W)`` frame in [0, 1] (C = 1 or 3) to ``(H', W', 3)`` uint8 pixels, H' and W' even.

    yuv420p stores chroma at half resolution and needs even sides: an odd last row or column is
    repeated (edge replication), so the written video is at most one pixel taller and wider.
    NaN is written as 0.
    """
    if values.ndim != 3 or values.shape[0] not in (1, 3):
        raise SpecfitError(f"a video frame must be (3, H, W) or (1, H, W), got {tuple(values.shape)}")
    if min(values.shape[1:]) < 1:
        raise SpecfitError(f"cannot write an empty video frame of shape {tuple(values.shape)}")
    pixels = values.detach().float().nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    pixels = pixels.expand(3, -1, -1).permute(1, 2, 0).cpu().numpy()
    height, width, _ = pixels.shape
    return np.ascontiguousarray(np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge"))


def write_video_frames(path: Path, frames: Iterable[torch.Tensor], fps: float, crf: int = 18) -> None:
    """Write ``(C, H, W)`` frames in [0, 1] (C = 1 or 3, all of one size) as an H.264 (libx264,
    yuv420p) video, encoding each frame as it arrives, so memory stays at about one frame.

    ``fps`` is the frame rate (any positive number; stored as a fraction). ``crf`` is x264's
    constant rate factor (0-51, lower is better; 18 is near-transparent). Odd heights or widths
    are padded to even by repeating the last row or column, since yuv420p needs even sides.
    The container follows the suffix (``.mp4``, ``.mov`` or ``.mkv``); the file is written to a
    temporary name and renamed into place, so a failed write leaves nothing behind.
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise SpecfitError(f"cannot write H.264 video to {path}: use one of {', '.join(WRITE_SUFFIXES)}")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise SpecfitError(f"the frame rate must be a positive number up to {MAX_FPS:g}, got {fps}")
    av = _import_av()
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise SpecfitError(f"cannot write an empty video (no frames) to {path}")
    first_pixels = _even_frame(first)
    height, width, _ = first_pixels.shape
    rate = Fraction(fps).limit_denominator(1001)
    with staged_file(path) as temp:
        try:
            with av.open(str(temp), mode="w") as container:
                stream = container.add_stream("libx264", rate=rate, options={"crf": str(int(crf))})
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for index, pixels in enumerate(itertools.chain([first_pixels], map(_even_frame, frames))):
                    if pixels.shape != first_pixels.shape:
                        raise SpecfitError(f"video frame {index} is not the size of the first frame")
                    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                    container.mux(stream.encode(frame.reformat(format="yuv420p")))
                container.mux(stream.encode(None))
        except av.error.FFmpegError as exc:
            raise SpecfitError(f"cannot write {path} ({exc})") from exc


def write_video(path: Path, values: torch.Tensor, fps: float, crf: int = 18) -> None:
    """Write ``(3, T, H, W)`` (or ``(1, T, H, W)``) values in [0, 1] as an H.264 video, frame by
    frame (see :func:`write_video_frames`)."""
    if values.ndim != 4:
        raise SpecfitError(f"a video must be (3, T, H, W) or (1, T, H, W), got {tuple(values.shape)}")
    write_video_frames(path, values.unbind(1), fps, crf)


def frame_psnr(prediction: torch.Tensor, target: torch.Tensor) -> list[float]:
    """PSNR in dB (peak 1) of every frame of ``(C, T, H, W)`` tensors in [0, 1]; ``inf`` if equal."""
    if prediction.shape != target.shape or prediction.ndim != 4:
        raise ValueError(f"expected two (C, T, H, W) tensors of one shape, got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")
    mse = (prediction.double() - target.double()).square().mean(dim=(0, 2, 3))
    psnr = -10.0 * torch.log10(mse)  # log10(0) = -inf gives +inf for identical frames
    return [float(v) for v in psnr]
