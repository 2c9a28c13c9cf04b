"""Audio: WAV loading (sample types, channel layouts, value mapping), writing, resampling, bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tree
from scipy.io import wavfile

from specfit.errors import SpecfitError
from specfit.signals.audio import AUDIO_SUFFIXES, load_audio, resample_audio, write_audio


def _wav(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    wavfile.write(path, rate, samples)
    return path


def _read(path: Path) -> tuple[int, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete file reads without a "reached EOF" warning
        return wavfile.read(path)


def _noise(shape: tuple[int, ...], dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return rng.uniform(-1.0, 1.0, shape).astype(dtype)


def test_suffixes():
    assert AUDIO_SUFFIXES == (".wav",)


def test_int16_mono_maps_full_range_to_unit_interval(tmp_path):
    """16-bit sample x becomes (x + 32768) / 65536, so original = 2 v - 1 = x / 32768."""
    samples = np.array([-32768, -16384, 0, 16384, 32767], dtype=np.int16)
    signal = load_audio(_wav(tmp_path / "tone.wav", samples, rate=22050))
    assert signal.kind == "audio"
    assert signal.name == "tone"
    assert signal.mode == "mono"
    assert signal.values.shape == (1, 5)
    assert signal.values.dtype == torch.float32
    assert signal.bit_depth == 16
    assert (signal.value_offset, signal.value_scale) == (-1.0, 2.0)
    assert signal.meta == {"sample_rate": 22050, "dtype": "int16"}
    assert signal.source == str(tmp_path / "tone.wav")
    np.testing.assert_allclose(signal.values[0].numpy(), [0.0, 0.25, 0.5, 0.75, 65535 / 65536], atol=1e-7)
    original = signal.values.double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original[0].numpy(), samples / 32768.0, atol=1e-7)


def test_uint8_stereo_is_centred_at_128(tmp_path):
    """8-bit PCM is unsigned: 128 is silence (0.5); channels come first and keep their order."""
    left = np.array([0, 64, 128, 192, 255], dtype=np.uint8)
    right = left[::-1].copy()
    signal = load_audio(_wav(tmp_path / "s.wav", np.stack([left, right], axis=1)))
    assert signal.mode == "stereo"
    assert signal.values.shape == (2, 5)
    assert signal.bit_depth == 8
    assert signal.meta["dtype"] == "uint8"
    np.testing.assert_allclose(signal.values.numpy(), np.stack([left, right]) / 256.0, atol=1e-7)
    assert float(signal.values[0, 2]) == 0.5


def test_int32_and_float32_multichannel(tmp_path):
    """32-bit PCM is scaled by 2**31; float32 in [-1, 1] becomes (x + 1) / 2; 3 channels are '3ch'."""
    ints = _noise((50, 3), np.int32)
    signal = load_audio(_wav(tmp_path / "i32.wav", ints))
    assert (signal.mode, signal.bit_depth, signal.values.shape) == ("3ch", 32, (3, 50))
    np.testing.assert_allclose(signal.values.numpy(), (ints.T / 2.0**31 + 1) / 2, atol=1e-7)

    floats = _noise((60, 2), np.float32)
    signal = load_audio(_wav(tmp_path / "f32.wav", floats))
    assert (signal.mode, signal.bit_depth, signal.meta["dtype"]) == ("stereo", 32, "float32")
    np.testing.assert_allclose(signal.values.numpy(), (floats.T + 1) / 2, atol=1e-7)
    assert signal.notes == []


def test_float_beyond_unit_peak_is_scaled_by_the_peak(tmp_path):
    """A float file peaking at 2.5 keeps silence at 0.5 and records offset -2.5 / scale 5."""
    samples = np.array([0.0, 2.5, -1.0, 0.5], dtype=np.float32)
    signal = load_audio(_wav(tmp_path / "loud.wav", samples))
    assert signal.value_offset == pytest.approx(-2.5)
    assert signal.value_scale == pytest.approx(5.0)
    assert any("peak" in note for note in signal.notes)
    np.testing.assert_allclose(signal.values[0].numpy(), [0.5, 1.0, 0.3, 0.6], atol=1e-7)
    original = signal.values[0].double() * signal.value_scale + signal.value_offset
    np.testing.assert_allclose(original.numpy(), samples, atol=1e-6)


def test_max_seconds_crops_and_says_so(tmp_path):
    samples = _noise((1000,), np.int16)
    path = _wav(tmp_path / "long.wav", samples, rate=8000)
    signal = load_audio(path, max_seconds=0.05)
    assert signal.values.shape == (1, 400)
    np.testing.assert_allclose(signal.values[0].numpy(), (samples[:400] + 32768.0) / 65536.0, atol=1e-7)
    assert any("400 of 1000" in note for note in signal.notes)
    uncropped = load_audio(path, max_seconds=10.0)
    assert uncropped.values.shape == (1, 1000)
    assert uncropped.notes == []
    with pytest.raises(SpecfitError, match="positive"):
        load_audio(path, max_seconds=0.0)


def test_start_seconds_skips_the_beginning_then_max_seconds_keeps_the_next_seconds(tmp_path):
    samples = _noise((1000,), np.int16)
    path = _wav(tmp_path / "long.wav", samples, rate=8000)
    signal = load_audio(path, max_seconds=0.025, start_seconds=0.05)
    assert signal.values.shape == (1, 200)
    np.testing.assert_allclose(signal.values[0].numpy(), (samples[400:600] + 32768.0) / 65536.0, atol=1e-7)
    assert any("skipped the first 400 of 1000" in note for note in signal.notes)
    assert load_audio(path, start_seconds=0.1).values.shape == (1, 200)
    for start in (-0.1, 0.125):
        with pytest.raises(SpecfitError, match="start_seconds"):
            load_audio(path, start_seconds=start)


@pytest.mark.parametrize(
    "dtype, channels, bit_depth",
    [(np.int16, 1, 16), (np.int16, 2, 16), (np.uint8, 2, 8), (np.float32, 1, 32), (np.float32, 2, 32)],
)
def test_write_then_read_round_trip(tmp_path, dtype, channels, bit_depth):
    """Loading then writing at the source's bit depth reproduces the samples (float within 1e-7)."""
    shape = (300,) if channels == 1 else (300, channels)
    samples = _noise(shape, dtype, seed=channels)
    signal = load_audio(_wav(tmp_path / "in.wav", samples, rate=11025))
    out = tmp_path / "out" / "again.wav"
    out.parent.mkdir()
    write_audio(out, signal.values, signal.meta["sample_rate"], bit_depth=signal.bit_depth)
    assert tree(out.parent) == {"again.wav"}  # staged write leaves no partial file behind
    rate, written = _read(out)
    assert rate == 11025
    assert written.dtype == samples.dtype
    assert written.shape == samples.shape
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(written, samples)
    else:
        np.testing.assert_allclose(written, samples, atol=1e-7)
    again = load_audio(out)
    np.testing.assert_allclose(again.values.numpy(), signal.values.numpy(), atol=1e-7)


