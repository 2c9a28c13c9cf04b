"""Video: reading with PyAV, writing H.264 back, per-frame PSNR, and the errors for bad files.

Test videos are made here with PyAV directly (not with specfit's writer), at near-lossless quality.
H.264 is lossy, so decoded values are compared by PSNR, never for equality.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN, tree

from specfit.errors import SpecfitError
from specfit.signals.sampling import fill_held_out
from specfit.signals.video import VIDEO_SUFFIXES, frame_psnr, load_video, write_video


def moving_gradient(frames: int, height: int, width: int) -> np.ndarray:
    """``(T, H, W, 3)`` float frames in [0.2, 0.8]: smooth colour ramps that shift with time.

    Half a period across the frame: steeper colour ramps on frames this small lose more than
    30 dB to yuv420p's half-resolution chroma alone, whatever the codec quality.
    """
    t = np.arange(frames)[:, None, None]
    y = np.arange(height)[None, :, None] / height
    x = np.arange(width)[None, None, :] / width
    return np.stack(
        np.broadcast_arrays(
            0.5 + 0.3 * np.sin(2 * np.pi * (0.5 * x + 0.1 * t)),
            0.5 + 0.3 * np.cos(2 * np.pi * (0.5 * y - 0.1 * t)),
            0.2 + 0.6 * x * y + 0.0 * t,
        ),
        axis=-1,
    )


def encode_mp4(path: Path, video: np.ndarray, fps: float = 25) -> Path:
    """Write ``(T, H, W, 3)`` floats in [0, 1] (even H, W) as near-lossless H.264 with PyAV."""
    pixels = np.round(np.clip(video, 0, 1) * 255).astype(np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                      options={"crf": "4"})
        stream.width, stream.height, stream.pix_fmt = pixels.shape[2], pixels.shape[1], "yuv420p"
        for frame in pixels:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def as_tensor(video: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` quantised to 8 bits, as ``(3, T, H, W)`` float32."""
    pixels = np.round(np.clip(video, 0, 1) * 255) / 255
    return torch.from_numpy(pixels.astype(np.float32)).permute(3, 0, 1, 2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 6-frame 16 x 24 moving gradient at 25 fps."""
    video = moving_gradient(6, 16, 24)
    return encode_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", video), video


def test_load_video_shape_order_values_and_meta(clip):
    """(3, T, H, W) float32 in [0, 1], frames in order and close to the source (PSNR > 30 dB)."""
    path, video = clip
    signal = load_video(path)
    assert signal.values.shape == (3, 6, 16, 24)
    assert signal.values.dtype == torch.float32
    assert float(signal.values.min()) >= 0.0 and float(signal.values.max()) <= 1.0
    assert (signal.kind, signal.mode, signal.bit_depth, signal.name) == ("video", "RGB", 8, "clip")
    assert signal.meta == {"fps": 25.0, "frames": 6}
    assert signal.source == str(path) and signal.notes == []
    target = as_tensor(video)
    assert min(frame_psnr(signal.values, target)) > 30
    # Frame order matters: against the time-reversed source the match is much worse.
    assert max(frame_psnr(signal.values, target.flip(1))) < 25


def test_start_frame_skips_frames_before_frame_step_and_max_frames(clip):
    """start_frame skips the file's first frames; frame_step and max_frames count from there."""
    path, video = clip
    target = as_tensor(video)
    later = load_video(path, max_frames=2, frame_step=2, start_frame=1)
    assert later.values.shape == (3, 2, 16, 24)
    assert min(frame_psnr(later.values, target[:, 1:5:2])) > 30
    assert any("skipped the first 1 frames" in note for note in later.notes)
    with pytest.raises(SpecfitError, match="start_frame"):
        load_video(path, start_frame=6)


def test_frame_step_and_max_frames(clip):
    """frame_step keeps frames 0, s, 2s, ... and divides the fps; max_frames keeps the first ones."""
    path, video = clip
    target = as_tensor(video)
    stepped = load_video(path, frame_step=2)
    assert stepped.values.shape == (3, 3, 16, 24)
    assert stepped.meta == {"fps": 12.5, "frames": 3}
    assert min(frame_psnr(stepped.values, target[:, 0::2])) > 30
    assert any("one frame in 2" in note for note in stepped.notes)

    first = load_video(path, max_frames=4)
    assert first.values.shape == (3, 4, 16, 24) and first.meta["frames"] == 4
    assert min(frame_psnr(first.values, target[:, :4])) > 30
    assert any("first 4 frames" in note for note in first.notes)

    both = load_video(path, max_frames=2, frame_step=3)
    assert both.values.shape == (3, 2, 16, 24)
    assert min(frame_psnr(both.values, target[:, [0, 3]])) > 30

    whole = load_video(path, max_frames=6)  # the limit equals the length: nothing was cut
    assert whole.values.shape[1] == 6 and whole.notes == []


def test_short_side_resizes_each_frame(tmp_path):
    """short_side scales every frame so the short side has that length (antialiased, close to a box
    average of the source); a short side at least the frame's own leaves it untouched."""
    video = moving_gradient(3, 32, 48)
    path = encode_mp4(tmp_path / "big.mp4", video)
    small = load_video(path, short_side=8)
    assert small.values.shape == (3, 3, 8, 12)
    assert any("32 x 48 to 8 x 12" in note for note in small.notes)
    boxed = as_tensor(video).reshape(3, 3, 8, 4, 12, 4).mean(dim=(3, 5))
    assert min(frame_psnr(small.values, boxed)) > 30
    assert float(small.values.min()) >= 0.0 and float(small.values.max()) <= 1.0
    same = load_video(path, short_side=32)
    assert same.values.shape == (3, 3, 32, 48) and same.notes == []
    # Grey stripes, white where x % 4 is 1 or 2: an antialiased 4x reduction averages them to 0.5,
    # plain bilinear sampling (at x = 4i + 1.5) would read pure white.
    stripes = np.broadcast_to((np.isin(np.arange(48) % 4, (1, 2))).astype(float)[None, None, :, None],
                              (2, 32, 48, 3))
    striped = load_video(encode_mp4(tmp_path / "stripes.mp4", stripes), short_side=8).values
    assert striped.shape == (3, 2, 8, 12)
    assert float(striped.mean()) == pytest.approx(0.5, abs=0.05)
    assert float(striped.std()) < 0.05


def test_write_video_round_trip(tmp_path):
    """write_video -> load_video gives the same frames (PSNR > 30 dB), fps and no leftover files."""
    values = as_tensor(moving_gradient(5, 16, 24))
    out = tmp_path / "out.mp4"
    write_video(out, values, fps=10)
    assert tree(tmp_path) == {"out.mp4"}
    loaded = load_video(out)
    assert loaded.values.shape == values.shape
    assert loaded.meta == {"fps": 10.0, "frames": 5}
    assert min(frame_psnr(loaded.values, values)) > 30


@pytest.mark.parametrize("fps", [12.5, 30000 / 1001])
def test_write_video_fractional_fps(tmp_path, fps):
    """A non-integer frame rate survives the round trip."""
    write_video(tmp_path / "v.mp4", as_tensor(moving_gradient(2, 8, 8)), fps=fps)
    assert load_video(tmp_path / "v.mp4").meta["fps"] == pytest.approx(fps, rel=1e-6)


def test_write_video_pads_odd_sizes_by_edge_replication(tmp_path):
    """Odd H and W are padded to even for yuv420p by repeating the last row and column."""
    values = as_tensor(moving_gradient(4, 15, 21))
    write_video(tmp_path / "odd.mp4", values, fps=25)
    loaded = load_video(tmp_path / "odd.mp4").values
    assert loaded.shape == (3, 4, 16, 22)
    assert min(frame_psnr(loaded[:, :, :15, :21], values)) > 30
    # A white last row and column on black: the padding repeats them (white), it is not black.
    edges = torch.zeros(1, 2, 15, 21)
    edges[:, :, 14, :] = edges[:, :, :, 20] = 1.0
    write_video(tmp_path / "edges.mp4", edges, fps=25)
    padded = load_video(tmp_path / "edges.mp4").values
    assert padded.shape == (3, 2, 16, 22)
    assert float(padded[:, :, 15, :].mean()) > 0.85 and float(padded[:, :, :, 21].mean()) > 0.85
    assert float(padded[:, :, :13, :19].mean()) < 0.1


def test_write_video_grey_and_out_of_range_values(tmp_path):
    """A one-channel video is written as grey RGB; values outside [0, 1] and NaN are clamped."""
    grey = torch.linspace(-0.5, 1.5, 16).repeat(2, 8, 1)[None]  # (1, 2, 8, 16)
    grey[0, 0, 0, 0] = float("nan")
    write_video(tmp_path / "g.mp4", grey, fps=5)
    loaded = load_video(tmp_path / "g.mp4").values
    assert loaded.shape == (3, 2, 8, 16)
    assert min(frame_psnr(loaded, grey.nan_to_num(0.0).clamp(0, 1).expand(3, -1, -1, -1))) > 30


@pytest.mark.parametrize(
    ("values", "name", "fps", "message"),
    [
        (torch.zeros(3, 8, 8), "v.mp4", 25, "must be"),
        (torch.zeros(2, 1, 8, 8), "v.mp4", 25, "must be"),
        (torch.zeros(3, 0, 8, 8), "v.mp4", 25, "empty"),
        (torch.zeros(3, 1, 8, 8), "v.webm", 25, "use one of"),
        (torch.zeros(3, 1, 8, 8), "v.mp4", 0, "frame rate"),
        (torch.zeros(3, 1, 8, 8), "v.mp4", float("nan"), "frame rate"),
    ],
)
def test_write_video_rejects_bad_input(tmp_path, values, name, fps, message):
    with pytest.raises(SpecfitError, match=message):
        write_video(tmp_path / name, values, fps)
    assert tree(tmp_path) == set()


def test_write_video_failure_leaves_existing_file(tmp_path, monkeypatch):
    """An encoder failure mid-write leaves neither a partial file nor a changed destination."""
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"old")

    def broken_encode(*args: object, **kwargs: object) -> None:
        raise av.error.InvalidDataError(1094995529, "broken on purpose")

    from specfit.signals import video as module

    class BrokenAv:
        error = av.error
        VideoFrame = av.VideoFrame

        @staticmethod
        def open(*args: object, **kwargs: object) -> object:
            broken_encode()

    monkeypatch.setattr(module, "_import_av", lambda: BrokenAv)
    with pytest.raises(SpecfitError, match="cannot write"):
        write_video(out, torch.zeros(3, 2, 8, 8), fps=25)
    assert tree(tmp_path) == {"keep.mp4"} and out.read_bytes() == b"old"


