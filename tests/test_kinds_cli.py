"""End-to-end CLI tests for the non-image signal types: audio (.wav), video (.mp4), volumes (.npy,
NIfTI) and shapes (.obj meshes), through `fit`, `select`, `spectrum` and `render`.

Every signal is tiny and generated here, every model tiny (width 16, one hidden layer, CPU, no
compile), so each fit takes a second or two; the two shape fits take 7-10 s each (see SHAPE_FIT).
Runs that several tests inspect are made once per module. Known bugs are written as the expected
behaviour.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_single_error, tree
from scipy.io import wavfile

from specfit.cli.main import main

av = pytest.importorskip("av")
nibabel = pytest.importorskip("nibabel")
trimesh = pytest.importorskip("trimesh")
pytest.importorskip("point_cloud_utils")

SELECT = ["--set", "width=16", "--set", "hidden_layers=1", "--device", "cpu"]  # `select` has no --compile
TINY = [*SELECT, "--compile", "off"]
# A short fit with a two-value FreSh grid: about a second for these signals.
FIT = [*TINY, "--steps", 20, "--inits", 2, "--grid", "10,30", "--eval-every", 5]
# Shapes train on 32^3-point batches from a 2^18-point pool and are evaluated on 2 x 64^3 points,
# a 128^3 marching-cubes grid and 2^16-point Chamfer samples: about 8-10 s per fit on 2 shared cores.
SHAPE_FIT = [*TINY, "--steps", 20, "--inits", 2, "--grid", "10,30", "--eval-every", 10]

RATE = 8000
SAMPLES = 400  # 0.05 s at 8 kHz
FRAMES, HEIGHT, WIDTH = 4, 16, 24


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def run_cli(*args: object) -> Result:
    """``specfit.cli.main.main`` in-process with stdout/stderr captured (for module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def note_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


def unit_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB (peak 1) of two arrays in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return -10.0 * np.log10(mse)


# ---------------------------------------------------------------------------------------------
# Signal makers (independent of specfit's writers)


def write_tone(path: Path, samples: int = SAMPLES, rate: int = RATE) -> np.ndarray:
    """A 16-bit stereo wav: 440 Hz at 0.6 on the left, 660 Hz at 0.3 on the right. Returns (T, 2) int16."""
    t = np.arange(samples) / rate
    wave = np.stack([0.6 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t + 1.0)], axis=1)
    data = np.round(wave * 32767).astype(np.int16)
    wavfile.write(path, rate, data)
    return data


def int16_to_unit(data: np.ndarray) -> np.ndarray:
    """16-bit PCM to specfit's [0, 1] audio values: ``(x + 32768) / 65536``."""
    return (data.astype(np.float64) + 32768.0) / 65536.0


def moving_gradient() -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames: smooth colour ramps that shift with time."""
    t = np.arange(FRAMES)[:, None, None]
    y = np.arange(HEIGHT)[None, :, None] / HEIGHT
    x = np.arange(WIDTH)[None, None, :] / WIDTH
    video = np.stack(np.broadcast_arrays(
        0.5 + 0.3 * np.sin(2 * np.pi * (0.5 * x + 0.1 * t)),
        0.5 + 0.3 * np.cos(2 * np.pi * (0.5 * y - 0.1 * t)),
        0.2 + 0.6 * x * y + 0.0 * t,
    ), axis=-1)
    return np.round(video * 255).astype(np.uint8)


def encode_mp4(path: Path, pixels: np.ndarray, fps: int = 25) -> Path:
    """Near-lossless H.264 of ``(T, H, W, 3)`` uint8 frames, written with PyAV directly."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"crf": "4"})
        stream.width, stream.height, stream.pix_fmt = pixels.shape[2], pixels.shape[1], "yuv420p"
        for frame in pixels:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def decode_mp4(path: Path) -> np.ndarray:
    """Every frame of a video as ``(T, H, W, 3)`` uint8, decoded with PyAV."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def smooth_volume(shape: tuple[int, ...], low: float = -3.0, high: float = 5.0) -> np.ndarray:
    """A smooth float64 volume spanning exactly [low, high]."""
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    field = np.sin(2 * np.pi * axes[0]) * np.cos(np.pi * axes[1]) + axes[2] ** 2
    field = (field - field.min()) / (field.max() - field.min())
    return low + (high - low) * field


def ball_mesh(subdivisions: int = 2) -> object:
    """An icosphere of radius 1.5 centred at (10, -5, 3): far from the origin, so a mesh written in
    the normalised frame instead of the file's units is caught."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.5)
    mesh.apply_translation([10.0, -5.0, 3.0])
    return mesh


