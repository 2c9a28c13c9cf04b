"""Shared helpers for benchmark scripts: where the data is, and writing result tables."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "results"


def require_data(sub: str) -> Path:
    """Path of ``../shared/data/<sub>``, or exit with a message when it is absent."""
    path = SHARED_DATA / sub
    if not path.exists():
        sys.exit(f"error: {path} not found; benchmarks need ../shared/data beside the repository")
    return path


def machine() -> dict:
    """What the numbers were measured on."""
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_result(name: str, data: dict) -> Path:
    """Write ``results/<name>.json`` (with the machine description) and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def matmul_gflops(device: str = "cpu", repeats: int = 5) -> float:
    """The float32 matrix-multiply rate of ``device`` in GFLOP/s: the best of ``repeats`` products of
    a 65536 x 256 by a 256 x 256 matrix (the shape of a 256-wide layer on 65536 samples; ten per
    timing on a GPU)."""
    a, b = torch.randn(65536, 256, device=device), torch.randn(256, 256, device=device)
    count = 10 if device.startswith("cuda") else 1
    a @ b
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        for _ in range(count):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return count * 2 * 65536 * 256 * 256 / best / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def siren_step_gflop(samples: int, in_features: int, out_features: int, width: int = 256,
                     hidden_layers: int = 3) -> float:
    """Matrix-product GFLOP of one training step of a SIREN (``hidden_layers`` x ``width``) on
    ``samples`` samples: 2 per multiply-add forward, twice that backward."""
    weights = in_features * width + hidden_layers * width * width + width * out_features
    return 6 * weights * samples / 1e9
