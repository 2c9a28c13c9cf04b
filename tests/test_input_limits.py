"""Input limits: a file whose header claims more samples than ``max_samples`` is refused before
anything is decoded, with a one-line error naming the claimed size; non-regular files are refused
without being opened.

The oversized files are crafted here: valid headers that claim a huge size with little or no data
behind them, so a regression fails fast (a clean error of another kind, or a third-party exception)
instead of decoding gigabytes.
"""

from __future__ import annotations

import gzip
import os
import signal
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel
import numpy as np
import pytest
import tifffile
import torch
from helpers import save_png8, save_png16
from PIL import Image
from scipy.io import wavfile

from specfit.errors import SpecfitError
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.signals.limits import DEFAULT_MAX_SAMPLES
from specfit.signals.video import write_video


def _refused(path: Path | None, claimed: str, max_samples: int = DEFAULT_MAX_SAMPLES,
             **options: object) -> str:
    """Load ``path`` expecting a one-line :class:`SpecfitError` that mentions ``claimed``."""
    with pytest.raises(SpecfitError) as caught:
        load_signal(path, LoadOptions(max_samples=max_samples, **options))
    message = str(caught.value)
    assert "\n" not in message
    assert claimed in message, message
    return message


def _refused_over_limit(path: Path, claimed: str, max_samples: int = DEFAULT_MAX_SAMPLES,
                        **options: object) -> None:
    """The limit error: names the claimed size and the option that raises the limit."""
    message = _refused(path, claimed, max_samples, **options)
    assert "claims" in message and "--max-samples" in message, message


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(path: Path, width: int, height: int, bit_depth: int, colour_type: int) -> Path:
    """A PNG with a valid IHDR claiming ``width x height`` and a tiny IDAT (a few zero rows)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("width", "height", "bit_depth", "colour_type"),
                         [(100_000, 100_000, 8, 2), (16_000, 16_000, 16, 0)])
def test_png_claiming_a_huge_size_is_refused(tmp_path, width, height, bit_depth, colour_type):
    """8-bit (Pillow) and 16-bit (pypng) PNGs are checked on their IHDR, before decoding."""
    path = _png_claiming(tmp_path / "big.png", width, height, bit_depth, colour_type)
    _refused_over_limit(path, f"{height} x {width} pixels")


@pytest.mark.parametrize("save", [save_png8, save_png16])
def test_png_at_the_limit_loads(tmp_path, save):
    dtype = np.uint8 if save is save_png8 else np.uint16
    path = save(tmp_path / "small.png", np.zeros((6, 8), dtype=dtype))
    assert load_signal(path, LoadOptions(max_samples=48)).spatial_shape == (6, 8)
    _refused_over_limit(path, "6 x 8 pixels", max_samples=47)


def _jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small JPEG whose SOF0 frame header is patched to claim ``width x height``."""
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    start = data.index(b"\xff\xc0")
    data[start + 5:start + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def test_jpeg_size_is_checked_before_decoding(tmp_path):
    """Pillow's lazy open gives the size; its decompression-bomb warning never escapes."""
    path = _jpeg_claiming(tmp_path / "big.jpg", 10_000, 10_000)  # 1e8 pixels: Pillow only warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _refused_over_limit(path, "10000 x 10000 pixels", max_samples=1000)
    small = _jpeg_claiming(tmp_path / "small.jpg", 8, 6)
    assert load_signal(small, LoadOptions(max_samples=48)).spatial_shape == (6, 8)


def test_jpeg_beyond_pillows_own_limit_is_a_clean_error(tmp_path):
    """Pillow refuses 65000 x 65000 in ``Image.open``: its error becomes a SpecfitError."""
    path = _jpeg_claiming(tmp_path / "bomb.jpg", 65_000, 65_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _refused(path, f"{65_000 * 65_000} pixels", max_samples=10**12)


def _tiff_claiming(path: Path, width: int, height: int) -> Path:
    """A small TIFF whose ImageWidth / ImageLength tags are rewritten to claim ``width x height``."""
    tifffile.imwrite(path, np.zeros((8, 8), dtype=np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(width)
        tif.pages[0].tags["ImageLength"].overwrite(height)
    return path


def test_tiff_claiming_a_huge_size_is_refused(tmp_path):
    _refused_over_limit(_tiff_claiming(tmp_path / "big.tif", 100_000, 100_000), "100000 x 100000 pixels")
    small = tmp_path / "small.tiff"
    tifffile.imwrite(small, np.zeros((6, 8, 3), dtype=np.uint16))
    assert load_signal(small, LoadOptions(max_samples=48)).spatial_shape == (6, 8)
    _refused_over_limit(small, "6 x 8 pixels", max_samples=47)


def _npy_header_only(path: Path, shape: tuple[int, ...], dtype: str = "<u1", data: bytes = b"") -> Path:
    """An ``.npy`` file whose header claims ``shape`` but that holds only ``data``."""
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": dtype, "fortran_order": False, "shape": shape})
        handle.write(data)
    return path


@pytest.mark.parametrize(("shape", "claimed"), [
    ((100_000, 100_000), "100000 x 100000 pixels"),
    ((5000, 5000, 5000), "5000 x 5000 x 5000 voxels"),
])
def test_npy_header_claiming_a_huge_shape_is_refused(tmp_path, shape, claimed):
    _refused_over_limit(_npy_header_only(tmp_path / "big.npy", shape), claimed)


def test_truncated_npy_is_a_clean_error(tmp_path):
    """Under the limit, a header claiming more bytes than the file holds is reported as truncated."""
    path = _npy_header_only(tmp_path / "cut.npy", (64, 64), "<f4", bytes(100))
    message = _refused(path, "truncated")
    assert str(64 * 64 * 4) in message


@pytest.mark.parametrize(("shape", "kind", "limit"), [((6, 8, 3), "image", 48), ((4, 5, 6), "volume", 120)])
def test_npy_at_the_limit_loads(tmp_path, shape, kind, limit):
    path = tmp_path / "small.npy"
    np.save(path, np.zeros(shape, dtype=np.uint8))
    assert load_signal(path, LoadOptions(max_samples=limit)).kind == kind
    _refused_over_limit(path, " x ".join(map(str, shape[:2] if kind == "image" else shape)),
                        max_samples=limit - 1)


def test_wav_header_claiming_2_31_frames_is_refused(tmp_path):
    """A RIFF header whose data chunk claims 2**31 8-bit mono frames, with 16 bytes behind it."""
    size = 2**31
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    header = (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + size) + b"WAVE"
              + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size))
    path = tmp_path / "long.wav"
    path.write_bytes(header + bytes(16))
    _refused_over_limit(path, f"{2**31} audio frames")


def test_wav_at_the_limit_loads(tmp_path):
    path = tmp_path / "short.wav"
    wavfile.write(path, 8000, np.zeros((100, 2), dtype=np.int16))
    assert load_signal(path, LoadOptions(max_samples=100)).values.shape == (2, 100)
    _refused_over_limit(path, "100 audio frames", max_samples=99)


def test_nifti_header_claiming_5000_cubed_is_refused(tmp_path):
    header = nibabel.Nifti1Header()
    header.set_data_shape((5000, 5000, 5000))
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352
    path = tmp_path / "huge.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + bytes(4)))
    _refused_over_limit(path, "5000 x 5000 x 5000 voxels")


def test_nifti_at_the_limit_loads(tmp_path):
    path = tmp_path / "small.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 5, 6), dtype=np.float32), np.eye(4)), path)
    assert load_signal(path, LoadOptions(max_samples=120)).spatial_shape == (4, 5, 6)
    _refused_over_limit(path, "4 x 5 x 6 voxels", max_samples=119)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-frame 16 x 24 mp4 (its header counts the frames)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, torch.rand(3, 6, 16, 24, generator=torch.Generator().manual_seed(0)), 25)
    return path


def test_video_header_size_is_checked_before_decoding(video):
    frame = 16 * 24
    assert load_signal(video, LoadOptions(max_samples=6 * frame)).values.shape == (3, 6, 16, 24)
    _refused_over_limit(video, "6 x 16 x 24", max_samples=6 * frame - 1)


@pytest.mark.parametrize("options", [{"max_frames": 2}, {"frame_step": 3}, {"frame_step": 4}])
def test_video_limit_counts_the_kept_frames(video, options):
    """``max_frames`` and ``frame_step`` decide how many frames count against the limit."""
    assert load_signal(video, LoadOptions(max_samples=2 * 16 * 24, **options)).values.shape[1] == 2
    _refused_over_limit(video, "2 x 16 x 24", max_samples=2 * 16 * 24 - 1, **options)


def test_video_without_a_frame_count_is_checked_while_decoding(tmp_path):
    """Matroska headers carry no frame count: the frames are counted as they are decoded."""
    path = tmp_path / "clip.mkv"
    write_video(path, torch.rand(3, 6, 16, 24, generator=torch.Generator().manual_seed(0)), 25)
    assert load_signal(path, LoadOptions(max_samples=6 * 16 * 24)).values.shape[1] == 6
    _refused_over_limit(path, "4 x 16 x 24", max_samples=4 * 16 * 24 - 1)


def test_max_samples_must_be_positive(tmp_path):
    _refused(None, "--max-samples", max_samples=0)


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a blocking open() after ``seconds``."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", ["x.png", "x.wav", "x.mp4", "x.npy", "x.nii.gz", "x.obj"])
def test_fifo_is_refused_without_opening_it(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    with _deadline(10):
        message = _refused(path, str(path))
    assert "not a regular file" in message


def test_resampling_beyond_the_limit_is_refused_before_it_allocates(tmp_path):
    import scipy.io.wavfile

    from specfit.kinds.kind import LoadOptions
    from specfit.kinds.load import load_signal

    volume = tmp_path / "cube.npy"
    np.save(volume, np.random.default_rng(0).random((8, 8, 8), dtype=np.float32))
    with pytest.raises(SpecfitError, match=r"--resize 5000 of cube would make 5000 x 5000 x 5000 voxels"):
        load_signal(volume, LoadOptions(kind="volume", resize=5000))
    clip = tmp_path / "clip.wav"
    scipy.io.wavfile.write(clip, 8000, np.zeros(800, np.int16))
    with pytest.raises(SpecfitError, match=r"--sample-rate 2000000000 of clip would make 200000000 audio"):
        load_signal(clip, LoadOptions(sample_rate=2 * 10**9, max_samples=10**8))
