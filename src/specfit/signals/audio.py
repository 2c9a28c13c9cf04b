"""Audio: ``.wav`` files (8-, 16-, 24- or 32-bit integer PCM, 32- or 64-bit float), any channel count.

A waveform of ``C`` channels and ``T`` samples is the signal ``values`` of shape ``(C, T)``:
channels first, time along the one spatial axis.

Value mapping: the waveform in [-1, 1] is stored as ``(x + 1) / 2`` in [0, 1], so
``value_offset = -1`` and ``value_scale = 2`` (original = ``2 * values - 1``). Integer PCM is first
scaled to [-1, 1) by its type's range (``x / 32768`` for 16-bit; 8-bit ``uint8`` is centred at 128),
so that 16-bit sample ``x`` becomes ``(x + 32768) / 65536``. A float file whose peak exceeds 1 is
scaled by its peak ``p`` instead (offset ``-p``, scale ``2 p``; a note says so), keeping silence at 0.5.

Size: the frame count claimed by the header (data chunk bytes over the frame size) is checked
against ``max_samples`` before the samples are read.

``meta`` holds ``sample_rate`` (Hz, int) and ``dtype`` (the stored sample type, e.g. ``"int16"``).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterable
from math import gcd, isfinite
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly

from specfit.errors import SpecfitError
from specfit.signals.base import Signal
from specfit.signals.limits import DEFAULT_MAX_SAMPLES, check_size
from specfit.util.files import staged_file

AUDIO_SUFFIXES = (".wav",)
WRITE_BIT_DEPTHS = (8, 16, 32)
WAV_FIELD_MAX = 0xFFFFFFFF  # the largest value of a WAV header's 32-bit fields
# What scipy's reader raises on truncated, corrupt or foreign files (found by fuzzing its input:
# a damaged header can also surface as a missing local variable or a division by zero).
_DECODE_ERRORS = (ValueError, EOFError, struct.error, IndexError, KeyError, TypeError, NameError,
                  ArithmeticError, MemoryError)


def _mode(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}ch")


def _wav_frames(path: Path) -> int | None:
    """The frame count a WAV header claims, read without the samples.

    Walks the RIFF/RIFX/RF64 chunks to the ``data`` chunk: its size (from ``ds64`` in RF64
    files) over the ``fmt`` chunk's block size. ``None`` when the header is not understood, and
    scipy's reader then says what is wrong.
    """
    with path.open("rb") as handle:
        riff = handle.read(12)
        if riff[:4] not in (b"RIFF", b"RIFX", b"RF64") or riff[8:12] != b"WAVE":
            return None
        order = ">" if riff[:4] == b"RIFX" else "<"
        sized = (b"fmt ", b"ds64") if riff[:4] == b"RF64" else (b"fmt ",)
        block_align, rf64_size = 0, None
        while len(chunk := handle.read(8)) == 8:
            name, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if name == b"data":
                size = size if rf64_size is None else rf64_size
                return size // block_align if block_align else None
            if name in sized and size >= 16:
                body = handle.read(16)
                if len(body) < 16:
                    return None
                if name == b"fmt ":
                    block_align = struct.unpack(order + "H", body[12:14])[0]
                else:
                    rf64_size = struct.unpack("<Q", body[8:16])[0]
                size -= 16
            handle.seek(size + size % 2, 1)
    return None


def _read_wav(path: Path, limit: int) -> tuple[int, np.ndarray]:
    """``(sample_rate, samples)`` with samples ``(T,)`` or ``(T, C)`` in the stored type.

    Raises a :class:`SpecfitError` before reading the samples when the header claims more than
    ``limit`` frames.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            frames = _wav_frames(path)
            if frames is not None:
                check_size(path, "audio frames", (frames,), limit)
            rate, data = wavfile.read(path)
        except SpecfitError:
            raise
        except OSError as exc:
            raise SpecfitError(f"cannot read {path} ({exc.strerror or exc})") from exc
        except _DECODE_ERRORS as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecfitError(f"{path} is not a readable WAV file ({reason})") from exc
    # scipy only warns when the data chunk ends early and returns the samples it got.
    for warning in caught:
        if issubclass(warning.category, wavfile.WavFileWarning) and "EOF" in str(warning.message):
            raise SpecfitError(f"{path} is truncated: {warning.message}")
    return int(rate), np.asarray(data)


