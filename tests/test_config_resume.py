"""Config files, checkpoints and --resume, fitting a folder, TensorBoard logs, and --help."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import SMALL_SIREN, powerlaw_image, save_png8
from safetensors.torch import load_file

import specfit
from specfit.config.file import FitRequest, read_fit_config, write_fit_config
from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.events import Phase
from specfit.fitting.batch import fit_many
from specfit.models.registry import get_entry
from specfit.runs.checkpoints import CHECKPOINT, Checkpoint, read_checkpoint, write_checkpoint
from specfit.signals.sampling import make_sampling
from specfit.training.loop import Callbacks, FitOptions, Trainer, fit_model
from specfit.training.stacked import StackedModels


def _same_weights(a: Path, b: Path) -> bool:
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# ---- config files ---------------------------------------------------------------------------------

def test_a_saved_runs_config_reads_back_as_its_settings(fitted_run) -> None:
    request = read_fit_config(fitted_run.path / "config.json")
    assert request.settings == FitSettings.from_json(fitted_run.config["settings"])
    assert request.load == fitted_run.config["load"]
    assert request.source == fitted_run.config["signal"]["source"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip_through_yaml_and_json(tmp_path, suffix) -> None:
    settings = FitSettings(model="finer", params={"width": 32}, grid=[1.0, 2.5], inits=3, seed=7,
                           fit=FitOptions(steps=123, lr=2e-4, schedule="cosine", checkpoint_every=50))
    request = FitRequest(source="photo.png", load={"resize": 64}, settings=settings)
    write_fit_config(tmp_path / f"fit{suffix}", request)
    again = read_fit_config(tmp_path / f"fit{suffix}")
    assert (again.source, again.load, again.settings) == ("photo.png", {"resize": 64}, settings)


def test_a_toml_config_gives_only_what_it_names(tmp_path) -> None:
    path = tmp_path / "fit.toml"
    path.write_text('[signal]\nsource = "a.png"\n[load]\nresize = 32\n[settings]\nmodel = "gauss"\n'
                    '[settings.fit]\nsteps = 7\n')
    request = read_fit_config(path)
    assert request.settings.model == "gauss" and request.settings.fit.steps == 7
    assert request.given == {"model": "gauss", "fit.steps": 7}


@pytest.mark.parametrize("text, problem", [
    ('model = "siren"\n', "go under settings"),
    ('[settings]\nmodle = "siren"\n', "unknown settings modle"),
    ('[load]\nrezise = 3\n', "unknown loading option"),
    ('[settings]\nsplit = "most"\n', "split must be one of"),
    ("[settings\n", "not valid TOML"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, cli, text, problem) -> None:
    path = tmp_path / "fit.toml"
    path.write_text(text)
    with pytest.raises(SpecfitError, match=problem):
        read_fit_config(path)
    result = cli("fit", "--config", path)
    assert result.code == 2 and result.err.startswith("error:") and problem in result.err
    assert "Traceback" not in result.err


def test_fit_config_reruns_a_saved_run_exactly(cli, images, tmp_path) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    result = cli("fit", images["smooth"], "--steps", "12", "--inits", "2", "--grid", "10,30", "--batch-size",
                 "500", *SMALL_SIREN, "--out", first)
    assert result.code == 0, result.err
    result = cli("fit", "--config", first / "config.json", "--out", again)
    assert result.code == 0, result.err
    assert _same_weights(first, again)
    one, two = (json.loads((run / "config.json").read_text()) for run in (first, again))
    assert {k: v for k, v in one.items() if k not in ("created", "command")} == {
        k: v for k, v in two.items() if k not in ("created", "command")}


def test_command_line_options_override_the_config_file(cli, images, tmp_path) -> None:
    config = tmp_path / "fit.yaml"
    config.write_text(f"signal: {{source: {images['noise32']}}}\nsettings:\n  fresh: false\n"
                      "  params: {width: 16, hidden_layers: 1}\n  fit: {steps: 9, compile: 'off'}\n")
    result = cli("fit", "--config", config, "--steps", "4", "--device", "cpu", "--json", "--out",
                 tmp_path / "r")
    assert result.code == 0, result.err
    assert result.json()["steps"] == 4  # the option wins over the file
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["params"]["width"] == 16 and saved["settings"]["fresh"] is False
    assert saved["command"].startswith("specfit fit --config")


# ---- checkpoints and --resume ---------------------------------------------------------------------

def _toy_problem():
    torch.manual_seed(0)
    sampling = make_sampling((20, 20), "holdout", 0.1, seed=0)
    targets = torch.sin(4 * sampling.coords[:, :1]) * sampling.coords[:, 1:]
    entry = get_entry("siren")

    def model():
        torch.manual_seed(1)
        return entry.create(2, 1, {"width": 16, "hidden_layers": 1})

    return sampling, targets, entry, model


def test_resume_after_interruption_equals_uninterrupted_training_bit_for_bit(tmp_path) -> None:
    sampling, targets, entry, model = _toy_problem()
    options = FitOptions(steps=60, batch_size=64, schedule="cosine", eval_every=10, compile="off",
                         checkpoint_every=20)
    whole = fit_model(model(), targets, sampling, options, entry.lr, lambda v: (v + 1) / 2)

    def stop(step: int) -> None:
        if step == 47:
            raise KeyboardInterrupt

    saved = []
    cut = fit_model(model(), targets, sampling, options, entry.lr, lambda v: (v + 1) / 2, on_step=stop,
                    on_checkpoint=saved.append)
    assert cut.interrupted and [s.step for s in saved] == [20, 40, 47]
    for state in (saved[1], saved[2]):  # from a periodic checkpoint and from the interruption
        write_checkpoint(tmp_path / CHECKPOINT, Checkpoint(state, {"mode": "set"}))
        loaded = read_checkpoint(tmp_path / CHECKPOINT)
        resumed = fit_model(model(), targets, sampling, options, entry.lr, lambda v: (v + 1) / 2,
                            resume=loaded.state)
        for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert resumed.history == whole.history and resumed.best_step == whole.best_step


def test_stacked_training_resumes_bit_for_bit_like_single_training(tmp_path) -> None:
    """Networks trained together, interrupted and continued from a checkpoint (each network's own
    file), end as if never interrupted; each network's state is that of a network trained alone."""
    sampling = make_sampling((12, 12), "holdout", 0.2, seed=0)
    targets = torch.rand(2, 144, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1  # a signal each
    entry = get_entry("siren")
    options = FitOptions(steps=60, schedule="cosine", eval_every=10, compile="off", checkpoint_every=20)

    def models():
        out = []
        for omega_0 in (10.0, 40.0):
            torch.manual_seed(1)
            out.append(entry.create(2, 1, {"width": 16, "hidden_layers": 1, "omega_0": omega_0}))
        return out

    def train(resume=None, stop_at=None, saved=None):
        def stop(step: int) -> None:
            if step == stop_at:
                raise KeyboardInterrupt

        callbacks = Callbacks(on_step=stop, on_checkpoint=None if saved is None else saved.append)
        strategy = StackedModels(models(), targets, sampling, lambda v: (v + 1) / 2)
        return Trainer(strategy, options, entry.lr, callbacks=callbacks).fit(resume)

    whole = train()
    saved = []
    cut = train(stop_at=47, saved=saved)
    assert all(r.interrupted and r.steps == 47 for r in cut)
    assert [[state.step for state in states] for states in saved] == [[20, 20], [40, 40], [47, 47]]
    alone = models()[0].state_dict()
    assert {k: v.shape for k, v in saved[1][0].model.items()} == {k: v.shape for k, v in alone.items()}
    for states in (saved[1], saved[2]):  # from a periodic checkpoint and from the interruption
        loaded = []
        for k, state in enumerate(states):
            write_checkpoint(tmp_path / f"{k}-{CHECKPOINT}", Checkpoint(state, {"mode": "set"}))
            loaded.append(read_checkpoint(tmp_path / f"{k}-{CHECKPOINT}").state)
        resumed = train(resume=loaded)
        for one, two in zip(whole, resumed, strict=True):
            for a, b in zip(one.model.state_dict().values(), two.model.state_dict().values(), strict=True):
                assert torch.equal(a, b)
            assert two.history == one.history and two.best_step == one.best_step and two.steps == 60
    # one network of the stack continues alone from its own state (to within batched rounding)
    single = fit_model(models()[1], targets[1], sampling, options, entry.lr, lambda v: (v + 1) / 2,
                       resume=saved[1][1])
    for a, b in zip(single.model.state_dict().values(), whole[1].model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(SpecfitError, match="holds 1 networks"):
        train(resume=saved[1][:1])


def test_signals_trained_together_continue_together_from_their_folders(tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, size, seed in (("same0", 20, 0), ("same1", 20, 1), ("other", 16, 2)):
        save_png8(folder / f"{name}.png", powerlaw_image(size, 2.0, seed=seed))
    sources = [str(folder / f"{name}.png") for name in ("same0", "same1", "other")]
    settings = FitSettings(model="siren", params={"width": 16, "hidden_layers": 1}, fresh=False, device="cpu",
                           fit=FitOptions(steps=20, eval_every=5, compile="off", checkpoint_every=5))
    fit_many(sources, specfit.load_signal, settings, tmp_path / "whole")

    def interrupt(event) -> None:
        if event.phase is Phase.TRAIN and event.done == 12 and not event.record:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit_many(sources, specfit.load_signal, settings, cut, progress=interrupt)
    assert sorted(p.name for p in cut.iterdir()) == ["same0-siren", "same1-siren"]  # "other" never began
    assert all(read_checkpoint(run / CHECKPOINT).state.step == 12 for run in cut.iterdir())
    with pytest.raises(SpecfitError, match="--resume"):
        fit_many(sources, specfit.load_signal, settings, cut)
    outcomes = fit_many(sources, specfit.load_signal, settings, cut, resume=True)
    assert [o.batched for o in outcomes] == [True, True, False]
    for outcome in outcomes:
        name = outcome.out.name
        assert outcome.run.metrics.steps == 20 and not outcome.run.metrics.interrupted
        assert _same_weights(tmp_path / "whole" / name, cut / name), name
        one, two = (json.loads((parent / name / "metrics.json").read_text())
                    for parent in (tmp_path / "whole", cut))
        for key in ("history", "best_step", "psnr"):
            assert one[key] == two[key], (name, key)


def test_fit_resume_continues_an_interrupted_run_to_the_same_weights(images, tmp_path, cli) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    options = dict(fresh=False, steps=30, eval_every=5, compile="off", device="cpu", batch_size=300,
                   width=16, hidden_layers=1)
    signal = specfit.load_signal(images["smooth"])
    specfit.fit(signal, **options).save(whole)

    def interrupt(event) -> None:
        if event.phase is Phase.TRAIN and event.done == 17 and not event.record:
            raise KeyboardInterrupt

    run = specfit.fit(signal, progress=interrupt, **options)
    assert run.metrics.interrupted and run.metrics.steps == 17
    run.save(cut)
    result = cli("fit", "--resume", cut, "--json")
    assert result.code == 0, result.err
    assert result.json()["steps"] == 30 and not result.json()["interrupted"]
    assert _same_weights(whole, cut)


def test_resume_trains_a_finished_run_on_to_more_steps(cli, images, tmp_path) -> None:
    short, long = tmp_path / "short", tmp_path / "long"
    common = [images["noise32"], "--no-fresh", *SMALL_SIREN, "--eval-every", "5"]
    assert cli("fit", *common, "--steps", "10", "--out", short).code == 0
    assert cli("fit", *common, "--steps", "25", "--out", long).code == 0
    result = cli("fit", "--resume", short, "--steps", "25")
    assert result.code == 0, result.err
    assert _same_weights(short, long)
    assert cli("fit", "--resume", short, "--steps", "5").code == 2  # fewer steps than trained
    again = cli("fit", "--resume", short, "--steps", "25")  # finished: nothing to train on
    assert again.code == 2 and "already at step 25; add --steps" in again.err



def test_a_run_saved_before_a_family_gained_a_hyperparameter_resumes(cli, images, tmp_path) -> None:
    """A run written by an earlier specfit lacks the hyperparameters added since (SIREN's
    ``weight_scale``, ``winner_s0`` and ``winner_s1``) in its config.json and checkpoint; it still
    continues, to the weights of a run that never stopped."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    old, whole = tmp_path / "old", tmp_path / "whole"
    common = [images["noise32"], "--no-fresh", *SMALL_SIREN, "--eval-every", "5"]
    assert cli("fit", *common, "--steps", "10", "--out", old).code == 0
    assert cli("fit", *common, "--steps", "20", "--out", whole).code == 0
    added = ("weight_scale", "winner_s0", "winner_s1")
    config = json.loads((old / "config.json").read_text())
    config["params"] = {k: v for k, v in config["params"].items() if k not in added}
    (old / "config.json").write_text(json.dumps(config))
    path = str(old / "checkpoint.safetensors")
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
    meta = json.loads(metadata["specfit_checkpoint"])
    meta["fit"]["params"] = {k: v for k, v in meta["fit"]["params"].items() if k not in added}
    save_file(load_file(path), path, metadata={**metadata, "specfit_checkpoint": json.dumps(meta)})
    result = cli("fit", "--resume", old, "--steps", "20")
    assert result.code == 0, result.err
    assert _same_weights(old, whole)

def test_a_killed_fit_leaves_a_folder_that_resumes(cli, images, tmp_path) -> None:
    """What a hard kill leaves (config.json and the last periodic checkpoint, no weights yet) is
    refused as an output but continued by --resume."""
    done, killed = tmp_path / "done", tmp_path / "killed"
    common = [images["noise32"], "--no-fresh", *SMALL_SIREN, "--steps", "20", "--checkpoint-every", "10"]
    assert cli("fit", *common, "--out", done).code == 0
    killed.mkdir()
    for name in ("config.json", CHECKPOINT):
        shutil.copy(done / name, killed / name)
    assert read_checkpoint(killed / CHECKPOINT).state.step == 20
    refused = cli("fit", *common, "--out", killed)
    assert refused.code == 2 and "--resume" in refused.err
    result = cli("fit", "--resume", killed)
    assert result.code == 0, result.err
    assert _same_weights(done, killed)


def test_resume_refuses_a_folder_without_a_checkpoint(cli, tmp_path) -> None:
    result = cli("fit", "--resume", tmp_path)
    assert result.code == 2 and result.err.startswith("error:")


# ---- several signals ------------------------------------------------------------------------------

def test_fitting_a_folder_writes_one_run_per_file_and_a_summary(cli, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (0, 1):
        save_png8(folder / f"same{seed}.png", powerlaw_image(24, 2.0, seed=seed))
    save_png8(folder / "other.png", powerlaw_image(16, 2.0, seed=2))
    (folder / "notes.txt").write_text("not a signal")
    out = tmp_path / "runs"
    result = cli("fit", folder, "--steps", "10", "--inits", "2", "--grid", "10,30", *SMALL_SIREN,
                 "--together", "on", "--out", out)
    assert result.code == 0, result.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["other-siren", "same0-siren", "same1-siren", "summary.csv"]
    with (out / "summary.csv").open() as handle:
        rows = {Path(row["signal"]).name: row for row in csv.DictReader(handle)}
    assert set(rows) == {"same0.png", "same1.png", "other.png"}
    assert rows["same0.png"]["batched"] == rows["same1.png"]["batched"] == "True"  # one size: together
    assert rows["other.png"]["batched"] == "False"
    for name, row in rows.items():
        metrics = json.loads((Path(row["run"]) / "metrics.json").read_text())
        assert float(row["psnr"]) == pytest.approx(metrics["psnr"])
        assert metrics["steps"] == 10 and metrics["history"], name
        assert specfit.load_run(row["run"]).render().shape[1:] in ((24, 24), (16, 16))
    again = cli("fit", folder, "--steps", "10", *SMALL_SIREN, "--out", out)
    assert again.code == 2 and "--overwrite" in again.err  # runs are not replaced silently


def test_signals_trained_together_match_signals_trained_alone(cli, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (0, 1):
        save_png8(folder / f"p{seed}.png", powerlaw_image(20, 2.0, seed=seed))
    options = ["--steps", "15", "--no-fresh", *SMALL_SIREN]
    assert cli("fit", folder, *options, "--together", "on", "--out", tmp_path / "together").code == 0
    assert cli("fit", folder, *options, "--out", tmp_path / "alone").code == 0  # on a CPU: one at a time
    for name in ("p0-siren", "p1-siren"):
        together = json.loads((tmp_path / "together" / name / "metrics.json").read_text())
        alone = json.loads((tmp_path / "alone" / name / "metrics.json").read_text())
        assert together["psnr"] == pytest.approx(alone["psnr"], abs=0.05)
        assert together["notes"] != alone["notes"]  # the first says it was trained with the other



def test_a_folder_fit_continues_with_resume_from_the_command_line(cli, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (0, 1):
        save_png8(folder / f"p{seed}.png", powerlaw_image(16, 2.0, seed=seed))
    options = ["--no-fresh", *SMALL_SIREN, "--eval-every", "5", "--together", "on"]
    out, straight = tmp_path / "runs", tmp_path / "straight"
    assert cli("fit", folder, "--steps", "10", *options, "--out", out).code == 0
    refused = cli("fit", folder, "--steps", "20", *options, "--out", out)
    assert refused.code == 2 and "--resume" in refused.err
    continued = cli("fit", folder, "--steps", "20", *options, "--out", out, "--resume")
    assert continued.code == 0, continued.err
    assert cli("fit", folder, "--steps", "20", *options, "--out", straight).code == 0
    for name in ("p0-siren", "p1-siren"):
        resumed = json.loads((out / name / "metrics.json").read_text())
        whole = json.loads((straight / name / "metrics.json").read_text())
        assert resumed["steps"] == 20 and resumed["history"] == whole["history"], name
    lone = cli("fit", folder / "p0.png", "--resume")
    assert lone.code == 2 and "--resume RUN" in lone.err

# ---- logs and help --------------------------------------------------------------------------------

def test_tensorboard_logs_the_training_curves(cli, images, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "tb"
    result = cli("fit", images["noise32"], "--no-fresh", *SMALL_SIREN, "--steps", "10", "--eval-every", "5",
                 "--tensorboard", logs, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    events = EventAccumulator(str(logs / "run"))
    events.Reload()
    steps = [scalar.step for scalar in events.Scalars("train/psnr_train")]
    assert steps == [5, 10]


@pytest.mark.parametrize("command", ["fit", "grid", "bench", "select", "spectrum", "ntk", "render", "models"])
def test_every_command_has_help_with_examples(command, capsys) -> None:
    from specfit.cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"specfit {command}" in text.split("examples:")[1]


def test_help_lists_choices_and_defaults(capsys) -> None:
    from specfit.cli.main import main

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{none,cosine,exp}" in text and "{auto,on,off}" in text and "(default: holdout)" in text
    assert "one of siren" in text and "finer" in text