BALL_CENTER = np.array([10.0, -5.0, 3.0])
BALL_HALF_DOMAIN = 1.5 / 0.9  # [-1, 1]^3 normalised maps to centre +- radius / MARGIN


# ---------------------------------------------------------------------------------------------
# Audio


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    return path, write_tone(path)


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory, tone) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("audio_run") / "run"
    result = run_cli("fit", tone[0], *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    return out, result


def test_audio_fit_writes_wav_metrics_and_report(audio_run, tone):
    """fit on a stereo wav: reconstruction.wav keeps channels, rate, length and sample type, and its
    samples are the reconstruction whose PSNR metrics.json reports."""
    out, result = audio_run
    document = result.json()
    assert document["out"] == str(out)
    metrics = read_json(out / "metrics.json")
    for key in ("psnr", "psnr_train", "psnr_test"):
        assert isinstance(metrics[key], float) and 0.0 < metrics[key] < 100.0, key
        assert document[key] == pytest.approx(metrics[key])
    assert metrics["steps"] == 20 and metrics["model"] == "siren"
    assert metrics["selection"]["knob"] == "omega_0"
    assert [row["value"] for row in metrics["selection"]["table"]] == [10.0, 30.0]
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "audio"
    assert config["signal"]["shape"] == [2, SAMPLES]
    assert config["in_features"] == 1 and config["out_features"] == 2
    rate, recon = wavfile.read(out / "reconstruction.wav")
    assert rate == RATE
    assert recon.shape == (SAMPLES, 2) and recon.dtype == np.int16
    # The wav holds the reconstruction the metrics were computed on (16-bit rounding costs < 0.05 dB
    # at these PSNRs); swapped channels or a wrong value mapping would be many dB off. Audio PSNR is
    # on the waveform in [-1, 1] with peak 1: 20 log10(2) = 6.02 dB below PSNR on values in [0, 1].
    wave, truth = recon.astype(np.float64) / 32768, tone[1].astype(np.float64) / 32768
    assert unit_psnr(wave, truth) == pytest.approx(metrics["psnr"], abs=0.05)
    on_unit_values = unit_psnr(int16_to_unit(recon), int16_to_unit(tone[1]))
    assert on_unit_values - 6.02 == pytest.approx(metrics["psnr"], abs=0.05)
    # SNR on the waveform in its own units: signal power over error power.
    snr = 10 * np.log10(np.sum(truth**2) / np.sum((wave - truth) ** 2))
    assert metrics["snr"] == pytest.approx(snr, abs=0.05)
    assert isinstance(metrics["snr_train"], float) and isinstance(metrics["snr_test"], float)
    report = (out / "report.html").read_text()
    assert report.lstrip().lower().startswith("<!doctype html") or "<html" in report.lower()
    assert "data:image/png;base64," in report  # waveform and spectrogram views are embedded


def test_audio_fit_json_is_one_document(audio_run):
    _, result = audio_run
    assert result.out.strip().count("\n") == 0
    document = result.json()
    assert "history" not in document
    assert document["model"] == "siren" and document["knob"] == "omega_0"


def test_audio_render_size_writes_that_many_samples(cli, audio_run):
    """render --size N writes N samples per channel; the rate scales so the duration stays 0.05 s."""
    out, _ = audio_run
    result = cli("render", out, "--size", 200, "--device", "cpu")
    assert result.code == 0, result.err
    path = out / "render-200.wav"
    assert str(path) in result.out
    rate, data = wavfile.read(path)
    assert data.shape == (200, 2)
    assert rate == RATE // 2


def test_audio_render_at_native_size_matches_reconstruction(cli, audio_run, tmp_path):
    """Without --size, render evaluates the same grid as the fit's reconstruction.wav."""
    out, _ = audio_run
    target = tmp_path / "again.wav"
    result = cli("render", out, "--out", target, "--device", "cpu")
    assert result.code == 0, result.err
    rate, rendered = wavfile.read(target)
    _, recon = wavfile.read(out / "reconstruction.wav")
    assert rate == RATE and rendered.shape == recon.shape
    assert np.abs(rendered.astype(int) - recon.astype(int)).max() <= 1


def test_audio_default_fresh_grid_reaches_audio_frequencies(cli, tone):
    """Without --grid, FreSh for audio searches a grid widened far beyond the image grid (10..200):
    SIREN's omega_0 for audio is in the thousands."""
    from specfit.models import get_entry
    from specfit.tasks.audio import audio_grid

    knob = get_entry("siren").knob
    samples = len(wavfile.read(tone[0])[1])
    expected = audio_grid(knob.grid, isinstance(knob.default, int), samples)
    assert max(expected) > 1000 and min(expected) == min(knob.grid)
    long_clip = audio_grid(knob.grid, isinstance(knob.default, int), 100 * samples)
    assert max(long_clip) > 10 * max(expected) or max(long_clip) >= max(knob.grid) * samples * 100 / 512
    assert expected == sorted(expected) and len(set(expected)) == len(expected)
    result = cli("select", tone[0], "--model", "siren", *SELECT, "--inits", 2, "--json")
    assert result.code == 0, result.err
    values = [row["value"] for row in result.json()["table"]]
    assert values == expected
    assert max(values) > 1000


def test_audio_max_seconds_and_sample_rate_apply(cli, tone, tmp_path):
    """--max-seconds crops and --sample-rate resamples; both are noted, and the written wav has the
    new length and rate."""
    result = cli("spectrum", tone[0], "--max-seconds", 0.025)
    assert result.code == 0, result.err
    assert "(audio, stereo, 200 samples)" in result.out.splitlines()[0]
    result = cli("spectrum", tone[0], "--sample-rate", 4000)
    assert result.code == 0, result.err
    assert "(audio, stereo, 200 samples)" in result.out.splitlines()[0]

    out = tmp_path / "run"
    result = cli("fit", tone[0], *FIT, "--max-seconds", 0.025, "--sample-rate", 4000, "--out", out)
    assert result.code == 0, result.err
    notes = note_lines(result.err)
    assert any("cropped to the first 200 of 400 samples" in n for n in notes), notes
    assert any("resampled from 8000 Hz to 4000 Hz (200 -> 100 samples)" in n for n in notes), notes
    metrics = read_json(out / "metrics.json")
    assert any(n.startswith("cropped") for n in metrics["notes"])
    assert any(n.startswith("resampled") for n in metrics["notes"])
    config = read_json(out / "config.json")
    assert config["signal"]["shape"] == [2, 100]
    assert config["signal"]["meta"]["sample_rate"] == 4000
    rate, data = wavfile.read(out / "reconstruction.wav")
    assert rate == 4000 and data.shape == (100, 2)


def test_loading_notes_are_printed_once(cli, tone, tmp_path):
    result = cli("fit", tone[0], *FIT, "--steps", 5, "--max-seconds", 0.025, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    cropped = [n for n in note_lines(result.err) if "cropped" in n]
    assert len(cropped) == 1, cropped


# ---------------------------------------------------------------------------------------------
# Volumes


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("volume")
    array = smooth_volume((12, 12, 12))
    np.save(folder / "blob.npy", array)
    out = folder / "run"
    result = run_cli("fit", folder / "blob.npy", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    return out, array


def test_volume_npy_fit_writes_reconstruction_in_original_units(volume_run):
    out, array = volume_run
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "volume"
    assert config["signal"]["shape"] == [1, 12, 12, 12]
    assert config["in_features"] == 3 and config["out_features"] == 1
    assert config["signal"]["value_offset"] == pytest.approx(-3.0)
    assert config["signal"]["value_scale"] == pytest.approx(8.0)
    recon = np.load(out / "reconstruction.npy")
    assert recon.shape == array.shape and recon.dtype == np.float32
    assert recon.min() >= -3.0 - 1e-5 and recon.max() <= 5.0 + 1e-5
    metrics = read_json(out / "metrics.json")
    # Back in [0, 1] the reconstruction scores the PSNR metrics.json reports.
    assert unit_psnr((recon + 3.0) / 8.0, (array + 3.0) / 8.0) == pytest.approx(metrics["psnr"], abs=1e-3)
    assert {"psnr", "psnr_train", "psnr_test"} <= set(metrics)
    assert (out / "report.html").stat().st_size > 1000
    assert not (out / "reconstruction.nii.gz").exists()


def test_volume_render_size(cli, volume_run):
    out, _ = volume_run
    result = cli("render", out, "--size", "8x8x8", "--device", "cpu")
    assert result.code == 0, result.err
    rendered = np.load(out / "render-8x8x8.npy")
    assert rendered.shape == (8, 8, 8)
    assert rendered.min() >= -3.0 - 1e-5 and rendered.max() <= 5.0 + 1e-5
    result = cli("render", out, "--size", "6x8x10", "--device", "cpu")
    assert result.code == 0, result.err
    assert np.load(out / "render-6x8x10.npy").shape == (6, 8, 10)


def test_volume_render_at_native_size_matches_reconstruction(cli, volume_run, tmp_path):
    out, _ = volume_run
    result = cli("render", out, "--out", tmp_path / "same.npy", "--device", "cpu")
    assert result.code == 0, result.err
    np.testing.assert_allclose(np.load(tmp_path / "same.npy"), np.load(out / "reconstruction.npy"),
                               atol=1e-4)


@pytest.mark.parametrize("channels", [
    2,
    3,
])
def test_multichannel_volume(cli, tmp_path, channels):
    """A 4-D array (D, H, W, C) is a C-channel volume, written back channels last."""
    base = smooth_volume((8, 8, 8))
    parts = [base, smooth_volume((8, 8, 8), 0.0, 1.0)[::-1], base[:, ::-1]]
    array = np.stack(parts[:channels], axis=-1)
    np.save(tmp_path / "multi.npy", array)
    out = tmp_path / "run"
    result = cli("fit", tmp_path / "multi.npy", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    config = read_json(out / "config.json")
    assert config["signal"]["shape"] == [channels, 8, 8, 8]
    assert config["signal"]["mode"] == f"{channels}ch"
    assert config["out_features"] == channels
    recon = np.load(out / "reconstruction.npy")
    assert recon.shape == (8, 8, 8, channels)
    assert recon.min() >= -3.0 - 1e-5 and recon.max() <= 5.0 + 1e-5
    metrics = read_json(out / "metrics.json")
    assert unit_psnr((recon + 3.0) / 8.0, (array + 3.0) / 8.0) == pytest.approx(metrics["psnr"], abs=1e-3)


def test_kind_chooses_how_an_array_is_read(cli, tmp_path):
    """A (16, 16, 3) array fits as an RGB image with --kind image, and is a 16 x 16 x 3 volume with
    --kind volume; --kind audio does not apply to arrays."""
    yy, xx = np.mgrid[0:16, 0:16] / 16
    array = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * xx), 0.5 + 0.4 * np.cos(2 * np.pi * yy), xx * yy], -1)
    np.save(tmp_path / "rgb.npy", array)
    out = tmp_path / "run"
    result = cli("fit", tmp_path / "rgb.npy", "--kind", "image", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "image"
    assert config["signal"]["shape"] == [3, 16, 16]
    assert config["in_features"] == 2 and config["out_features"] == 3
    assert "ssim" in result.json() and result.json()["ssim"] is not None
    assert (out / "reconstruction.png").is_file()
    assert np.load(out / "reconstruction.npy").shape == (16, 16, 3)

    as_volume = cli("spectrum", tmp_path / "rgb.npy", "--kind", "volume")
    assert as_volume.code == 0, as_volume.err
    assert "(volume, L, 16 x 16 x 3)" in as_volume.out.splitlines()[0]

    refused = cli("spectrum", tmp_path / "rgb.npy", "--kind", "audio")
    assert_single_error(refused.code, refused.out, refused.err)
    assert "--kind" in refused.err and "audio" in refused.err


def test_nifti_round_trip_through_fit(cli, tmp_path):
    """A NIfTI volume fits and comes back as reconstruction.nii.gz with its affine, in its units."""
    array = smooth_volume((10, 10, 10), 100.0, 900.0).astype(np.float32)
    affine = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, 5], [0, 0, 3.0, 1], [0, 0, 0, 1]])
    nibabel.save(nibabel.Nifti1Image(array, affine), tmp_path / "head.nii.gz")
    out = tmp_path / "run"
    result = cli("fit", tmp_path / "head.nii.gz", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "volume" and config["signal"]["name"] == "head"
    assert config["signal"]["meta"]["spacing"] == [2.0, 2.0, 3.0]
    assert not (out / "reconstruction.npy").exists()
    image = nibabel.load(out / "reconstruction.nii.gz")
    data = np.asarray(image.dataobj)
    assert data.shape == (10, 10, 10)
    np.testing.assert_allclose(image.affine, affine)
    assert data.min() >= 100.0 - 1e-3 and data.max() <= 900.0 + 1e-3
    metrics = read_json(out / "metrics.json")
    assert unit_psnr((data - 100) / 800, (array - 100) / 800) == pytest.approx(metrics["psnr"], abs=1e-3)


def test_uint8_volume_npy_reconstruction_in_original_units(cli, tmp_path):
    array = np.round(smooth_volume((10, 10, 10), 0.0, 255.0)).astype(np.uint8)
    np.save(tmp_path / "bytes.npy", array)
    out = tmp_path / "run"
    result = cli("fit", tmp_path / "bytes.npy", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    recon = np.load(out / "reconstruction.npy")
    assert recon.shape == array.shape
    # the reconstruction scores the reported PSNR only when read in the file's 0..255 units
    assert unit_psnr(recon / 255.0, array / 255.0) == pytest.approx(read_json(out / "metrics.json")["psnr"],
                                                                    abs=0.01)


# ---------------------------------------------------------------------------------------------
# Video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    pixels = moving_gradient()
    return encode_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", pixels), pixels


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory, clip) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("video_run") / "run"
    result = run_cli("fit", clip[0], "--model", "siren", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    return out, result


def test_video_fit_siren_writes_mp4_and_frame_psnrs(video_run, clip):
    out, result = video_run
    metrics = read_json(out / "metrics.json")
    frames = metrics["psnr_frames"]
    assert len(frames) == FRAMES and all(isinstance(v, float) for v in frames)
    assert metrics["psnr_frames_min"] == pytest.approx(min(frames))
    # the clip's MSE is the mean of the frames' MSEs (all frames have the same size)
    mean_mse = np.mean([10 ** (-v / 10) for v in frames])
    assert -10 * np.log10(mean_mse) == pytest.approx(metrics["psnr"], abs=1e-6)
    assert result.json()["psnr_frames"] == pytest.approx(frames)
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "video"
    assert config["signal"]["shape"] == [3, FRAMES, HEIGHT, WIDTH]
    assert config["signal"]["meta"]["fps"] == pytest.approx(25.0)
    assert config["in_features"] == 3 and config["out_features"] == 3
    decoded = decode_mp4(out / "reconstruction.mp4")
    assert decoded.shape == (FRAMES, HEIGHT, WIDTH, 3)
    # H.264 at crf 18 changes a poor (~10-20 dB) reconstruction by far less than 2 dB
    assert unit_psnr(decoded / 255.0, clip[1] / 255.0) == pytest.approx(metrics["psnr"], abs=2.0)
    assert (out / "report.html").stat().st_size > 1000


def test_video_fit_resfields_gets_the_clip_frame_count(cli, clip, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", clip[0], "--model", "resfields", *FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    config = read_json(out / "config.json")
    assert config["model"] == "resfields"
    assert config["params"]["n_frames"] == FRAMES
    metrics = read_json(out / "metrics.json")
    assert len(metrics["psnr_frames"]) == FRAMES
    assert decode_mp4(out / "reconstruction.mp4").shape == (FRAMES, HEIGHT, WIDTH, 3)
    # the per-frame residual coefficients make the model bigger than a plain SIREN of the same size
    assert metrics["params"] > 353


def test_video_spectrum_frames_and_3d_both_select(cli, clip):
    """select compares mean per-frame spectra by default and the 3-D spectrum with --video-spectrum
    3d: both run, and they use different spectra (per-frame: side 16 -> 8 bins; 3-D: side 4 -> 2)."""
    tables = {}
    for mode, bins in (("frames", 8), ("3d", 2)):
        result = cli("select", clip[0], "--model", "siren", *SELECT, "--grid", "10,30", "--inits", 2,
                     "--video-spectrum", mode, "--json")
        assert result.code == 0, result.err
        document = result.json()
        assert document["bins"] == bins, mode
        assert [row["value"] for row in document["table"]] == [10.0, 30.0]
        assert document["chosen"] in (10.0, 30.0)
        tables[mode] = [row["w_mean"] for row in document["table"]]
    assert tables["frames"] != tables["3d"]


def test_spectrum_command_follows_video_spectrum(cli, clip):
    frames = cli("spectrum", clip[0], "--video-spectrum", "frames", "--json")
    three_d = cli("spectrum", clip[0], "--video-spectrum", "3d", "--json")
    assert frames.code == 0 and three_d.code == 0
    assert three_d.json()["bins"] == 2
    assert frames.json()["bins"] == 8  # per-frame 16 x 24 spectra, as `select` uses


def test_video_render_size(cli, video_run):
    out, _ = video_run
    result = cli("render", out, "--size", f"{WIDTH}x{HEIGHT}", "--device", "cpu")
    assert result.code == 0, result.err
    decoded = decode_mp4(out / f"render-{WIDTH}x{HEIGHT}.mp4")
    assert decoded.shape == (FRAMES, HEIGHT, WIDTH, 3)
    result = cli("render", out, "--size", "12x8", "--device", "cpu")
    assert result.code == 0, result.err
    assert decode_mp4(out / "render-12x8.mp4").shape == (FRAMES, 8, 12, 3)


def test_video_frame_step_and_max_frames(cli, clip):
    result = cli("spectrum", clip[0], "--frame-step", 2)
    assert result.code == 0, result.err
    assert "(video, RGB, 2 frames of 24 x 16)" in result.out.splitlines()[0]
    result = cli("spectrum", clip[0], "--max-frames", 3)
    assert result.code == 0, result.err
    assert "(video, RGB, 3 frames of 24 x 16)" in result.out.splitlines()[0]


# ---------------------------------------------------------------------------------------------
# Shapes


@pytest.fixture(scope="module")
def ball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shape") / "ball.obj"
    ball_mesh().export(path)
    return path


@pytest.fixture(scope="module")
def shape_run(tmp_path_factory: pytest.TempPathFactory, ball) -> tuple[Path, Result]:
    """Occupancy fit (the default target): about 8-10 s."""
    out = tmp_path_factory.mktemp("shape_run") / "run"
    result = run_cli("fit", ball, *SHAPE_FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    return out, result


def _check_shape_metrics(metrics: dict) -> None:
    for key in ("iou_uniform", "iou_boundary"):
        assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0, key
    assert metrics["psnr"] is None and metrics["psnr_test"] is None
    assert metrics["split"]["train_samples"] == 2**18


def _check_mesh_in_original_frame(path: Path) -> None:
    mesh = trimesh.load(path, force="mesh")
    assert len(mesh.faces) > 0
    vertices = np.asarray(mesh.vertices)
    assert np.all(np.abs(vertices - BALL_CENTER) <= BALL_HALF_DOMAIN + 1e-6)


def test_shape_occupancy_fit(shape_run):
    out, result = shape_run
    metrics = read_json(out / "metrics.json")
    _check_shape_metrics(metrics)
    assert result.json()["iou_boundary"] == pytest.approx(metrics["iou_boundary"])
    config = read_json(out / "config.json")
    assert config["signal"]["kind"] == "shape" and config["signal"]["target"] == "occupancy"
    assert config["signal"]["watertight"] is True
    np.testing.assert_allclose(config["signal"]["center"], BALL_CENTER, atol=1e-9)
    assert config["in_features"] == 3 and config["out_features"] == 1
    assert (out / "report.html").stat().st_size > 1000
    # a surface was extracted (Chamfer measured, mesh written) or neither
    if metrics["chamfer"] is None:
        assert not (out / "reconstruction.ply").exists()
    else:
        assert metrics["chamfer"] > 0
        _check_mesh_in_original_frame(out / "reconstruction.ply")


def test_shape_render_writes_ply_or_errors_cleanly(cli, shape_run):
    out, _ = shape_run
    result = cli("render", out, "--size", 32, "--device", "cpu")
    path = out / "render-32.ply"
    if result.code == 0:
        assert str(path) in result.out and "32^3" in result.out
        _check_mesh_in_original_frame(path)
    else:
        assert_single_error(result.code, result.out, result.err)
        assert not path.exists()


def test_shape_render_without_surface_is_one_error(cli, shape_run, tmp_path):
    """A model whose output is constant (no zero crossing) has no surface: render exits 2 with one
    error line and writes nothing."""
    from safetensors.torch import load_file, save_file

    out, _ = shape_run
    run = tmp_path / "flat"
    shutil.copytree(out, run)
    state = load_file(str(run / "model.safetensors"))
    state["last.weight"] = torch.zeros_like(state["last.weight"])
    state["last.bias"] = torch.full_like(state["last.bias"], 5.0)
    save_file(state, str(run / "model.safetensors"))
    before = tree(run)
    result = cli("render", run, "--size", 16, "--device", "cpu")
    assert_single_error(result.code, result.out, result.err)
    assert tree(run) == before


def test_shape_sdf_fit(cli, ball, tmp_path):
    """--shape-target sdf (L1 on signed distance): about 8-10 s."""
    out = tmp_path / "run"
    result = cli("fit", ball, "--shape-target", "sdf", *SHAPE_FIT, "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = read_json(out / "metrics.json")
    _check_shape_metrics(metrics)
    config = read_json(out / "config.json")
    assert config["signal"]["target"] == "sdf"
    if metrics["chamfer"] is not None:
        _check_mesh_in_original_frame(out / "reconstruction.ply")


def test_open_mesh_refused_unless_allow_open(cli, tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    open_mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[10:])
    path = tmp_path / "holey.obj"
    open_mesh.export(path)
    refused = cli("spectrum", path, "--json")
    assert_single_error(refused.code, refused.out, refused.err)
    assert "not watertight" in refused.err
    accepted = cli("spectrum", path, "--allow-open", "--json")
    assert accepted.code == 0, accepted.err
    spectrum = accepted.json()["spectrum"]
    assert accepted.json()["bins"] == 32 and sum(spectrum) == pytest.approx(1.0)


def test_mesh_without_faces_is_one_error(cli, tmp_path):
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    result = cli("spectrum", path)
    assert_single_error(result.code, result.out, result.err)
    assert "no faces" in result.err or "no triangle" in result.err


# ---------------------------------------------------------------------------------------------
# Malformed inputs and refused options


def _truncated_wav(keep: int):
    """A 44-byte-header stereo 16-bit wav cut after ``keep`` bytes."""

    def make(t: Path) -> Path:
        path = t / "cut.wav"
        write_tone(path)
        data = path.read_bytes()
        assert data[36:40] == b"data" and len(data) == 44 + SAMPLES * 4
        path.write_bytes(data[:keep])
        return path

    return make


def _audio_only_mp4(t: Path) -> Path:
    path = t / "sound.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _faceless_mesh(t: Path) -> Path:
    path = t / "cloud.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    return path


def _open_mesh(t: Path) -> Path:
    mesh = trimesh.creation.icosphere(subdivisions=1)
    path = t / "open.obj"
    trimesh.Trimesh(mesh.vertices, mesh.faces[3:]).export(path)
    return path


def _empty_npy(shape: tuple[int, ...]):
    def make(t: Path) -> Path:
        np.save(t / "empty.npy", np.zeros(shape))
        return t / "empty.npy"

    return make


MALFORMED = {
    "wav cut between frames": (_truncated_wav(44 + 4 * 100), "truncated"),
    "wav cut inside a frame": (_truncated_wav(44 + 4 * 100 + 2), "cut.wav"),
    "mp4 without video stream": (_audio_only_mp4, "no video stream"),
    "mesh without faces": (_faceless_mesh, "no faces"),
    "open mesh": (_open_mesh, "not watertight"),
    "empty 1-D npy": (_empty_npy((0,)), "empty.npy"),
    "empty 2-D npy": (_empty_npy((0, 0)), "empty.npy"),
    "empty image-shaped npy": (_empty_npy((0, 8, 3)), "empty"),
    "empty volume npy": (_empty_npy((0, 8, 8)), "empty"),
    "empty 4-D npy": (_empty_npy((4, 0, 4, 2)), "empty"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_inputs_fail_cleanly_through_fit(cli, tmp_path, monkeypatch, case):
    """fit on a bad file: exit 2, one `error:` line naming the problem, and no run directory."""
    make, message = MALFORMED[case]
    path = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    out = tmp_path / "run"
    result = cli("fit", path, *FIT, "--steps", 3, "--out", out)
    assert_single_error(result.code, result.out, result.err)
    assert message in result.err
    assert not out.exists()
    assert tree(tmp_path) == before


@pytest.fixture(scope="module")
def inputs(tone, clip, ball) -> dict[str, Path]:
    return {"audio": tone[0], "video": clip[0], "shape": ball}


REFUSED = {
    "lattice split on audio": ("audio", ["--split", "lattice"], "lattice"),
    "lattice split on video": ("video", ["--split", "lattice"], "lattice"),
    "bogus shape target": ("shape", ["--shape-target", "bogus"], "--shape-target"),
    "bogus video spectrum": ("video", ["--video-spectrum", "bogus"], "--video-spectrum"),
    "frame step 0": ("video", ["--frame-step", 0], "--frame-step"),
    "max frames 0": ("video", ["--max-frames", 0], "max_frames"),
    "negative max seconds": ("audio", ["--max-seconds=-1"], "max_seconds"),
    "negative sample rate": ("audio", ["--sample-rate=-8000"], "sample rate"),
    "zero sample rate": pytest.param(
        "audio", ["--sample-rate", 0], "sample rate"),
}


@pytest.mark.parametrize(("kind", "options", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_refused_options(cli, tmp_path, monkeypatch, inputs, kind, options, message):
    """Options that do not apply are refused before any work: exit 2, one line, nothing written."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    result = cli("fit", inputs[kind], *FIT, "--steps", 3, *options, "--out", out)
    assert_single_error(result.code, result.out, result.err)
    assert message in result.err
    assert not out.exists() and tree(tmp_path) == set()


@pytest.mark.parametrize("option", [["--shape-target", "bogus"], ["--video-spectrum", "bogus"],
                                    ["--frame-step", 0]])
def test_refused_options_in_select(cli, inputs, option):
    result = cli("select", inputs["video" if option[0] != "--shape-target" else "shape"], "--model", "siren",
                 *SELECT, "--grid", "10,30", "--inits", 2, *option)
    assert_single_error(result.code, result.out, result.err)
    assert option[0] in result.err


# ---------------------------------------------------------------------------------------------
# Real files (../shared/data)


@pytest.mark.shared_data
def test_real_files_have_spectra(cli, shared_data):
    """spectrum on the shared recording, clip and MRI template, shrunk by the loading options."""
    cases = [
        (["audio/bach.wav", "--max-seconds", 0.05, "--sample-rate", 8000], "(audio,"),
        (["video/bikes.mp4", "--max-frames", 2, "--resize", 16], "(video, RGB, 2 frames of"),
        (["volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", "--resize", 16], "(volume,"),
    ]
    for (name, *options), headline in cases:
        result = cli("spectrum", shared_data / name, *options, "--json")
        assert result.code == 0, (name, result.err)
        assert sum(result.json()["spectrum"]) == pytest.approx(1.0)
        text = cli("spectrum", shared_data / name, *options)
        assert headline in text.out.splitlines()[0], text.out.splitlines()[0]


# ---------------------------------------------------------------------------------------------
# render --out with a suffix the type cannot be written as


@pytest.mark.parametrize(("run", "name"), [
    ("audio_run", "song.mp3"),
    ("volume_run", "slices.png"),
    ("video_run", "clip.png"),
    ("shape_run", "surface.stl"),
])
def test_render_refuses_an_out_suffix_it_cannot_write(cli, request, tmp_path, run, name):
    run_dir = request.getfixturevalue(run)[0]
    target = tmp_path / name
    size = ["--size", 16] if run == "shape_run" else []  # a small marching-cubes grid
    result = cli("render", run_dir, "--out", target, *size, "--device", "cpu")
    assert_single_error(result.code, result.out, result.err)
    assert not target.exists() and tree(tmp_path) == set()


def test_sigmoid_output_model_fits_occupancy_as_probabilities(cli, ball, tmp_path):
    """A ReLU MLP (sigmoid output, values in [0, 1]) learns the ball's occupancy: its outputs are
    probabilities with the surface at 0.5, so the fit finds a surface and a high IoU."""
    out = tmp_path / "run"
    result = cli("fit", ball, "--model", "ff-gaussian", "--set", "sigma=1", "--set", "width=32",
                 "--compile", "off", "--device", "cpu", "--steps", 60, "--lr", "1e-2", "--eval-every", 30,
                 "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = read_json(out / "metrics.json")
    assert metrics["chamfer"] is not None and (out / "reconstruction.ply").is_file()
    assert metrics["iou_uniform"] > 0.8, metrics["iou_uniform"]