def test_write_defaults_to_16_bit_and_clips(tmp_path):
    """Default output is 16-bit PCM; values outside [0, 1] are clipped to full scale."""
    values = torch.tensor([[-0.5, 0.0, 0.5, 0.75, 1.0, 1.5]])
    path = tmp_path / "clip.wav"
    write_audio(path, values, 16000)
    rate, written = _read(path)
    assert (rate, written.dtype, written.shape) == (16000, np.int16, (6,))
    np.testing.assert_array_equal(written, [-32768, -32768, 0, 16384, 32767, 32767])


def test_write_undoes_a_peak_scaling(tmp_path):
    """Passing a loud float signal's offset/scale writes the original float samples back."""
    samples = np.array([0.0, 2.5, -1.0, 0.5], dtype=np.float32)
    signal = load_audio(_wav(tmp_path / "loud.wav", samples))
    out = tmp_path / "loud_out.wav"
    offset, scale = signal.value_offset, signal.value_scale
    write_audio(out, signal.values, 8000, 32, value_offset=offset, value_scale=scale)
    np.testing.assert_allclose(_read(out)[1], samples, atol=1e-6)


@pytest.mark.parametrize(
    "values, rate, bit_depth, match",
    [
        (torch.zeros(1, 10), 8000, 24, "bit depth"),
        (torch.zeros(10), 8000, 16, r"\(C, T\)"),
        (torch.zeros(1, 10), 0, 16, "sample rate"),
    ],
)
def test_write_rejects_bad_arguments(tmp_path, values, rate, bit_depth, match):
    with pytest.raises(SpecfitError, match=match):
        write_audio(tmp_path / "x.wav", values, rate, bit_depth)
    assert not (tmp_path / "x.wav").exists()


def _valid_bytes(tmp_path: Path, samples: np.ndarray) -> bytes:
    return _wav(tmp_path / "src.wav", samples).read_bytes()


