"""The grid search and the executor that runs it: regrets, rank correlations, records, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SMALL_SIREN

from specfit.bench.executor import Task, read_record, run_tasks
from specfit.bench.grid import summarize

TESTS = Path(__file__).resolve().parent


def logged(log: Path, key: str, seconds: float = 0.0) -> Task:
    return Task(key, "helpers:logged_task", {"log": str(log), "key": key, "seconds": seconds})


def test_summary_regrets_and_rank_correlation():
    selection = {"knob": "omega_0", "chosen": 30.0, "seconds": 1.5, "table": [
        {"value": 10.0, "w_mean": 0.9, "w_stderr": 0.1, "inits": 10},
        {"value": 30.0, "w_mean": 0.2, "w_stderr": 0.1, "inits": 10},
        {"value": 60.0, "w_mean": 0.4, "w_stderr": 0.1, "inits": 10},
        {"value": 90.0, "w_mean": 0.8, "w_stderr": 0.1, "inits": 10}]}
    trained = {"10.0": {"psnr_train": 20.0, "psnr_test": 19.0, "psnr": 19.9, "seconds": 2.0},
               "30.0": {"psnr_train": 25.0, "psnr_test": 24.0, "psnr": 24.9, "seconds": 2.0},
               "60.0": {"psnr_train": 27.0, "psnr_test": 22.0, "psnr": 26.5, "seconds": 2.0},
               "90.0": {"psnr_train": 21.0, "psnr_test": 20.0, "psnr": 20.9, "seconds": 2.0}}
    summary = summarize(selection, trained, default=10.0)
    train, test = summary["objectives"]["train"], summary["objectives"]["held-out"]
    assert (train["best_value"], train["fresh_regret"], train["default_regret"]) == (60.0, 2.0, 7.0)
    assert (test["best_value"], test["fresh_regret"], test["default_regret"]) == (30.0, 0.0, 5.0)
    assert test["spearman"] == pytest.approx(1.0)  # -W ranks the grid exactly as held-out PSNR
    assert train["spearman"] == pytest.approx(0.8)
    assert summary["grid_seconds"] == 8.0 and summary["selection_seconds"] == 1.5


def test_tasks_run_once_and_records_are_reused(tmp_path):
    log, folder = tmp_path / "log", tmp_path / "records"
    tasks = [logged(log, f"t{i}") for i in range(3)]
    first = run_tasks(tasks, folder)
    again = run_tasks([*tasks, logged(log, "t3")], folder)
    assert log.read_text().split() == ["t0", "t1", "t2", "t3"]
    assert {k: again[k] for k in first} == first
    assert sorted(p.name for p in folder.iterdir()) == ["t0.json", "t1.json", "t2.json", "t3.json"]


def test_local_workers_run_tasks_in_other_processes(tmp_path):
    log = tmp_path / "log"
    results = run_tasks([logged(log, f"w{i}") for i in range(4)], tmp_path / "records", workers=2)
    assert sorted(log.read_text().split()) == ["w0", "w1", "w2", "w3"]
    assert {r["pid"] for r in results.values()} - {os.getpid()}


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from specfit.bench.executor import Task, run_tasks
tasks = [Task(f"k{{i}}", "helpers:logged_task", {{"log": {log!r}, "key": f"k{{i}}", "seconds": 1.0}})
         for i in range(6)]
run_tasks(tasks, {folder!r})
"""


