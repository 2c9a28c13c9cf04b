"""Hostile run folders and unbounded renders: `specfit render` refuses them up front, in one line.

Tiny real runs (an image, an audio clip, a volume, a video) are fitted once per module. Each test
renders a corrupted copy of one, or asks for an absurd size, and checks the CLI contract: exit
code 2, exactly one stderr line ``error: ...``, no traceback, nothing written. The last tests
check that renders stream: their Python allocations stay far below the size of what they write.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from helpers import assert_single_error, tree
from PIL import Image
from safetensors.torch import load_file, save_file
from scipy.io import wavfile

from specfit.cli.main import main
from specfit.runs.folder import load_model

FIT = ["--no-fresh", "--steps", "2", "--set", "width=16", "--set", "hidden_layers=1", "--compile", "off",
       "--device", "cpu"]
AUDIO_RATE, AUDIO_SAMPLES = 8000, 512
VIDEO_FRAMES = 32
AUDIO_RENDER = 1_600_000  # samples of the streamed audio render


def _fit(source: Path, out: Path, *options: str) -> Path:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["fit", str(source), *FIT, *options, "--out", str(out)])
    assert code == 0, stderr.getvalue()
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SIREN fitted for 2 steps to a 16 x 16 RGB PNG."""
    folder = tmp_path_factory.mktemp("image")
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "noise.png")
    return _fit(folder / "noise.png", folder / "run")


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SIREN fitted to 512 samples of a 16-bit mono tone at 8 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    tone = np.round(12000 * np.sin(np.arange(AUDIO_SAMPLES) * 0.05)).astype(np.int16)
    wavfile.write(folder / "tone.wav", AUDIO_RATE, tone)
    return _fit(folder / "tone.wav", folder / "run")


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SIREN fitted to an 8 x 8 x 8 float volume in [-3, 5]."""
    folder = tmp_path_factory.mktemp("volume")
    np.save(folder / "vol.npy", np.random.default_rng(1).uniform(-3, 5, (8, 8, 8)).astype(np.float32))
    return _fit(folder / "vol.npy", folder / "run", "--kind", "volume")


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SIREN fitted to a 32-frame 8 x 8 clip."""
    pytest.importorskip("av")
    from specfit.signals.video import write_video

    folder = tmp_path_factory.mktemp("video")
    frames = torch.rand(3, VIDEO_FRAMES, 8, 8, generator=torch.Generator().manual_seed(2))
    write_video(folder / "clip.mp4", frames, fps=25)
    return _fit(folder / "clip.mp4", folder / "run")