def _audio_only(path: Path) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _truncated(path: Path) -> None:
    whole = encode_mp4(path.with_name("whole.mp4"), moving_gradient(6, 16, 24)).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def _truncated_faststart(path: Path) -> None:
    """Index at the front (faststart), frame data cut: it opens, then decoding fails."""
    rng = np.random.default_rng(0)
    with av.open(str(path.with_name("fs.mp4")), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(10):
            noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")))
        container.mux(stream.encode(None))
    whole = path.with_name("fs.mp4").read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])


def _no_frames(path: Path) -> None:
    """An AVI with a video stream and not a single frame in it."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()


MALFORMED = {
    "audio_only": (_audio_only, "bad.mp4", "no video stream"),
    "truncated": (_truncated, "bad.mp4", "truncated"),
    "truncated_faststart": (_truncated_faststart, "bad.mp4", "truncated"),
    "text": (lambda p: p.write_text("this is not a video\n"), "bad.mp4", "not a readable video"),
    "empty": (lambda p: p.write_bytes(b""), "bad.mp4", "not a readable video"),
    "no_frames": (_no_frames, "bad.avi", "no decodable video frames"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_videos_raise_one_line_errors(tmp_path, case):
    """Bad files raise SpecfitError with a one-line message naming the file."""
    make, name, message = MALFORMED[case]
    path = tmp_path / name
    make(path)
    with pytest.raises(SpecfitError, match=message) as info:
        load_video(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_frames": 0}, "max_frames"), ({"frame_step": 0}, "frame_step"), ({"short_side": 2}, "short side")],
)
def test_load_video_rejects_bad_options(clip, kwargs, message):
    with pytest.raises(SpecfitError, match=message):
        load_video(clip[0], **kwargs)


def test_missing_file_and_missing_pyav(tmp_path, monkeypatch, clip):
    """A missing file and a missing PyAV both give SpecfitError, the latter naming the extra."""
    with pytest.raises(SpecfitError, match="does not exist"):
        load_video(tmp_path / "nope.mp4")
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(SpecfitError, match=r"pip install 'specfit\[video\]'"):
        load_video(clip[0])
    with pytest.raises(SpecfitError, match="PyAV"):
        write_video(tmp_path / "v.mp4", torch.zeros(3, 1, 8, 8), fps=25)


def test_frame_psnr_is_per_frame():
    """frame_psnr matches a per-frame NumPy PSNR, gives inf for identical frames and checks shapes."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(3, 4, 5, 6, generator=generator)
    noise = torch.randn(3, 4, 5, 6, generator=generator) * torch.tensor([0.0, 0.01, 0.05, 0.2])[:, None, None]
    prediction = target + noise
    values = frame_psnr(prediction, target)
    diff = (prediction - target).numpy().astype(np.float64)
    expected = [10 * np.log10(1.0 / np.mean(diff[:, k] ** 2)) for k in range(1, 4)]
    assert values[0] == float("inf")
    assert values[1:] == pytest.approx(expected, rel=1e-9)
    assert values[1] > values[2] > values[3]
    with pytest.raises(ValueError):
        frame_psnr(prediction, target[:, :3])
    with pytest.raises(ValueError):
        frame_psnr(prediction[0], target[0])


