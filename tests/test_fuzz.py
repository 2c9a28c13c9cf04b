"""Fuzz: malformed files of every signal type and hostile run folders.

Every case must end in exit code 2 with exactly one stderr line starting ``error:``, no traceback,
and no new file anywhere in the case's folder. The cases are generated in code from small valid
files (truncated at several points, overwritten with garbage, given another type's extension,
given absurd headers) and from one real run whose config is corrupted in many ways.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL_SIREN

from specfit.cli.main import main

RNG_SEED = 20261130
Case = tuple[str, str, Callable[[Path], list[str]]]  # (class, id, make(folder) -> argv)


# --- small valid files, one per format -----------------------------------------------------------


def valid_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


def valid_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def valid_tiff() -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.arange(64, dtype=np.uint16).reshape(8, 8))
    return buffer.getvalue()


def valid_npy(shape: tuple[int, ...] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.linspace(0, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape))
    return buffer.getvalue()


def wav_header(rate: int = 8000, channels: int = 1, bits: int = 16, frames: int = 64, fmt: int = 1,
               data_bytes: int | None = None) -> bytes:
    block = channels * bits // 8
    data = block * frames if data_bytes is None else data_bytes
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits) + b"data" + struct.pack("<I", data))


def valid_wav() -> bytes:
    samples = (np.sin(np.arange(64) * 0.3) * 3000).astype("<i2")
    return wav_header() + samples.tobytes()


def valid_mp4() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for t in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 40 * t, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def nifti_header(dims: tuple[int, ...], datatype: int = 2, bitpix: int = 8) -> bytes:
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    return bytes(header) + b"\0" * 4


def valid_nifti() -> bytes:
    return gzip.compress(nifti_header((8, 8, 8)) + bytes(range(256)) * 2)


def valid_mesh(suffix: str) -> bytes:
    import trimesh

    data = trimesh.creation.icosphere(subdivisions=1).export(file_type=suffix.lstrip("."))
    return data.encode() if isinstance(data, str) else data


def png_with_header(width: int, height: int, bit_depth: int = 8, colour: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def npy_with_header(header: str) -> bytes:
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


# --- signal cases ------------------------------------------------------------------------------

VALID: dict[str, Callable[[], bytes]] = {
    ".png": valid_png, ".jpg": valid_jpeg, ".tif": valid_tiff, ".npy": valid_npy, ".wav": valid_wav,
    ".mp4": valid_mp4, ".nii.gz": valid_nifti, ".obj": lambda: valid_mesh(".obj"),
    ".ply": lambda: valid_mesh(".ply"), ".stl": lambda: valid_mesh(".stl"),
    ".off": lambda: valid_mesh(".off"), ".glb": lambda: valid_mesh(".glb"),
}
# Cut points inside each format's header or index, where no decoder can recover a signal.
CUTS: dict[str, tuple[int, ...]] = {
    ".png": (0, 1, 8, 20, 40), ".jpg": (0, 2, 10, 100), ".tif": (0, 4, 8, 40), ".npy": (0, 6, 10, 100, 200),
    ".wav": (0, 4, 12, 30, 44, 50), ".mp4": (0, 8, 24, 100), ".nii.gz": (0, 2, 10, 30),
    ".obj": (0,), ".ply": (0, 20, 200), ".stl": (0, 80, 90), ".off": (0, 3, 10), ".glb": (0, 12, 20, 100),
}
MESHES = {".obj", ".off", ".ply", ".stl", ".glb"}
IMAGES = {".png", ".jpg", ".tif"}
ABSURD: dict[str, bytes] = {
    "png-100000x100000": png_with_header(100000, 100000),
    "png16-16000x16000": png_with_header(16000, 16000, bit_depth=16),
    "png-zero-width": png_with_header(0, 8),
    "png-bad-bit-depth": png_with_header(8, 8, bit_depth=7),
    "npy-huge-shape": npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"),
    "npy-object-dtype": npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (8, 8), }"),
    "npy-negative-shape": npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-8, 8), }"),
    "npy-bad-dict": npy_with_header("{'descr': '<f4', 'shape': [__import__('os')], }"),
    "npy-complex": npy_with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (8, 8), }")
    + bytes(8 * 8 * 8),
    "npy-empty": npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }"),
    "wav-2e31-frames": wav_header(frames=2**31 - 64),
    "wav-zero-channels": wav_header(channels=0) + b"\0" * 128,
    "wav-zero-rate": wav_header(rate=0) + b"\0" * 128,
    "wav-7-bit": wav_header(bits=7) + b"\0" * 128,
    "wav-unknown-format": wav_header(fmt=0x55) + b"\0" * 128,
    "nii-5000-cubed": gzip.compress(nifti_header((5000, 5000, 5000))),
    "nii-zero-dim": gzip.compress(nifti_header((0, 8, 8))),
    "nii-negative-dim": gzip.compress(nifti_header((-8, 8, 8))),
    "nii-bad-datatype": gzip.compress(nifti_header((8, 8, 8), datatype=77) + b"\0" * 512),
}
ABSURD_SUFFIX = {"png": ".png", "png16": ".png", "npy": ".npy", "wav": ".wav", "nii": ".nii.gz"}


def _suffix_of(case_id: str) -> str:
    return ABSURD_SUFFIX[case_id.split("-")[0]]


def signal_cases() -> list[Case]:
    rng = np.random.default_rng(RNG_SEED)
    cases: list[Case] = []

    def file_case(klass: str, case_id: str, suffix: str, data: Callable[[], bytes]) -> None:
        def make(folder: Path) -> list[str]:
            path = folder / f"input{suffix}"
            path.write_bytes(data())
            return [str(path)]

        cases.append((klass, case_id, make))

    for suffix, make_valid in VALID.items():
        for cut in CUTS[suffix]:
            file_case("truncated", f"{suffix}@{cut}", suffix, lambda m=make_valid, c=cut: m()[:c])
        garbage = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        file_case("garbage", f"{suffix}-random", suffix, lambda g=garbage: g)
        file_case("garbage", f"{suffix}-text", suffix, lambda: b"hello, this is not a signal\n" * 20)
        file_case("garbage", f"{suffix}-zeros", suffix, lambda: b"\0" * 4096)
        for other, make_other in VALID.items():
            if other != suffix and other.split(".")[-1] != suffix.split(".")[-1]:
                if {suffix, other} <= MESHES or {suffix, other} <= IMAGES:
                    continue  # read by content, another mesh or image format is still a mesh or image
                file_case("wrong extension", f"{other}-as-{suffix}", suffix, make_other)
    for case_id, data in ABSURD.items():
        file_case("absurd header", case_id, _suffix_of(case_id), lambda d=data: d)
    return cases


# --- hostile run folders ---------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CONFIG_EDITS: dict[str, Callable[[dict], object]] = {
    "number": lambda c: 3,
    "string": lambda c: "config",
    "list": lambda c: [c],
    "null": lambda c: None,
    "no-model": lambda c: {k: v for k, v in c.items() if k != "model"},
    "unknown-model": lambda c: {**c, "model": "not-a-model"},
    "model-number": lambda c: {**c, "model": 7},
    "params-list": lambda c: {**c, "params": [1, 2]},
    "params-unknown": lambda c: {**c, "params": {**c["params"], "colour": 3}},
    "params-ill-typed": lambda c: {**c, "params": {**c["params"], "width": "wide"}},
    "params-nested": lambda c: {**c, "params": {**c["params"], "width": {"a": 1}}},
    "params-huge-width": lambda c: {**c, "params": {**c["params"], "width": 10**9}},
    "params-huge-layers": lambda c: {**c, "params": {**c["params"], "hidden_layers": 100000}},
    "in-features-negative": lambda c: {**c, "in_features": -2},
    "in-features-huge": lambda c: {**c, "in_features": 10**9},
    "in-features-string": lambda c: {**c, "in_features": "two"},
    "out-features-zero": lambda c: {**c, "out_features": 0},
    "value-range-unknown": lambda c: {**c, "value_range": "sideways"},
    "no-signal": lambda c: {k: v for k, v in c.items() if k != "signal"},
    "signal-list": lambda c: {**c, "signal": [1]},
    "signal-kind-unknown": lambda c: {**c, "signal": {**c["signal"], "kind": "smell"}},
    "signal-shape-negative": lambda c: {**c, "signal": {**c["signal"], "shape": [1, -8, 8]}},
    "signal-shape-huge": lambda c: {**c, "signal": {**c["signal"], "shape": [1, 10**9, 10**9]}},
    "signal-shape-short": lambda c: {**c, "signal": {**c["signal"], "shape": [1]}},
    "signal-no-shape": lambda c: {**c, "signal": {k: v for k, v in c["signal"].items() if k != "shape"}},
    "signal-scale-nan": lambda c: {**c, "signal": {**c["signal"], "value_scale": "nan"}},
    "signal-meta-list": lambda c: {**c, "signal": {**c["signal"], "meta": []}},
    "format-future": lambda c: {**c, "format": 99},
}
RAW_CONFIGS: dict[str, bytes] = {
    "nested-100000": _nested(100000).encode(),
    "nested-object-100000": ('{"a":' * 100000 + "1" + "}" * 100000).encode(),
    "not-json": b"{model: siren",
    "binary": bytes(range(256)),
    "empty": b"",
    "huge": b'{"model": "siren", "pad": "' + b"x" * (3 << 20) + b'"}',
}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-run")
    image = folder / "tiny.png"
    image.write_bytes(valid_png())
    out = folder / "run"
    code = main(["fit", str(image), *SMALL_SIREN, "--no-fresh", "--steps", "2", "--out", str(out)])
    assert code == 0
    return out


def run_cases() -> list[Case]:
    cases: list[Case] = []

    def copy_run(folder: Path, base: Path) -> Path:
        run = folder / "run"
        shutil.copytree(base, run)
        return run

    for case_id, edit in CONFIG_EDITS.items():
        def make(folder: Path, base: Path, edit=edit) -> list[str]:
            run = copy_run(folder, base)
            config = json.loads((run / "config.json").read_text())
            (run / "config.json").write_text(json.dumps(edit(config)))
            return ["render", str(run)]

        cases.append(("hostile run folder", f"config-{case_id}", make))
    for case_id, raw in RAW_CONFIGS.items():
        def make(folder: Path, base: Path, raw=raw) -> list[str]:
            run = copy_run(folder, base)
            (run / "config.json").write_bytes(raw)
            return ["render", str(run)]

        cases.append(("hostile run folder", f"config-raw-{case_id}", make))

    def weights(data: Callable[[bytes], bytes]) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            run = copy_run(folder, base)
            path = run / "model.safetensors"
            path.write_bytes(data(path.read_bytes()))
            return ["render", str(run)]

        return make

    cases += [
        ("hostile run folder", "weights-truncated", weights(lambda b: b[: len(b) // 2])),
        ("hostile run folder", "weights-garbage", weights(lambda b: bytes(len(b)))),
        ("hostile run folder", "weights-empty", weights(lambda b: b"")),
        ("hostile run folder", "weights-huge-header", weights(lambda b: struct.pack("<Q", 2**40) + b[8:])),
    ]

    def removed(name: str) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            run = copy_run(folder, base)
            (run / name).unlink()
            return ["render", str(run)]

        return make

    def staging(name: str) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            shutil.copytree(base, folder / name)
            return ["render", str(folder / name)]

        return make

    cases += [
        ("hostile run folder", "no-metrics", removed("metrics.json")),
        ("hostile run folder", "no-weights", removed("model.safetensors")),
        ("hostile run folder", "no-config", removed("config.json")),
        ("hostile run folder", "partial-staging", staging(".run.partial-abc123")),
        ("hostile run folder", "old-staging", staging(".run.old-abc123")),
    ]
    return cases


SIGNAL_CASES = signal_cases()
RUN_CASES = run_cases()


def _expect_clean_error(argv: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p for p in folder.rglob("*"))
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err[-2000:])
    assert sorted(p for p in folder.rglob("*")) == before


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=[f"{c[0]}:{c[1]}" for c in SIGNAL_CASES])
def test_malformed_signal_file(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, make = case
    inputs = make(tmp_path)
    argv = ["fit", *inputs, *SMALL_SIREN, "--no-fresh", "--steps", "1", "--out", str(tmp_path / "out")]
    _expect_clean_error(argv, tmp_path, capsys)


@pytest.mark.parametrize("case", RUN_CASES, ids=[f"{c[0]}:{c[1]}" for c in RUN_CASES])
def test_hostile_run_folder(case: Case, base_run: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    _, _, make = case
    argv = make(tmp_path, base_run)
    _expect_clean_error(argv, tmp_path, capsys)


def test_case_counts_by_class() -> None:
    """The fuzz covers every class with several cases (the counts are reported in the docs)."""
    counts: dict[str, int] = {}
    for klass, _, _ in SIGNAL_CASES + RUN_CASES:
        counts[klass] = counts.get(klass, 0) + 1
    assert set(counts) == {"truncated", "garbage", "wrong extension", "absurd header", "hostile run folder"}
    assert min(counts.values()) >= 15