BAD_FILES = {
    "empty file": lambda ok: b"",
    "cut inside the RIFF tag": lambda ok: ok[:3],
    "cut inside the fmt chunk": lambda ok: ok[:30],
    "header only": lambda ok: ok[:44],
    "cut mid-data": lambda ok: ok[: 44 + (len(ok) - 44) // 2],
    "cut mid-sample": lambda ok: ok[:-1],
    "garbage after RIFF": lambda ok: b"RIFF" + bytes(range(256)) * 2,
    "random bytes": lambda ok: np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8).tobytes(),
    "a PNG": lambda ok: b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 60,
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_malformed_wav_raises_one_line_error(tmp_path, case, dtype):
    """Truncated, foreign or garbage files raise SpecfitError naming the file, never a scipy error."""
    stereo = _noise((100, 2), dtype)
    path = tmp_path / "broken.wav"
    path.write_bytes(BAD_FILES[case](_valid_bytes(tmp_path, stereo)))
    with pytest.raises(SpecfitError) as info:
        load_audio(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


def test_truncated_data_is_reported_as_truncated(tmp_path):
    """scipy only warns when the data chunk ends early; the loader turns that into an error."""
    ok = _valid_bytes(tmp_path, _noise((200,), np.int16))
    path = tmp_path / "cut.wav"
    path.write_bytes(ok[:-100])
    with pytest.raises(SpecfitError, match="truncated"):
        load_audio(path)


def test_wav_with_no_samples(tmp_path):
    path = _wav(tmp_path / "silent.wav", np.zeros(0, dtype=np.int16))
    with pytest.raises(SpecfitError, match="no audio samples"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_wav_with_non_finite_samples(tmp_path, bad):
    samples = np.zeros(20, dtype=np.float32)
    samples[7] = bad
    path = _wav(tmp_path / "nan.wav", samples)
    with pytest.raises(SpecfitError, match="NaN or infinite") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SpecfitError, match="cannot read"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(SpecfitError, match="cannot read"):
        load_audio(tmp_path)


def test_resample_halves_the_length_and_keeps_the_waveform(tmp_path):
    """8 kHz -> 4 kHz: half the samples, a 100 Hz sine stays a 100 Hz sine, meta and notes updated."""
    t = np.arange(800) / 8000.0
    samples = (0.5 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    signal = load_audio(_wav(tmp_path / "sine.wav", samples))
    half = resample_audio(signal, 4000)
    assert half.values.shape == (1, 400)
    assert half.meta == {"sample_rate": 4000, "dtype": "float32"}
    assert signal.meta["sample_rate"] == 8000  # the input is left alone
    assert any("8000 Hz to 4000 Hz" in note for note in half.notes)
    expected = (0.5 * np.sin(2 * np.pi * 100 * np.arange(400) / 4000.0) + 1) / 2
    np.testing.assert_allclose(half.values[0, 20:-20].numpy(), expected[20:-20], atol=2e-3)


def test_resample_keeps_silence_at_the_ends(tmp_path):
    """Filtering is done on the zero-centred waveform, so silence stays exactly 0.5 to the edges."""
    signal = load_audio(_wav(tmp_path / "quiet.wav", np.zeros(441, dtype=np.int16), rate=44100))
    resampled = resample_audio(signal, 16000)
    assert resampled.values.shape == (1, 160)
    np.testing.assert_allclose(resampled.values.numpy(), 0.5, atol=1e-7)


def test_resample_to_the_same_rate_and_bad_rates(tmp_path):
    signal = load_audio(_wav(tmp_path / "a.wav", _noise((100,), np.int16)))
    assert resample_audio(signal, 8000) is signal
    with pytest.raises(SpecfitError, match="positive"):
        resample_audio(signal, 0)


@pytest.mark.shared_data
def test_bach_recording(shared_data):
    """The shared 7 s recording: mono float32 at 44.1 kHz, 308207 samples, peak exactly 1.0."""
    path = shared_data / "audio" / "bach.wav"
    signal = load_audio(path)
    assert signal.values.shape == (1, 308207)
    assert signal.meta == {"sample_rate": 44100, "dtype": "float32"}
    assert (signal.mode, signal.bit_depth, signal.name) == ("mono", 32, "bach")
    assert float(signal.values.max()) == 1.0
    _, raw = wavfile.read(path)
    np.testing.assert_allclose(signal.values[0, ::997].numpy(), (raw[::997] + 1.0) / 2.0, atol=1e-7)
    first_second = load_audio(path, max_seconds=1.0)
    assert first_second.values.shape == (1, 44100)


def test_start_seconds_is_recorded_only_when_set(tmp_path):
    """A run's loading options keep start_seconds only when it is set, so runs and grid records of
    signals loaded without it keep the JSON they had before the option existed."""
    from specfit.kinds.kind import LoadOptions
    from specfit.kinds.load import load_signal

    path = _wav(tmp_path / "long.wav", _noise((1000,), np.int16), rate=8000)
    assert "start_seconds" not in load_signal(path).load_options
    assert load_signal(path, LoadOptions(start_seconds=0.05)).load_options["start_seconds"] == 0.05