def test_a_killed_run_resumes_without_repeating_a_finished_task(tmp_path):
    log, folder = tmp_path / "log", tmp_path / "records"
    code = RUNNER.format(tests=str(TESTS), log=str(log), folder=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not (folder.is_dir() and len(list(folder.glob("*.json"))) >= 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in folder.glob("*.json")}
    assert 2 <= len(finished) < 6
    subprocess.run([sys.executable, "-c", code], check=True)
    started = log.read_text().split()
    assert sorted(set(started)) == [f"k{i}" for i in range(6)]
    assert all(started.count(key) == 1 for key in finished)  # nothing finished ran again
    assert all(read_record(folder, f"k{i}") for i in range(6))


def test_a_small_grid_runs_on_a_local_ray_instance(images, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from specfit.bench.grid import grid_search
    from specfit.config.settings import FitSettings
    from specfit.training.loop import FitOptions

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    settings = FitSettings(model="siren", params={"width": 16, "hidden_layers": 1}, device="cpu", inits=3,
                           fit=FitOptions(steps=10, eval_every=5, compile="off"))
    sources = [str(images["smooth"])]
    try:
        on_ray = grid_search(sources, settings, tmp_path / "ray", [10.0, 60.0], ray_address="local")
    finally:
        ray.shutdown()
    here = grid_search(sources, settings, tmp_path / "here", [10.0, 60.0])
    assert len(list((tmp_path / "ray").glob("*.json"))) == 2  # the selection and the training task
    for remote, local in zip(on_ray, here, strict=True):
        assert remote["chosen"] == local["chosen"]
        for a, b in zip(remote["rows"], local["rows"], strict=True):
            assert a["psnr_train"] == pytest.approx(b["psnr_train"], abs=1e-6)


def test_grid_command_trains_every_value_and_resumes(cli, images, tmp_path):
    out = tmp_path / "grid"
    args = ["grid", images["smooth"], *SMALL_SIREN, "--grid", "10,30,90", "--steps", 20, "--inits", 3,
            "--out", out, "--json"]
    result = cli(*args)
    assert result.code == 0, result.err
    (summary,) = result.json()
    assert [row["value"] for row in summary["rows"]] == [10.0, 30.0, 90.0]
    assert all(row["psnr_train"] is not None and row["seconds"] > 0 for row in summary["rows"])
    assert summary["chosen"] in (10.0, 30.0, 90.0) and summary["default"] == 30.0
    for objective in summary["objectives"].values():
        assert objective["fresh_regret"] >= 0 and objective["default_regret"] >= 0
    records = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = cli(*args)
    assert again.code == 0 and json.loads(again.out) == [summary]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == records  # nothing recomputed


def test_grid_refuses_a_model_without_a_knob_and_a_bad_file(cli, images, tmp_path):
    result = cli("grid", images["smooth"], "--model", "relu", "--out", tmp_path / "g")
    assert result.code == 2 and "no frequency knob" in result.err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    result = cli("grid", images["smooth"], bad, "--out", tmp_path / "g")
    assert result.code == 2 and result.err.startswith("error: ") and not (tmp_path / "g").exists()


def test_batched_and_sequential_grid_training_agree(images, tmp_path):
    from specfit.bench.grid import train_task
    from specfit.config.settings import FitSettings
    from specfit.training.loop import FitOptions

    settings = FitSettings(model="siren", params={"width": 16, "hidden_layers": 1}, device="cpu",
                           fit=FitOptions(steps=12, eval_every=4, compile="off")).to_json()
    args = {"source": str(images["smooth"]), "load": {}, "settings": settings, "values": [10.0, 30.0, 90.0]}
    together, apart = train_task(**args, batched=True), train_task(**args, batched=False)
    assert all(row["batched"] for row in together.values()) and not any(r["batched"] for r in apart.values())
    for key in ("psnr", "psnr_train", "psnr_test"):
        for value in ("10.0", "30.0", "90.0"):
            assert together[value][key] == pytest.approx(apart[value][key], abs=1e-4), (value, key)


def test_stacked_training_gives_each_network_its_own_trajectory():
    import copy

    import torch

    from specfit.models.registry import get_entry
    from specfit.signals.sampling import make_sampling
    from specfit.training.loop import FitOptions, Trainer, fit_model
    from specfit.training.stacked import StackedModels, can_stack

    sampling = make_sampling((12, 12), "holdout", 0.2, 0)
    targets = torch.rand(144, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    options = FitOptions(steps=10, eval_every=5, compile="off")
    for name, knob, values in (("siren", "omega_0", (10.0, 60.0)), ("gauss", "scale", (5.0, 30.0)),
                               ("wire", "omega_0", (5.0, 20.0))):
        entry = get_entry(name)
        models = []
        for value in values:
            torch.manual_seed(0)
            models.append(entry.create(2, 3, {"width": 16, "hidden_layers": 2, knob: value}))
        alone = [copy.deepcopy(m) for m in models]
        assert can_stack(models, options, "mse")
        Trainer(StackedModels(models, targets, sampling, lambda v: (v + 1) / 2), options, entry.lr).fit()
        for together, single in zip(models, alone, strict=True):
            fit_model(single, targets, sampling, options, entry.lr, lambda v: (v + 1) / 2, False)
            for a, b in zip(together.state_dict().values(), single.state_dict().values(), strict=True):
                assert torch.allclose(a, b, atol=1e-5), name
    assert not can_stack([get_entry("tuner").create(2, 3)], options, "mse")
    resfields = get_entry("resfields")
    assert not can_stack([resfields.create(3, 1, {"width": 16, "n_frames": 2})], options, "mse")  # per frame


def test_one_configuration_on_many_signals_trains_as_each_alone():
    import copy

    import torch

    from specfit.models.registry import get_entry
    from specfit.signals.sampling import make_sampling
    from specfit.training.loop import FitOptions, Trainer, fit_model
    from specfit.training.stacked import StackedModels

    entry = get_entry("siren")
    sampling = make_sampling((12, 12), "holdout", 0.2, 0)
    signals = torch.rand(3, 144, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1
    options = FitOptions(steps=10, eval_every=5, compile="off")
    torch.manual_seed(0)
    model = entry.create(2, 1, {"width": 16, "hidden_layers": 1})
    together = [copy.deepcopy(model) for _ in range(3)]
    Trainer(StackedModels(together, signals, sampling, lambda v: (v + 1) / 2), options, entry.lr).fit()
    for net, target in zip(together, signals, strict=True):
        alone = copy.deepcopy(model)
        fit_model(alone, target, sampling, options, entry.lr, lambda v: (v + 1) / 2, False)
        for a, b in zip(net.state_dict().values(), alone.state_dict().values(), strict=True):
            assert torch.allclose(a, b, atol=1e-6)


def test_stacking_follows_what_the_family_declares():
    """Networks stack when their family's parameters say so (ModelParams.stackable), whatever their
    class: a SIREN whose parameters declare per-sample structure trains alone, and so does a module
    built without the registry's parameter object."""
    import dataclasses
    from typing import ClassVar

    from specfit.models.sine import Siren, SirenParams
    from specfit.training.loop import FitOptions
    from specfit.training.stacked import can_stack

    @dataclasses.dataclass(frozen=True)
    class PerSample(SirenParams):
        stackable: ClassVar[bool] = False

    options = FitOptions(steps=1, compile="off")
    small = {"width": 8, "hidden_layers": 1}
    assert can_stack([Siren(2, 1, SirenParams(**small)), Siren(2, 1, SirenParams(**small))], options, "mse")
    assert not can_stack([Siren(2, 1, PerSample(**small)), Siren(2, 1, PerSample(**small))], options, "mse")
    bare = Siren(2, 1, SirenParams(**small))
    del bare.hparams
    assert not can_stack([bare, bare], options, "mse")


def test_regrets_are_against_the_psnrs_each_value_reaches_trained_alone(images, tmp_path):
    """On a tiny case, the summary's best score and the regrets of FreSh's choice and of the default
    are those of the values trained one by one as specfit.fit trains them (same seed)."""
    from dataclasses import replace

    from specfit.bench.grid import grid_search
    from specfit.config.settings import FitSettings
    from specfit.fitting.pipeline import fit_signal
    from specfit.kinds.load import load_signal
    from specfit.training.loop import FitOptions

    grid = [10.0, 30.0, 90.0]
    settings = FitSettings(model="siren", params={"width": 16, "hidden_layers": 1}, device="cpu", inits=3,
                           fit=FitOptions(steps=12, eval_every=4, compile="off"))
    (summary,) = grid_search([str(images["smooth"])], settings, tmp_path / "records", grid)
    signal = load_signal(images["smooth"])
    alone = {value: fit_signal(signal, replace(settings, fresh=False,
                                               params={**settings.params, "omega_0": value})).metrics
             for value in grid}
    for name, key in (("train", "psnr_train"), ("held-out", "psnr_test")):
        best = max(getattr(metrics, key) for metrics in alone.values())
        objective = summary["objectives"][name]
        assert objective["best"] == pytest.approx(best, abs=1e-3)
        chosen = getattr(alone[summary["chosen"]], key)
        assert objective["fresh_regret"] == pytest.approx(best - chosen, abs=1e-3)
        assert objective["default_regret"] == pytest.approx(best - getattr(alone[30.0], key), abs=1e-3)
