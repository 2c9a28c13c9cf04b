"""Shared helpers for benchmark scripts: where the data is, and writing result tables."""

from __future__ import annotations

import json
import platform
import sys
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
