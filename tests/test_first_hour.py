"""First-hour conveniences: discoverable API names, a bare model, API-worded warnings, CLI help."""

from __future__ import annotations

import pytest

import specfit
from specfit import SpecfitError, SpecfitWarning
from specfit.cli.main import main


def test_dir_lists_the_public_names_and_no_helpers():
    names = dir(specfit)
    assert set(specfit.__all__) <= set(names)
    assert {"fit", "load_signal", "select"} <= set(names)
    assert not {"TYPE_CHECKING", "import_module", "annotations"} & set(names)


def test_fit_docstring_says_fresh_chooses_by_default():
    first = " ".join(specfit.fit.__doc__.split("\n\n")[0].split())
    assert "chosen by FreSh by default" in first
    assert "fresh=False`` (its default)" not in first


def test_build_model_gives_the_registry_model_untrained():
    import torch

    from specfit.models import build_model as registry_build

    torch.manual_seed(0)
    model = specfit.build_model("siren", 2, 3, width=16, hidden_layers=1, omega_0=60.0)
    torch.manual_seed(0)
    same = registry_build("siren", 2, 3, {"width": 16, "hidden_layers": 1, "omega_0": 60.0})
    coords = torch.rand(5, 2) * 2 - 1
    assert isinstance(model, torch.nn.Module)
    assert model(coords).shape == (5, 3)
    assert torch.equal(model(coords), same(coords))
    assert "build_model" in specfit.__all__
    with pytest.raises(SpecfitError, match="unknown model"):
        specfit.build_model("nope", 2, 1)


SMALL = ["--set", "width=16", "--set", "hidden_layers=1", "--device", "cpu"]
EDGE = {"grid": [10.0, 20.0], "inits": 2, "width": 16, "hidden_layers": 1, "device": "cpu"}


def test_select_warns_an_edge_choice_in_the_apis_words(images):
    with pytest.warns(SpecfitWarning) as caught:
        selection = specfit.select(images["rough"], "siren", **EDGE)
    messages = [str(w.message) for w in caught if issubclass(w.category, SpecfitWarning)]
    assert any("FreSh chose the largest omega_0" in m and "widen it with grid=[...]" in m for m in messages)
    assert not any("--grid" in m for m in messages)
    assert {w.filename for w in caught} == {__file__}  # the warning points at the caller
    assert any("widen it with --grid" in note for note in selection.notes)  # the CLI's wording stays


def test_fit_warns_an_edge_choice_and_keeps_the_cli_note(images):
    with pytest.warns(SpecfitWarning, match=r"widen it with grid=\[\.\.\.\]"):
        run = specfit.fit(images["rough"], "siren", steps=2, compile="off", **EDGE)
    assert any("widen it with --grid" in note for note in run.metrics.notes)


@pytest.mark.parametrize("command", ["select", "fit"])
def test_cli_prints_the_edge_note_once_with_its_flag(cli, images, tmp_path, command):
    extra = ["--steps", 2, "--compile", "off", "--out", tmp_path / "run"] if command == "fit" else []
    result = cli(command, images["rough"], "--model", "siren", "--grid", "10,20", "--inits", 2,
                 *SMALL, *extra)
    assert result.code == 0, result.err
    assert result.err.count("widen it with") == 1
    assert "widen it with --grid" in result.err and "grid=[" not in result.err


def test_bare_specfit_prints_the_help_and_succeeds(cli):
    result = cli()
    assert result.code == 0
    assert "usage: specfit" in result.out and "select" in result.out and not result.err


@pytest.mark.parametrize("command", ["select", "spectrum", "ntk", "render"])
def test_positional_arguments_have_help(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    first = out.split("positional arguments:\n")[1].splitlines()[0]
    assert len(first.split()) > 1, out  # the argument's name, then its help


@pytest.mark.parametrize("args, suggestion", [
    (["fti"], "did you mean fit?"),
    (["fit", "--stpes", "3"], "did you mean --steps?"),
    (["fit", "--model", "SIREN"], "did you mean siren?"),
    (["select", "photo.png", "--model", "sirne"], "did you mean siren?"),
])
def test_typos_get_a_suggestion_on_one_error_line(cli, args, suggestion):
    result = cli(*args)
    assert result.code == 2 and not result.out
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert suggestion in result.err


def test_resume_of_a_finished_run_without_more_steps_is_refused(cli, images, tmp_path):
    run = tmp_path / "run"
    assert cli("fit", images["noise32"], "--no-fresh", *SMALL, "--steps", 4, "--compile", "off",
               "--out", run).code == 0
    report = (run / "report.html").stat().st_mtime_ns
    for extra in ([], ["--steps", 4]):
        result = cli("fit", "--resume", run, *extra)
        assert result.code == 2 and result.err.count("\n") == 1
        assert f"error: {run} is already at step 4; add --steps M (more than 4) to train on" in result.err
    assert (run / "report.html").stat().st_mtime_ns == report
    with pytest.raises(SpecfitError, match="already at step 4"):
        specfit.resume(run)