def _to_unit_range(data: np.ndarray, path: Path) -> tuple[np.ndarray, int, float, float, list[str]]:
    """``(C, T)`` samples to float32 in [0, 1]; returns (values, bit_depth, offset, scale, notes)."""
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        bits = info.bits
        low = float(info.min) if info.min < 0 else 0.0
        values = (data.astype(np.float64) - low) / float(2**bits)
        return values.astype(np.float32), bits if bits <= 16 else 32, -1.0, 2.0, []
    if not np.issubdtype(data.dtype, np.floating):
        raise SpecfitError(f"{path}: unsupported sample type {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise SpecfitError(f"{path} contains NaN or infinite samples")
    peak = float(np.abs(data).max())
    if peak <= 1.0:
        return ((data.astype(np.float64) + 1.0) / 2.0).astype(np.float32), 32, -1.0, 2.0, []
    values = (data.astype(np.float64) + peak) / (2.0 * peak)
    note = f"float samples peak at {peak:.4g} (outside [-1, 1]); scaled by the peak"
    return values.astype(np.float32), 32, -peak, 2.0 * peak, [note]


def load_audio(
    path: Path, max_seconds: float | None = None, *, max_samples: int = DEFAULT_MAX_SAMPLES,
    start_seconds: float = 0.0,
) -> Signal:
    """Read a ``.wav`` file as a ``(C, T)`` audio signal in [0, 1] (see the module docstring).

    ``start_seconds`` skips the file's first seconds, then ``max_seconds`` keeps only the next
    ``max_seconds`` seconds (a note records the crop); the whole file is read first, so
    ``max_samples`` limits its frame count, not the crop's.
    """
    path = Path(path)
    if max_seconds is not None and not max_seconds > 0:
        raise SpecfitError(f"max_seconds must be positive, got {max_seconds}")
    rate, data = _read_wav(path, max_samples)
    if rate <= 0:
        raise SpecfitError(f"{path} has an invalid sample rate {rate}")
    return audio_from_array(data, rate, path.stem, path, max_seconds, start_seconds)


def audio_from_array(
    data: np.ndarray, sample_rate: int, name: str, path: Path | None = None, max_seconds: float | None = None,
    start_seconds: float = 0.0,
) -> Signal:
    """An audio signal from samples ``(T,)`` or ``(T, C)`` (integer PCM, or float in [-1, 1]).

    Integer samples are mapped by their type's range; float samples beyond [-1, 1] are scaled by
    their peak (with a note). ``start_seconds`` skips the first seconds (rounded to a sample), then
    ``max_seconds`` keeps only the next seconds.
    """
    where = path if path is not None else Path(name)
    if not sample_rate > 0:
        raise SpecfitError(f"{where}: the sample rate must be positive, got {sample_rate}")
    if max_seconds is not None and not max_seconds > 0:
        raise SpecfitError(f"max_seconds must be positive, got {max_seconds}")
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise SpecfitError(f"{where} holds no audio samples (expected (T,) or (T, C), got {data.shape})")
    if not (isfinite(start_seconds) and start_seconds >= 0):
        raise SpecfitError(f"start_seconds must be at least 0, got {start_seconds}")
    notes = []
    total = data.shape[0]
    skip = round(start_seconds * sample_rate)
    if skip >= total:
        raise SpecfitError(f"start_seconds {start_seconds:g} is past the end of {where} "
                           f"({total / sample_rate:.4g} s)")
    if skip:
        data = data[skip:]
        notes.append(f"skipped the first {skip} of {total} samples ({skip / sample_rate:.4g} s)")
    if max_seconds is not None:
        keep = max(1, round(max_seconds * sample_rate))
        if keep < data.shape[0]:
            data = data[:keep]
            notes.append(f"cropped to the first {keep} of {total} samples ({keep / sample_rate:.4g} s)"
                         if not skip else f"kept {keep} samples ({keep / sample_rate:.4g} s) from there")
    values, bit_depth, offset, scale, range_notes = _to_unit_range(data.T, where)
    return Signal(
        values=torch.from_numpy(np.ascontiguousarray(values)),
        name=name,
        kind="audio",
        mode=_mode(values.shape[0]),
        bit_depth=bit_depth,
        value_offset=offset,
        value_scale=scale,
        source=str(path) if path is not None else None,
        notes=notes + range_notes,
        meta={"sample_rate": int(sample_rate), "dtype": data.dtype.name},
    )


def _check_bit_depth(bit_depth: int) -> None:
    if bit_depth not in WRITE_BIT_DEPTHS:
        raise SpecfitError(f"audio bit depth must be one of {WRITE_BIT_DEPTHS}, got {bit_depth}")


def audio_to_samples(
    values: torch.Tensor, bit_depth: int = 16, value_offset: float = -1.0, value_scale: float = 2.0
) -> np.ndarray:
    """``(C, T)`` values in [0, 1] to ``(T, C)`` WAV samples.

    ``bit_depth`` 8 gives ``uint8``, 16 ``int16``, 32 ``float32`` in original units
    (``values * value_scale + value_offset``). Integer PCM is clipped to [-1, 1].
    """
    _check_bit_depth(bit_depth)
    if values.ndim != 2:
        raise SpecfitError(f"audio values must have shape (C, T), got {tuple(values.shape)}")
    unit = values.detach().double().clamp(0.0, 1.0).cpu().numpy().T
    original = unit * value_scale + value_offset
    if bit_depth == 32:
        return np.ascontiguousarray(original, dtype=np.float32)
    half = 2 ** (bit_depth - 1)
    pcm = np.clip(np.round(original * half), -half, half - 1)
    if bit_depth == 8:
        return (pcm + half).astype(np.uint8)
    return pcm.astype(np.int16)


def check_wav(frames: int, channels: int, sample_rate: int, bit_depth: int) -> None:
    """Raise :class:`SpecfitError` unless a WAV file can hold ``frames`` samples of ``channels``
    channels at ``sample_rate`` Hz in ``bit_depth`` bits.

    The header stores the channel count in 16 bits and the sample rate, the bytes per second and
    the sample count in 32 bits; the data size has no limit (RF64 beyond 4 GiB).
    """
    _check_bit_depth(bit_depth)
    if not 1 <= channels <= 0xFFFF:
        raise SpecfitError(f"a WAV file holds 1 to 65535 channels, not {channels}")
    top_rate = WAV_FIELD_MAX // (channels * bit_depth // 8)
    if not 1 <= sample_rate <= top_rate:
        raise SpecfitError(f"{frames} samples at {sample_rate} Hz cannot be written as WAV: the sample "
                           f"rate must be 1 to {top_rate} Hz")
    if not 0 <= frames <= WAV_FIELD_MAX:
        raise SpecfitError(f"a WAV file holds at most {WAV_FIELD_MAX} samples per channel, not {frames}")


def _wav_header(frames: int, channels: int, sample_rate: int, bit_depth: int) -> bytes:
    """The header of a WAV file (as scipy writes it: PCM, or IEEE float with a ``fact`` chunk),
    up to and including the ``data`` chunk's size; RF64 with a ``ds64`` chunk beyond 4 GiB."""
    floats = bit_depth == 32
    block = channels * bit_depth // 8
    fmt = struct.pack("<HHIIHH", 3 if floats else 1, channels, sample_rate, sample_rate * block, block,
                      bit_depth) + (b"\0\0" if floats else b"")
    chunks = struct.pack("<4sI", b"fmt ", len(fmt)) + fmt
    chunks += struct.pack("<4sII", b"fact", 4, frames) if floats else b""
    data = frames * block
    riff = 4 + len(chunks) + 8 + data
    if riff <= WAV_FIELD_MAX:
        return struct.pack("<4sI4s", b"RIFF", riff, b"WAVE") + chunks + struct.pack("<4sI", b"data", data)
    ds64 = struct.pack("<4sIQQQI", b"ds64", 28, riff + 36, data, frames, 0)
    return (struct.pack("<4sI4s", b"RF64", WAV_FIELD_MAX, b"WAVE") + ds64 + chunks
            + struct.pack("<4sI", b"data", WAV_FIELD_MAX))


def write_audio_blocks(
    path: Path,
    blocks: Iterable[torch.Tensor],
    frames: int,
    channels: int,
    sample_rate: int,
    bit_depth: int = 16,
    *,
    value_offset: float = -1.0,
    value_scale: float = 2.0,
) -> None:
    """Write a WAV file from consecutive ``(n, C)`` blocks of values in [0, 1], ``frames`` rows in all.

    The header is written first (its sizes follow from ``frames``), then each block is converted
    (:func:`audio_to_samples`) and appended as it arrives, so memory stays at one block. The file
    is staged and renamed into place: a failure, or blocks that do not add up to ``frames`` rows
    of ``channels`` values, leaves nothing behind.
    """
    check_wav(frames, channels, sample_rate, bit_depth)
    with staged_file(Path(path)) as temp, temp.open("wb") as handle:
        handle.write(_wav_header(frames, channels, sample_rate, bit_depth))
        written = 0
        for block in blocks:
            samples = audio_to_samples(block.T, bit_depth, value_offset, value_scale)
            written += len(samples)
            if samples.shape[1] != channels or written > frames:
                raise SpecfitError(f"audio blocks exceed {frames} samples of {channels} channels")
            handle.write(samples.astype(samples.dtype.newbyteorder("<"), copy=False).tobytes())
        if written != frames:
            raise SpecfitError(f"audio blocks hold {written} samples, not {frames}")


def write_audio(
    path: Path,
    values: torch.Tensor,
    sample_rate: int,
    bit_depth: int = 16,
    *,
    value_offset: float = -1.0,
    value_scale: float = 2.0,
) -> None:
    """Write ``(C, T)`` values in [0, 1] as a WAV file (see :func:`write_audio_blocks`).

    16-bit PCM by default; ``bit_depth=32`` writes float32, ``8`` unsigned 8-bit PCM. Pass a
    signal's ``value_offset``/``value_scale`` to undo a peak scaling made when it was loaded.
    """
    if values.ndim != 2:
        raise SpecfitError(f"audio values must have shape (C, T), got {tuple(values.shape)}")
    channels, frames = values.shape
    write_audio_blocks(path, [values.T], frames, channels, int(sample_rate), bit_depth,
                       value_offset=value_offset, value_scale=value_scale)


def resample_audio(signal: Signal, sample_rate: int, max_samples: int = DEFAULT_MAX_SAMPLES) -> Signal:
    """Resample an audio signal to ``sample_rate`` Hz (polyphase filter, ``scipy.signal.resample_poly``).

    Lowering the rate gives a cheaper fit. Values stay ``(C, T')`` in [0, 1] (clipped after
    filtering); the mapping to original units is unchanged.
    """
    old = int(signal.meta.get("sample_rate", 0))
    if old <= 0:
        raise SpecfitError(f"{signal.name} has no sample rate to resample from")
    if int(sample_rate) <= 0:
        raise SpecfitError(f"sample rate must be positive, got {sample_rate}")
    sample_rate = int(sample_rate)
    if sample_rate == old:
        return signal
    frames = -(-signal.spatial_shape[0] * sample_rate // old)
    check_size(f"--sample-rate {sample_rate} of {signal.name}", "audio frames", (frames,), max_samples,
               claim="would make")
    common = gcd(sample_rate, old)
    # Filter the zero-centred waveform so the zero padding at the ends does not pull towards -1.
    centred = signal.values.detach().double().cpu().numpy() - 0.5
    resampled = resample_poly(centred, sample_rate // common, old // common, axis=-1) + 0.5
    values = torch.from_numpy(np.clip(resampled, 0.0, 1.0).astype(np.float32))
    result = Signal(**{
        **signal.__dict__,
        "values": values,
        "notes": list(signal.notes),
        "meta": {**signal.meta, "sample_rate": sample_rate},
    })
    before, after = signal.values.shape[-1], values.shape[-1]
    result.notes.append(f"resampled from {old} Hz to {sample_rate} Hz ({before} -> {after} samples)")
    return result