def test_held_out_samples_of_clips_shorter_than_three_frames_are_filled_within_their_frames():
    """A 3 x 3 x 3 neighbourhood reaches past a clip of one or two frames: what lies outside counts
    as unknown, so a one-frame clip is filled as its image would be."""
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(3, 1, 6, 7, generator=generator)
    known = torch.rand(1, 6, 7, generator=generator) > 0.4
    filled = fill_held_out(values, known)
    assert torch.allclose(filled[:, 0], fill_held_out(values[:, 0], known[0]))
    assert torch.equal(filled[:, known], values[:, known])
    two_frames = torch.rand(3, 2, 6, 7, generator=generator)
    assert torch.isfinite(fill_held_out(two_frames, torch.rand(2, 6, 7, generator=generator) > 0.4)).all()


def test_a_one_frame_clip_fits_with_fresh_and_renders(cli, tmp_path):
    clip = encode_mp4(tmp_path / "one.mp4", moving_gradient(1, 16, 16))
    fitted = cli("fit", clip, *SMALL_SIREN, "--steps", "3", "--inits", "2", "--out", tmp_path / "run",
                 "--json")
    assert fitted.code == 0, fitted.err
    assert fitted.json()["selection"] is not None
    rendered = cli("render", tmp_path / "run", "--size", "2x")
    assert rendered.code == 0, rendered.err
    assert "1 frames of 32 x 32" in rendered.out


def test_video_suffixes():
    assert VIDEO_SUFFIXES == (".mp4", ".mov", ".avi", ".mkv", ".webm")


@pytest.mark.shared_data
def test_load_real_video_subsampled(shared_data):
    """bikes.mp4 (250 frames, 272 x 640, 25 fps): the first 10 frames at short side 68."""
    signal = load_video(shared_data / "video" / "bikes.mp4", max_frames=10, short_side=68)
    assert signal.values.shape == (3, 10, 68, 160)
    assert signal.meta == {"fps": 25.0, "frames": 10}
    assert float(signal.values.std()) > 0.05  # real content, not a blank frame
    assert float(signal.values.min()) >= 0.0 and float(signal.values.max()) <= 1.0