def _text(text: str | bytes) -> Callable[[Path], Path]:
    """Replace the copy's config.json with ``text``."""
    def corrupt(run: Path) -> Path:
        (run / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        return run
    return corrupt


def _edit(change: Callable[[dict], object]) -> Callable[[Path], Path]:
    """Apply ``change`` to the copy's parsed config.json."""
    def corrupt(run: Path) -> Path:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
        return run
    return corrupt


def _reshaped_weights(run: Path) -> Path:
    """The first tensor of model.safetensors grown by one along every axis."""
    state = load_file(run / "model.safetensors")
    name = next(iter(state))
    state[name] = torch.zeros([n + 1 for n in state[name].shape])
    save_file(state, run / "model.safetensors")
    return run


def _renamed(name: str) -> Callable[[Path], Path]:
    def corrupt(run: Path) -> Path:
        return run.rename(run.with_name(name))
    return corrupt


def _without(name: str) -> Callable[[Path], Path]:
    def corrupt(run: Path) -> Path:
        (run / name).unlink()
        return run
    return corrupt


HOSTILE = {
    "config a number": (_text("42"), "the config must be a mapping"),
    "config a string": (_text('"a run"'), "the config must be a mapping"),
    "config a list": (_text("[1, 2, 3]"), "the config must be a mapping"),
    "config nested 100000 deep": (_text("[" * 100000 + "]" * 100000), "too deeply"),
    "config not UTF-8": (_text(b'{"model": "\xff"}'), "not UTF-8"),
    "config over 1 MB": (_text(" " * (1 << 20) + "{}"), "larger than"),
    "config with a 5000-digit number": (_text('{"format": ' + "9" * 5000 + "}"), "not valid JSON"),
    "format of another version": (_edit(lambda c: c.update(format=2)), "format must be 1"),
    "unknown model": (_edit(lambda c: c.update(model="nope")), "unknown model 'nope'"),
    "params a list": (_edit(lambda c: c.update(params=[16, 1])), "params must be a mapping"),
    "params holding a list": (_edit(lambda c: c["params"].update(width=[16])), "params['width']"),
    "unknown param": (_edit(lambda c: c["params"].update(bogus=1)), "unknown knob or parameter 'bogus'"),
    "ill-typed param": (_edit(lambda c: c["params"].update(width="abc")), "width='abc' is not a valid"),
    "param below its minimum": (_edit(lambda c: c["params"].update(width=0)), "below its minimum"),
    "negative in_features": (_edit(lambda c: c.update(in_features=-2)), "in_features must be a whole number"),
    "in_features of another kind": (_edit(lambda c: c.update(in_features=3)), "image runs have 2"),
    "out_features a float": (_edit(lambda c: c.update(out_features=3.0)), "out_features must be"),
    "value_range unknown": (_edit(lambda c: c.update(value_range="both")), "value_range must be one of"),
    "coordinates unknown": (_edit(lambda c: c.update(coordinates="polar")), "coordinates must be one of"),
    "no signal section": (_edit(lambda c: c.pop("signal")), "lacks 'signal'"),
    "signal a list": (_edit(lambda c: c.update(signal=[3, 16, 16])), "signal must be a mapping"),
    "signal kind unknown": (_edit(lambda c: c["signal"].update(kind="smell")), "signal.kind must be one of"),
    "signal shape of two axes": (_edit(lambda c: c["signal"].update(shape=[3, 16])), "signal.shape must be"),
    "signal shape negative": (_edit(lambda c: c["signal"].update(shape=[3, -16, 16])), "signal.shape must"),
    "signal shape of other channels": (_edit(lambda c: c["signal"].update(shape=[4, 16, 16])), "channels"),
    "signal offset NaN": (_edit(lambda c: c["signal"].update(value_offset=float("nan"))), "value_offset"),
    "signal meta a list": (_edit(lambda c: c["signal"].update(meta=[])), "signal.meta must be a mapping"),
    "weights of another shape": (_reshaped_weights, "does not match its config"),
    "staging copy .run.partial-123": (_renamed(".run.partial-123"), "staging folder"),
    "staging copy .run.old-456": (_renamed(".run.old-456"), "staging folder"),
    "no metrics.json": (_without("metrics.json"), "lacks metrics.json"),
    "no model.safetensors": (_without("model.safetensors"), "lacks model.safetensors"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_render_refuses_a_hostile_run_folder(cli, image_run, tmp_path, case):
    """Each corruption of a real run is one `error:` line naming the problem; nothing is written."""
    corrupt, message = HOSTILE[case]
    run = corrupt(shutil.copytree(image_run, tmp_path / "run"))
    before = tree(tmp_path)
    result = cli("render", run, "--device", "cpu")
    assert_single_error(result.code, result.out, result.err)
    assert message in result.err, result.err
    assert tree(tmp_path) == before


def test_weight_mismatch_names_the_tensor_and_counts(cli, image_run, tmp_path):
    """A weights file of another model names its first mismatching tensor and the number of them."""
    run = shutil.copytree(image_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["params"]["width"] = 8  # every layer touching the hidden width changes shape
    (run / "config.json").write_text(json.dumps(config))
    result = cli("render", run, "--device", "cpu")
    assert_single_error(result.code, result.out, result.err)
    assert "has shape" in result.err and "mismatches)" in result.err, result.err


ABSURD = {
    "video 32768 x 32768": ("video_run", "32768x32768", "a 32768 x 32768 x 32-frame video is 1.0e+11 values"),
    "volume 2048^3": ("volume_run", "2048x2048x2048", "a 2048 x 2048 x 2048 volume is 8.6e+09 values"),
    "image 32768 x 32768 RGB": ("image_run", "32768x32768", "a 32768 x 32768 RGB image is 3.2e+09 values"),
    "audio 10^9 samples": ("audio_run", "1000000000", "1000000000 samples at 15625000000 Hz"),
}


@pytest.mark.parametrize("case", list(ABSURD))
def test_absurd_render_sizes_are_refused_before_the_model_runs(cli, request, tmp_path, monkeypatch, case):
    """A render beyond the limit (or the WAV format) is refused with its size, without evaluating."""
    name, size, message = ABSURD[case]
    run = shutil.copytree(request.getfixturevalue(name), tmp_path / "run")
    before = tree(tmp_path)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was evaluated")

    monkeypatch.setattr(torch.nn.Module, "__call__", never)
    result = cli("render", run, "--size", size, "--device", "cpu")
    assert_single_error(result.code, result.out, result.err)
    assert message in result.err, result.err
    assert tree(tmp_path) == before


def _expected_audio(run: Path, samples: int) -> np.ndarray:
    """The 16-bit samples of the audio model on an independent ``linspace`` grid."""
    model, _ = load_model(run)
    with torch.no_grad():
        values = model(torch.linspace(-1, 1, samples)[:, None]).double().numpy()[:, 0]
    return np.clip(np.round(values * 32768), -32768, 32767)


def _expected_volume(run: Path, side: int) -> np.ndarray:
    """The volume model in original units on an independent ``linspace`` grid of ``side^3``."""
    model, config = load_model(run)
    axis = torch.linspace(-1, 1, side)
    coords = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.no_grad():
        unit = ((model(coords).double() + 1) / 2).clamp(0, 1).numpy().reshape(side, side, side)
    signal = config["signal"]
    return unit * signal["value_scale"] + signal["value_offset"]


def _check_audio(run: Path, path: Path) -> None:
    rate, written = wavfile.read(path)
    assert rate == AUDIO_RATE * AUDIO_RENDER // AUDIO_SAMPLES and written.shape == (AUDIO_RENDER,)
    assert np.abs(written - _expected_audio(run, AUDIO_RENDER)).max() <= 1


def _check_volume(run: Path, path: Path) -> None:
    written = np.load(path) if path.suffix == ".npy" else np.asarray(nibabel.load(path).dataobj)
    np.testing.assert_allclose(written, _expected_volume(run, VOLUME_RENDER), atol=1e-4)


def _check_video(run: Path, path: Path) -> None:
    from specfit.signals.video import load_video

    assert load_video(path).values.shape == (3, VIDEO_FRAMES, 128, 256)


# Large enough that one streamed block (16384 values, about 256 KB with its conversions) is well
# under a quarter of the output: at 64^3 (1 MiB) the block alone sat at the bound.
VOLUME_RENDER = 96
VOLUME_SIZE = f"{VOLUME_RENDER}x{VOLUME_RENDER}x{VOLUME_RENDER}"
STREAMED = {
    # run fixture, --size, output file, bytes written (uncompressed), check of the file
    "audio": ("audio_run", str(AUDIO_RENDER), "a.wav", AUDIO_RENDER * 2, _check_audio),
    "volume .npy": ("volume_run", VOLUME_SIZE, "v.npy", VOLUME_RENDER**3 * 4, _check_volume),
    "volume .nii.gz": ("volume_run", VOLUME_SIZE, "v.nii.gz", VOLUME_RENDER**3 * 4, _check_volume),
    "video": ("video_run", "256x128", "v.mp4", VIDEO_FRAMES * 128 * 256 * 3, _check_video),
}


def _peak_allocation(cli: Callable, *args: object) -> int:
    """Peak bytes allocated through Python (NumPy included; torch's allocator is not traced)."""
    tracemalloc.start()
    try:
        result = cli(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.code == 0, result.err
    return peak


@pytest.mark.parametrize("case", list(STREAMED))
def test_renders_stream_in_bounded_memory(cli, request, tmp_path, case):
    """Audio, volumes and video are written block by block (video frame by frame): rendering a
    large output allocates hardly more than rendering the signal's own small grid, and the file
    holds the model's values."""
    name, size, file_name, output_bytes, check = STREAMED[case]
    run = request.getfixturevalue(name)
    small = ["render", run, "--out", tmp_path / f"small-{file_name}", "--device", "cpu"]
    assert cli(*small).code == 0  # imports and first-call caches are not the render's
    base = _peak_allocation(cli, *small)
    large = ["render", run, "--size", size, "--out", tmp_path / file_name, "--device", "cpu"]
    peak = _peak_allocation(cli, *large)
    assert peak - base < output_bytes / 4, f"{peak - base} more bytes for a {output_bytes}-byte output"
    check(run, tmp_path / file_name)
