"""What a user hands in never crashes specfit or loses their data: output folders, sizes,
small command-line cases, interruption and concurrent writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import SMALL_SIREN

import specfit.fitting.pipeline
from specfit.runs.folder import run_lock

FAST = [*SMALL_SIREN, "--no-fresh", "--steps", "3", "--eval-every", "1"]


def one_error_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert result.code == 2, result.err
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"/"
            for p in sorted(folder.rglob("*"))}


def complete_run(folder: Path) -> dict:
    assert {"config.json", "model.safetensors", "metrics.json", "report.html"} <= {
        p.name for p in folder.iterdir()}
    return json.loads((folder / "metrics.json").read_text())


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# --- 1. an output folder is replaced only when it is provably a specfit run -------------------


def test_folder_with_a_config_json_and_user_files_is_refused_untouched(cli, images, tmp_path):
    project = tmp_path / "myproject"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "thesis.txt").write_text("years of work\n")
    (project / "config.json").write_text('{"learning_rate": 0.1}\n')
    before = snapshot(project)
    line = one_error_line(cli("fit", images["noise32"], *FAST, "--out", project, "--overwrite"))
    assert "not a specfit run" in line
    assert snapshot(project) == before


def test_a_run_with_a_users_file_added_is_refused(cli, images, tmp_path):
    out = tmp_path / "run"
    assert cli("fit", images["noise32"], *FAST, "--out", out).code == 0
    (out / "notes.txt").write_text("my notes\n")
    before = snapshot(out)
    line = one_error_line(cli("fit", images["noise32"], *FAST, "--out", out, "--overwrite"))
    assert "notes.txt" in line
    assert snapshot(out) == before


def test_an_existing_run_is_refused_without_overwrite(cli, images, tmp_path):
    out = tmp_path / "run"
    assert cli("fit", images["noise32"], *FAST, "--out", out).code == 0
    before = snapshot(out)
    line = one_error_line(cli("fit", images["noise32"], *FAST, "--steps", "4", "--out", out))
    assert "--overwrite" in line
    assert snapshot(out) == before


def test_a_run_and_its_renders_are_replaced_with_overwrite(cli, images, tmp_path):
    out = tmp_path / "run"
    assert cli("fit", images["noise32"], *FAST, "--out", out).code == 0
    assert cli("render", out, "--size", "8x8").code == 0
    assert cli("fit", images["noise32"], *FAST, "--steps", "4", "--out", out, "--overwrite").code == 0
    assert complete_run(out)["steps"] == 4
    assert not (out / "render-8x8.png").exists()
    assert leftovers(out) == []


# --- 3. sizes that cannot fit are refused before anything is allocated ------------------------


@pytest.mark.parametrize("args, words", [
    (["--set", "width=1000000000"], "above its maximum"),
    (["--set", "hidden_layers=100000"], "above its maximum"),
    (["--set", "width=60000", "--set", "hidden_layers=1000"], "needs about"),
    (["--model", "tuner", "--set", "band_limit=1000000"], "needs about"),
    (["--grid", "1:1e12:1"], "1e+12 values"),
    (["--grid", "1:inf:1"], "malformed grid"),
    (["--inits", "1000000"], "--inits"),
])
def test_absurd_sizes_are_refused_quickly(cli, images, tmp_path, args, words):
    started = time.perf_counter()
    line = one_error_line(cli("fit", images["noise32"], *SMALL_SIREN, *args, "--out", tmp_path / "r"))
    assert words in line
    assert time.perf_counter() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_training_memory_is_estimated_from_the_samples_per_step(cli, images, tmp_path, monkeypatch):
    monkeypatch.setattr("specfit.models.memory.available_bytes", lambda device: 10**6)
    line = one_error_line(cli("fit", images["rough"], *FAST, "--set", "width=64", "--out", tmp_path / "r"))
    assert "4096 samples a step" in line and "more than the 976.6 KiB available" in line


def test_an_allocation_failure_that_still_happens_is_one_error_line(cli, images, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 4000000000000 bytes.\nmore detail")

    monkeypatch.setattr(specfit.fitting.pipeline.Trainer, "fit", fail)
    line = one_error_line(cli("fit", images["noise32"], *FAST, "--json", "--out", tmp_path / "r"))
    assert "out of memory" in line
    assert list(tmp_path.iterdir()) == []


# --- 6. small ones ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--grid", ""],
    ["--grid", ","],
    ["--seed", str(10**23)],
    ["--seed", "-1"],
])
def test_empty_grid_and_absurd_seeds_are_refused(cli, images, tmp_path, args):
    one_error_line(cli("fit", images["noise32"], *SMALL_SIREN, *args, "--out", tmp_path / "r"))
    assert list(tmp_path.iterdir()) == []


def test_library_warnings_do_not_precede_the_error_line(cli, images, tmp_path, monkeypatch):
    import logging
    import warnings

    from specfit.errors import SpecfitError

    def noisy_load(*args, **kwargs):
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
        logging.getLogger("tifffile").warning("a library's log line")
        raise SpecfitError("the file is bad")

    monkeypatch.setattr("specfit.kinds.load.load_signal", noisy_load)
    line = one_error_line(cli("fit", images["noise32"], *FAST))
    assert line == "error: the file is bad"


def _specfit(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "specfit", *args], stderr=subprocess.PIPE, text=True,
                            **kwargs)


def test_a_closed_pipe_and_a_full_disk_are_not_tracebacks(tmp_path):
    reader = _specfit("models", "--json", stdout=subprocess.PIPE)
    reader.stdout.close()  # the reader is gone before specfit writes (like `specfit models | head`)
    assert "Traceback" not in reader.communicate(timeout=60)[1]
    with open("/dev/full", "w") as full:
        proc = _specfit("models", "--json", stdout=full)
        err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 2
    assert err.strip().splitlines() == ["error: No space left on device"]


# --- 7. interruption and concurrent writers ----------------------------------------------------


def test_ctrl_c_during_the_final_write_still_writes_the_run(cli, images, tmp_path, monkeypatch):
    original = specfit.fitting.pipeline.write_report

    def interrupted_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(specfit.fitting.pipeline, "write_report", interrupted_write)
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], *FAST, "--out", out)
    assert result.code == 0, result.err
    assert complete_run(out)["steps"] == 3


def test_sigterm_stops_training_and_writes_the_best_model(images, tmp_path):
    out = tmp_path / "run"
    proc = _specfit("fit", str(images["rough"]), *SMALL_SIREN, "--no-fresh", "--steps", "100000",
                    "--eval-every", "5", "--out", str(out), stdout=subprocess.PIPE)
    seen = ""
    while "PSNR train" not in seen:  # the progress bar shows a first evaluation
        chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        assert chunk, f"specfit ended early: {seen}"
        seen += chunk
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    metrics = complete_run(out)
    assert metrics["interrupted"] and 0 < metrics["steps"] < 100000
    assert leftovers(out) == []


def test_leftovers_of_a_killed_write_are_cleaned_by_the_next_run(cli, images, tmp_path):
    out = tmp_path / "run"
    for name in (".run.partial-x1y2", ".run.old-z3"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"half")
    assert cli("fit", images["noise32"], *FAST, "--out", out).code == 0
    assert leftovers(out) == []
    complete_run(out)


def test_a_second_writer_of_the_same_folder_is_refused(cli, images, tmp_path):
    out = tmp_path / "run"
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:  # another thread of this process stands in for another process
        with run_lock(out):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(30)
    try:
        line = one_error_line(cli("fit", images["noise32"], *FAST, "--json", "--out", out))
    finally:
        release.set()
        thread.join()
    assert f"pid {os.getpid()}" in line
    assert not out.exists()
    assert cli("fit", images["noise32"], *FAST, "--out", out).code == 0  # the lock is gone


def test_concurrent_fits_into_one_folder_end_with_one_complete_run(images, tmp_path):
    out = tmp_path / "run"
    args = ["fit", str(images["rough"]), *SMALL_SIREN, "--no-fresh", "--steps", "30", "--out", str(out)]
    procs = [_specfit(*args, stdout=subprocess.DEVNULL) for _ in range(3)]
    errs = [proc.communicate(timeout=180)[1] for proc in procs]
    for proc, err in zip(procs, errs, strict=True):
        assert "Traceback" not in err
        assert proc.returncode in (0, 2), err
        if proc.returncode == 2:
            assert err.strip().splitlines()[-1].startswith("error: another specfit process")
    assert any(proc.returncode == 0 for proc in procs)
    complete_run(out)
    assert leftovers(out) == []
