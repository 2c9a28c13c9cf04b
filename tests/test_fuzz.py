"""Fuzz: malformed files of every signal type, hostile run folders, config files, checkpoints,
Ray addresses, output folders and task records.

Every command-line case must end in exit code 2 with exactly one stderr line starting ``error:``,
no traceback, and no new file anywhere in the case's folder. The cases are generated in code from
small valid files (truncated at several points, overwritten with garbage, given another type's
extension, given absurd headers), from one real run whose config and checkpoint are corrupted in
many ways, from config files with broken syntax or ill-typed settings, from Ray addresses where no
cluster answers (only ever on 127.0.0.1) and from output folders that hold a user's files. Task
records of a grid search that are cut short, edited or garbage are run again instead: that task
alone, with nothing else written.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import shutil
import socket
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN
from safetensors import safe_open
from safetensors.torch import save_file

from specfit.bench.executor import RECORD_MAX_BYTES, Task, run_tasks
from specfit.bench.grid import SELECT_RECORD, TRAIN_RECORD, summarize
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


# --- config files (fit --config FILE) ----------------------------------------------------------


def _tiny_config(folder: Path) -> dict:
    """A config that fits a tiny image in a second (each case breaks one thing of it)."""
    (folder / "tiny.png").write_bytes(valid_png())
    return {"signal": {"source": str(folder / "tiny.png")},
            "settings": {"model": "siren", "fresh": False, "device": "cpu",
                         "params": {"width": 8, "hidden_layers": 1}, "fit": {"steps": 1, "compile": "off"}}}


RAW_CONFIG_FILES: dict[str, tuple[str, bytes]] = {
    "toml-truncated": (".toml", b'[settings]\nmodel = "si'),
    "toml-binary": (".toml", bytes(range(256))),
    "yaml-garbage": (".yaml", b"\x00\x01: [\n\t- }"),
    "yaml-python-tag": (".yaml", b"settings: !!python/object/apply:os.system ['echo hi']\n"),
    "yaml-nested-100000": (".yaml", _nested(100000).encode()),
    "json-truncated": (".json", b'{"settings": {"model": "siren"'),
    "json-list": (".json", b"[1, 2]"),
    "json-nested-100000": (".json", _nested(100000).encode()),
    "json-not-utf8": (".json", b'{"settings": {"model": "\xff"}}'),
    "json-huge": (".json", b'{"pad": "' + b"x" * (2 << 20) + b'"}'),
    "wrong-suffix": (".txt", b"{}"),
}
CONFIG_FILE_EDITS: dict[str, Callable[[dict], None]] = {
    "unknown-field": lambda c: c.update(colour=3),
    "signal-list": lambda c: c.update(signal=[1]),
    "source-number": lambda c: c["signal"].update(source=5),
    "load-unknown": lambda c: c.update(load={"colour": 1}),
    "load-resize-text": lambda c: c.update(load={"resize": "big"}),
    "load-max-frames-fraction": lambda c: c.update(load={"max_frames": 2.5}),
    "settings-list": lambda c: c.update(settings=[1]),
    "model-unknown": lambda c: c["settings"].update(model="nope"),
    "fresh-text": lambda c: c["settings"].update(fresh="yes"),
    "seed-fraction": lambda c: c["settings"].update(seed=2.5),
    "bins-fraction": lambda c: c["settings"].update(bins=2.5, fresh=True),
    "params-list": lambda c: c["settings"].update(params=[1, 2]),
    "params-text": lambda c: c["settings"]["params"].update(width="wide"),
    "params-huge": lambda c: c["settings"]["params"].update(width=10**9),
    "steps-fraction": lambda c: c["settings"]["fit"].update(steps=2.5),
    "steps-true": lambda c: c["settings"]["fit"].update(steps=True),
    "steps-negative": lambda c: c["settings"]["fit"].update(steps=-5),
    "batch-fraction": lambda c: c["settings"]["fit"].update(batch_size=2.5),
    "fit-list": lambda c: c["settings"].update(fit=[1]),
}


def config_cases() -> list[Case]:
    cases: list[Case] = []
    for case_id, (suffix, raw) in RAW_CONFIG_FILES.items():
        def make(folder: Path, base: Path, suffix=suffix, raw=raw) -> list[str]:
            (folder / f"config{suffix}").write_bytes(raw)
            return ["fit", "--config", str(folder / f"config{suffix}"), "--out", str(folder / "out")]

        cases.append(("config file", f"raw-{case_id}", make))
    for case_id, edit in CONFIG_FILE_EDITS.items():
        def make(folder: Path, base: Path, edit=edit) -> list[str]:
            config = _tiny_config(folder)
            edit(config)
            (folder / "config.json").write_text(json.dumps(config))
            return ["fit", "--config", str(folder / "config.json"), "--out", str(folder / "out")]

        cases.append(("config file", case_id, make))

    def special(kind: str) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            path = folder / "config.toml"
            path.mkdir() if kind == "folder" else os.mkfifo(path)  # a pipe would block a plain read
            return ["fit", "--config", str(path), "--out", str(folder / "out")]

        return make

    cases += [("config file", "a-folder", special("folder")),
              ("config file", "a-named-pipe", special("fifo"))]
    return cases


# --- checkpoints (fit --resume RUN) ------------------------------------------------------------


def _checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["specfit_checkpoint"])
        return meta, {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


def _rewrite(path: Path, meta: object, tensors: dict[str, torch.Tensor]) -> None:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors, str(path), metadata=None if meta is None else {"specfit_checkpoint": text})


CheckpointEdit = Callable[[dict, dict[str, torch.Tensor]], tuple[object, dict[str, torch.Tensor]]]


def _meta(**changes: object) -> CheckpointEdit:
    return lambda meta, tensors: ({**meta, **changes}, tensors)


def _tensors(drop: str = "", **changes: Callable[[torch.Tensor], torch.Tensor]) -> CheckpointEdit:
    def edit(meta: dict, tensors: dict[str, torch.Tensor]) -> tuple[object, dict[str, torch.Tensor]]:
        kept = {name: value for name, value in tensors.items() if not (drop and name.startswith(drop))}
        return meta, {**kept, **{name.replace("__", "."): change(tensors.get(name.replace("__", ".")))
                                 for name, change in changes.items()}}

    return edit


CHECKPOINT_EDITS: dict[str, CheckpointEdit] = {
    "no-metadata": lambda meta, tensors: (None, tensors),
    "metadata-not-json": lambda meta, tensors: ("{step", tensors),
    "metadata-list": lambda meta, tensors: ([1], tensors),
    "step-text": _meta(step="two"),
    "step-negative": _meta(step=-5),
    "step-fraction": _meta(step=2.5),
    "step-beyond-steps": _meta(step=10**12),
    "history-object": _meta(history={"a": 1}),
    "history-numbers": _meta(history=[1, "x"]),
    "best-score-text": _meta(best_score="good"),
    "adam-groups-none": _meta(adam_groups=[]),
    "adam-lr-text": lambda meta, tensors: (
        {**meta, "adam_groups": [{**meta["adam_groups"][0], "lr": "fast"}]}, tensors),
    "adam-state-list": _meta(adam_state=[1]),
    "adam-moment-a-number": lambda meta, tensors: (
        {**meta, "adam_state": {**meta["adam_state"], "0": {"max_exp_avg_sq": 5}}}, tensors),
    "schedule-list": _meta(scheduler=[1]),
    "schedule-garbage": _meta(scheduler={"nope": 1}),
    "fit-list": _meta(fit=[1]),
    "fit-other-params": lambda meta, tensors: ({**meta, "fit": {**meta["fit"], "params": {"width": 1000}}},
                                               tensors),
    "model-tensor-missing": _tensors(drop="model.first.weight"),
    "model-tensor-reshaped": _tensors(model__first__weight=lambda t: torch.zeros(3, 3)),
    "model-tensor-integers": _tensors(model__first__weight=lambda t: t.to(torch.int64)),
    "best-missing": _tensors(drop="best."),
    "adam-moment-reshaped": _tensors(adam__0__exp_avg=lambda t: torch.zeros(7)),
    "adam-step-vector": _tensors(adam__0__step=lambda t: torch.zeros(3)),
    "generator-garbage": _tensors(generator=lambda t: torch.zeros(5, dtype=torch.uint8)),
}


def checkpoint_cases() -> list[Case]:
    cases: list[Case] = []

    def resume(edit: Callable[[Path], None]) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            run = folder / "run"
            shutil.copytree(base, run)
            edit(run / "checkpoint.safetensors")
            return ["fit", "--resume", str(run), "--steps", "4"]

        return make

    for case_id, edit in CHECKPOINT_EDITS.items():
        def rewrite(path: Path, edit=edit) -> None:
            _rewrite(path, *edit(*_checkpoint(path)))

        cases.append(("checkpoint", case_id, resume(rewrite)))
    for cut in (0, 7, 100):
        cut_short = resume(lambda p, c=cut: p.write_bytes(p.read_bytes()[:c]))
        cases.append(("checkpoint", f"truncated@{cut}", cut_short))
    cases.append(("checkpoint", "garbage", resume(lambda p: p.write_bytes(bytes(range(256)) * 4))))
    cases.append(("checkpoint", "a-named-pipe", resume(lambda p: (p.unlink(), os.mkfifo(p)))))
    return cases


# --- executors (grid --ray ADDRESS): nothing but 127.0.0.1 is ever contacted --------------------


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DEAD_PORT = _closed_port()
RAY_ADDRESSES = {
    "closed-port": f"127.0.0.1:{DEAD_PORT}", "closed-port-client": f"ray://127.0.0.1:{DEAD_PORT}",
    "closed-port-other-scheme": f"grpc://127.0.0.1:{DEAD_PORT}", "port-1": "127.0.0.1:1",
    "no-port": "127.0.0.1", "port-zero": "127.0.0.1:0", "port-too-large": "127.0.0.1:65536",
    "port-negative": "127.0.0.1:-1", "port-text": "127.0.0.1:ray", "no-host": f":{DEAD_PORT}",
    "empty": "", "words": "my cluster", "scheme-only": "ray://", "client-no-port": "ray://127.0.0.1",
    "trailing-garbage": f"127.0.0.1:{DEAD_PORT}x",
}


def executor_cases() -> list[Case]:
    def make(folder: Path, base: Path, address: str) -> list[str]:
        (folder / "tiny.png").write_bytes(valid_png())
        return ["grid", str(folder / "tiny.png"), *SMALL_SIREN, "--grid", "10,30", "--steps", "2",
                "--inits", "2", "--ray", address, "--out", str(folder / "grid")]

    return [("executor", case_id, lambda folder, base, a=address: make(folder, base, a))
            for case_id, address in RAY_ADDRESSES.items()]


# --- output folders: a user's files are never written into or replaced ------------------------


def _user_folder(folder: Path, *names: str) -> Path:
    mine = folder / "mine"
    mine.mkdir()
    for name in names:
        (mine / name).mkdir() if name.endswith("/") else (mine / name).write_text("my work\n")
    return mine


def output_cases() -> list[Case]:
    def tiny(folder: Path) -> str:
        (folder / "tiny.png").write_bytes(valid_png())
        return str(folder / "tiny.png")

    def grid(out: Callable[[Path, Path], Path]) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            return ["grid", tiny(folder), *SMALL_SIREN, "--grid", "10,30", "--steps", "2", "--inits", "2",
                    "--out", str(out(folder, base))]

        return make

    def bench(out: Callable[[Path, Path], Path]) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            return ["bench", "tuner", "--data", str(folder / "data"), "--page", "",
                    "--out", str(out(folder, base))]

        return make

    def odd_record(kind: str) -> Callable[[Path, Path], Path]:
        def out(folder: Path, base: Path) -> Path:
            records = folder / "records"
            records.mkdir()
            (records / "elsewhere.json").write_text("{}")
            target = records / "00-tiny-siren-0123456789-select-0123456789.json"
            {"link": lambda: target.symlink_to(records / "elsewhere.json"), "pipe": lambda: os.mkfifo(target),
             "folder": target.mkdir}[kind]()
            return records

        return out

    def a_file(folder: Path, base: Path) -> Path:
        (folder / "results").write_text("my results\n")
        return folder / "results"

    def a_run(folder: Path, base: Path) -> Path:
        shutil.copytree(base, folder / "run")
        return folder / "run"

    def render(out: Callable[[Path], str], size: str = "8x8") -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            shutil.copytree(base, folder / "run")
            return ["render", str(folder / "run"), "--size", size, "--out", out(folder)]

        return make

    def default_render_is_a_folder(folder: Path, base: Path) -> list[str]:
        shutil.copytree(base, folder / "run")
        (folder / "run" / "render-8x8.png").mkdir()
        return ["render", str(folder / "run"), "--size", "8x8"]

    def fit(out: Callable[[Path], Path], *options: str) -> Callable[[Path, Path], list[str]]:
        def make(folder: Path, base: Path) -> list[str]:
            return ["fit", tiny(folder), *SMALL_SIREN, "--no-fresh", "--steps", "1", *options,
                    "--out", str(out(folder))]

        return make

    def batch_with_a_users_summary(folder: Path, base: Path) -> list[str]:
        for name in ("a.png", "b.png"):
            (folder / name).write_bytes(valid_png())
        (_user_folder(folder) / "summary.csv").write_text("name,grade\nme,A\n")
        return ["fit", str(folder / "a.png"), str(folder / "b.png"), *SMALL_SIREN, "--no-fresh",
                "--steps", "1", "--out", str(folder / "mine")]

    def pipe(folder: Path) -> str:
        os.mkfifo(folder / "out.png")
        return str(folder / "out.png")

    def a_folder(folder: Path) -> str:
        (folder / "out.png").mkdir()
        return str(folder / "out.png")

    def records_with_a_users_file(folder: Path, base: Path) -> Path:
        mine = _user_folder(folder, "records/")
        (mine / "records" / "notes.txt").write_text("my notes\n")
        return mine

    def fit_over_a_run(folder: Path, base: Path) -> list[str]:
        return ["fit", tiny(folder), *SMALL_SIREN, "--no-fresh", "--steps", "1",
                "--out", str(a_run(folder, base))]

    return [
        ("output folder", "grid-into-a-users-files",
         grid(lambda f, b: _user_folder(f, "photo.png", "notes.txt"))),
        ("output folder", "grid-into-a-folder-with-folders",
         grid(lambda f, b: _user_folder(f, "a.json", "sub/"))),
        ("output folder", "grid-into-a-run", grid(a_run)),
        ("output folder", "grid-onto-a-file", grid(a_file)),
        ("output folder", "grid-record-a-link", grid(odd_record("link"))),
        ("output folder", "grid-record-a-named-pipe", grid(odd_record("pipe"))),
        ("output folder", "grid-record-a-folder", grid(odd_record("folder"))),
        ("output folder", "bench-into-a-users-files", bench(lambda f, b: _user_folder(f, "thesis.txt"))),
        ("output folder", "bench-into-a-run", bench(a_run)),
        ("output folder", "bench-onto-a-file", bench(a_file)),
        ("output folder", "bench-records-with-a-users-file", bench(records_with_a_users_file)),
        ("output folder", "render-into-a-missing-folder", render(lambda f: str(f / "missing" / "out.png"))),
        ("output folder", "render-onto-a-folder", render(a_folder)),
        ("output folder", "render-onto-a-named-pipe", render(pipe)),
        ("output folder", "render-into-a-slash-name", render(lambda f: str(f / "renders") + "/")),
        ("output folder", "render-default-is-a-folder", default_render_is_a_folder),
        ("output folder", "fit-into-a-users-files",
         fit(lambda f: _user_folder(f, "config.json", "thesis.txt"))),
        ("output folder", "fit-onto-a-file", fit(lambda f: a_file(f, f))),
        ("output folder", "fit-over-a-run-without-overwrite", fit_over_a_run),
        ("output folder", "fit-batch-over-a-users-summary", batch_with_a_users_summary),
        ("output folder", "resume-a-users-folder",
         lambda folder, base: ["fit", "--resume", str(_user_folder(folder, "config.json", "notes.txt"))]),
    ]


SIGNAL_CASES = signal_cases()
RUN_CASES = run_cases()
# --- task records of a grid search: cut short, edited or garbage, they are run again -------------

SELECTION = {"knob": "omega_0", "chosen": 30.0, "seconds": 0.5, "bins": 8, "inits": 3, "band": None,
             "spectrum": "published", "objective": "fit",
             "table": [{"value": v, "w_mean": w, "w_stderr": 0.01, "inits": 3}
                       for v, w in ((10.0, 0.4), (30.0, 0.2))]}
TRAINED = {str(v): {"value": v, "seconds": 1.0, "batched": True, "psnr": p, "psnr_train": p,
                    "psnr_test": p - 1} for v, p in ((10.0, 20.0), (30.0, 25.0))}
RecordCase = tuple[str, str, str, Callable[[dict], bytes]]  # (class, id, which record, tampered bytes)


def _edited(change: Callable[[dict], object]) -> Callable[[dict], bytes]:
    def make(record: dict) -> bytes:
        record = copy.deepcopy(record)
        return json.dumps(change(record)).encode()

    return make


RECORD_EDITS: dict[str, tuple[str, Callable[[dict], object]]] = {
    "chosen-text": ("select", lambda r: {**r, "chosen": "thirty"}),
    "chosen-null": ("select", lambda r: {**r, "chosen": None}),
    "chosen-true": ("select", lambda r: {**r, "chosen": True}),
    "no-table": ("select", lambda r: {k: v for k, v in r.items() if k != "table"}),
    "table-object": ("select", lambda r: {**r, "table": {"a": 1}}),
    "row-number": ("select", lambda r: {**r, "table": [1, 2]}),
    "row-value-text": ("select", lambda r: {**r, "table": [{**r["table"][0], "value": "ten"}]}),
    "row-w-text": ("select", lambda r: {**r, "table": [{**r["table"][0], "w_mean": "low"}]}),
    "curve-garbage": ("select", lambda r: {**r, "curve": "none"}),
    "seconds-null": ("select", lambda r: {**r, "seconds": None}),
    "knob-number": ("select", lambda r: {**r, "knob": 3}),
    "select-list": ("select", lambda r: [r]),
    "value-text": ("train", lambda r: {**r, "10.0": {**r["10.0"], "value": "ten"}}),
    "psnr-text": ("train", lambda r: {**r, "10.0": {**r["10.0"], "psnr_train": "good"}}),
    "batched-text": ("train", lambda r: {**r, "10.0": {**r["10.0"], "batched": "yes"}}),
    "entry-list": ("train", lambda r: {**r, "10.0": [1]}),
    "entry-null": ("train", lambda r: {**r, "30.0": None}),
    "train-number": ("train", lambda r: 7),
}


def record_cases() -> list[RecordCase]:
    cases: list[RecordCase] = [("task record", case_id, which, _edited(change))
                               for case_id, (which, change) in RECORD_EDITS.items()]
    for which in ("select", "train"):
        for cut in (0, 1, 10, 60):
            cases.append(("task record", f"{which}-truncated@{cut}", which,
                          lambda r, c=cut: json.dumps(r, indent=2).encode()[:c]))
        cases.append(("task record", f"{which}-garbage", which, lambda r: bytes(range(256)) * 8))
        cases.append(("task record", f"{which}-nested-100000", which, lambda r: _nested(100000).encode()))
    return cases


CONFIG_CASES = config_cases()
CHECKPOINT_CASES = checkpoint_cases()
EXECUTOR_CASES = executor_cases()
OUTPUT_CASES = output_cases()
INPUT_CASES = CONFIG_CASES + CHECKPOINT_CASES + EXECUTOR_CASES + OUTPUT_CASES
RECORD_CASES = record_cases()


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


@pytest.mark.parametrize("case", INPUT_CASES, ids=[f"{c[0]}:{c[1]}" for c in INPUT_CASES])
def test_hostile_input(case: Case, base_run: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    """Config files, checkpoints, Ray addresses and output folders: one error line, nothing created,
    within seconds (a Ray address where nothing answers is not waited on)."""
    _, _, make = case
    argv = make(tmp_path, base_run)
    started = time.perf_counter()
    _expect_clean_error(argv, tmp_path, capsys)
    assert time.perf_counter() - started < 20


@pytest.mark.parametrize("case", RECORD_CASES, ids=[f"{c[0]}:{c[1]}" for c in RECORD_CASES])
def test_tampered_task_record_is_run_again(case: RecordCase, tmp_path: Path) -> None:
    """A grid's record that is not what its task returns is run again: that task alone, nothing
    else is written, and the summary reads as before."""
    _, _, which, tampered = case
    log, folder = tmp_path / "log", tmp_path / "records"
    shapes = {"select": (SELECTION, SELECT_RECORD), "train": (TRAINED, TRAIN_RECORD)}
    tasks = [Task(f"00-tiny-siren-0123456789-{name}-0123456789", "helpers:canned_task",
                  {"log": str(log), "key": name, "record": record}, shape)
             for name, (record, shape) in shapes.items()]
    first = run_tasks(tasks, folder)
    record = folder / f"{tasks[0 if which == 'select' else 1].key}.json"
    record.write_bytes(tampered(shapes[which][0]))
    names = sorted(p.name for p in tmp_path.rglob("*"))
    again = run_tasks(tasks, folder)
    assert log.read_text().split() == ["select", "train", which]
    assert again == first and sorted(p.name for p in tmp_path.rglob("*")) == names
    summary = summarize(again[tasks[0].key], again[tasks[1].key], 30.0)
    assert summary["objectives"]["train"]["best_value"] == 30.0


def test_a_record_larger_than_the_limit_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("specfit.bench.executor.RECORD_MAX_BYTES", 64)
    log, folder = tmp_path / "log", tmp_path / "records"
    task = Task("big", "helpers:canned_task", {"log": str(log), "key": "big", "record": {"pad": "x" * 100}})
    run_tasks([task], folder)
    assert run_tasks([task], folder)["big"] == {"pad": "x" * 100}
    assert log.read_text().split() == ["big", "big"] and RECORD_MAX_BYTES > 1 << 20


def test_case_counts_by_class() -> None:
    """The fuzz covers every class with several cases."""
    counts: dict[str, int] = {}
    for klass, *_ in SIGNAL_CASES + RUN_CASES + INPUT_CASES + RECORD_CASES:
        counts[klass] = counts.get(klass, 0) + 1
    assert set(counts) == {"truncated", "garbage", "wrong extension", "absurd header", "hostile run folder",
                           "config file", "checkpoint", "executor", "output folder", "task record"}
    assert min(counts.values()) >= 15
