"""FreSh choosing two knobs at once (``two_knobs``): the second knobs of the registry, the 2-D
search against an exhaustive evaluation, the setting that is written only when set, the JSON of
one-knob selections left as it was, the report's heat map, the CLI and the API."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from helpers import assert_single_error
from scipy.stats import wasserstein_distance

import specfit
from specfit.config.settings import FitSettings
from specfit.config.tree import from_json, to_json
from specfit.errors import SpecfitError
from specfit.fresh.search import fresh_select, plan_selection
from specfit.kinds.load import load_signal
from specfit.models import get_entry
from specfit.models.params import param
from specfit.models.registry import REGISTRY, _check_plugin
from specfit.runs.run import load_run
from specfit.signals import make_sampling

TINY_WIRE = ["--model", "wire", "--set", "width=8", "--set", "hidden_layers=1", "--inits", 2,
             "--grid", "10,30", "--device", "cpu"]
ONE_KNOB_KEYS = ["knob", "chosen", "table", "seconds", "bins", "inits", "band", "spectrum", "objective"]


# --- the rule of config/tree.py: a setting written only when set ------------------------------------


@dataclass
class _Toy:
    steps: int = param(10, "steps")
    extra: bool = param(False, "a later setting", written_when_set=True)


def test_a_setting_written_when_set_is_left_out_at_its_default_and_read_back_as_it():
    assert to_json(_Toy()) == {"steps": 10}
    assert to_json(_Toy(extra=True)) == {"steps": 10, "extra": True}
    assert from_json(_Toy, {"steps": 10}) == _Toy()
    assert from_json(_Toy, to_json(_Toy(extra=True))) == _Toy(extra=True)


def test_default_settings_json_has_no_two_knobs_key_and_round_trips():
    """Records keyed by the settings' JSON (config.json, grid records) stay byte for byte the same."""
    default = FitSettings.for_fit()
    text = json.dumps(default.to_json())
    assert "two_knobs" not in text
    assert json.dumps(FitSettings.for_fit(two_knobs=False).to_json()) == text
    assert json.dumps(FitSettings.from_json(json.loads(text)).to_json()) == text
    on = FitSettings.for_fit(two_knobs=True).to_json()
    assert on["two_knobs"] is True and FitSettings.from_json(on).two_knobs is True


# --- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("model, knob, second", [
    ("siren", "omega_0", "hidden_omega_0"), ("hashgrid", "n_max", "log2_table"),
    ("ff-gaussian", "sigma", "features"), ("tuner", "band_limit", "c_high"), ("wire", "omega_0", "scale"),
])
def test_families_declare_a_second_knob_whose_grid_holds_its_default(model, knob, second):
    entry = get_entry(model)
    assert entry.knob.name == knob and entry.second_knob.name == second
    assert entry.second_knob.default == entry.defaults[second]
    assert entry.second_knob.default in entry.second_knob.grid


def test_a_plugin_with_a_second_knob_that_is_no_parameter_is_refused():
    entry = replace(get_entry("siren"), name="plugin-siren",
                    second_knob=replace(get_entry("siren").second_knob, name="nothing"))
    with pytest.raises(ValueError, match="second knob 'nothing'"):
        _check_plugin(entry, set(REGISTRY))
    _check_plugin(replace(entry, second_knob=None), set(REGISTRY))  # plugins without one still load


# --- the search ----------------------------------------------------------------------------------


def _tiny_image() -> torch.Tensor:
    x = torch.linspace(0, 1, 16)
    values = torch.sin(2 * torch.pi * 3 * x)[:, None] * torch.cos(2 * torch.pi * 5 * x)[None, :]
    return (values + 0.2 * torch.rand(16, 16, generator=torch.Generator().manual_seed(0))).unsqueeze(0)


def _exhaustive(values: torch.Tensor, coords: torch.Tensor, plan, params: dict, seed: int) -> np.ndarray:
    """Mean W of every (second, first) pair, recomputed here: R models per pair from the seed."""
    entry = get_entry("wire")
    means = np.zeros((len(plan.second_values), len(plan.candidates)))
    for i, second in enumerate(plan.second_values):
        for j, first in enumerate(plan.candidates):
            torch.manual_seed(seed)
            models = [entry.create(2, 1, {**params, "scale": second, "omega_0": first})
                      for _ in range(plan.inits)]
            with torch.no_grad():
                outputs = torch.stack([m(coords).T.reshape(1, 16, 16) for m in models])
            vectors = plan.vectors(outputs).double().numpy()
            target = plan.target.double().numpy()
            bins = np.arange(len(target))
            means[i, j] = np.mean([wasserstein_distance(bins, bins, target, q) for q in vectors])
    return means


def test_two_knob_search_chooses_the_least_distance_of_an_exhaustive_evaluation():
    values, coords = _tiny_image(), make_sampling((16, 16), "all").coords
    params = {"width": 8, "hidden_layers": 1}
    plan = plan_selection(values, "wire", params, grid=[5.0, 15.0, 30.0, 60.0], inits=3, search="full",
                          two_knobs=True)
    selection = fresh_select(values, coords, "wire", seed=5, race=False, plan=plan)
    means = _exhaustive(values, coords, plan, params, seed=5)
    table = selection.table_2d
    assert table.rows == [5.0, 10.0, 20.0] and table.columns == [5.0, 15.0, 30.0, 60.0]
    np.testing.assert_allclose([[cell.w_mean for cell in row] for row in table.cells], means, rtol=1e-4)
    i, j = np.unravel_index(np.argmin(means), means.shape)
    assert selection.pair == {"omega_0": table.columns[j], "scale": table.rows[i]}
    assert [row.w_mean for row in selection.table] == [cell.w_mean for cell in table.cells[i]]
    # the one-knob fields describe the first knob at the chosen second value
    assert selection.chosen == table.columns[j] and selection.second_chosen == table.rows[i]


def test_bracket_search_of_two_knobs_chooses_the_least_distance_among_the_pairs_raced_to_the_end():
    values, coords = _tiny_image(), make_sampling((16, 16), "all").coords
    plan = plan_selection(values, "wire", {"width": 8, "hidden_layers": 1}, inits=4, two_knobs=True)
    selection = fresh_select(values, coords, "wire", seed=1, plan=plan)
    cells = [(cell.w_mean, second, cell.value) for second, row in zip(selection.table_2d.rows,
                                                                      selection.table_2d.cells, strict=True)
             for cell in row if cell.inits == 4]
    assert len({second for _, second, _ in cells}) == 3  # every row's best raised to R initialisations
    assert min(cells)[1:] == (selection.second_chosen, selection.chosen)


def test_a_second_knob_that_leaves_the_untrained_spectra_alone_stays_at_its_default():
    """SIREN's hidden_omega_0 (fresh convention) divides the weights it multiplies: every row of
    the search is the same up to rounding, and the tie goes to the default, with a note."""
    values, coords = _tiny_image(), make_sampling((16, 16), "all").coords
    plan = plan_selection(values, "siren", {"width": 16, "hidden_layers": 1}, grid=[10.0, 40.0, 90.0],
                          inits=2, two_knobs=True)
    selection = fresh_select(values, coords, "siren", seed=0, plan=plan)
    assert selection.second_knob == "hidden_omega_0" and selection.second_chosen == 30.0
    assert any("hidden_omega_0 does not change" in note for note in selection.notes)


def test_one_knob_selection_json_is_unchanged():
    values, coords = _tiny_image(), make_sampling((16, 16), "all").coords
    plan = plan_selection(values, "wire", {"width": 8, "hidden_layers": 1}, grid=[10.0, 30.0], inits=2)
    selection = fresh_select(values, coords, "wire", seed=0, plan=plan)
    assert list(selection.to_json()) == ONE_KNOB_KEYS
    assert selection.second_knob is None and selection.table_2d is None
    assert selection.pair == {"omega_0": selection.chosen}


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "ff-positional", "two_knobs": True}, "model ff-positional has no second knob"),
    ({"model": "wire", "two_knobs": True, "scale": 20.0}, "two_knobs chooses scale, which is set to 20.0"),
])
def test_two_knobs_refused_in_one_line(kwargs, message):
    with pytest.raises(SpecfitError, match=message) as caught:
        specfit.select(_tiny_image()[0].numpy(), inits=2, **kwargs)
    assert "\n" not in str(caught.value) and caught.value.setting == "two_knobs"


# --- the API, the CLI and the report ----------------------------------------------------------------


def test_fit_trains_the_chosen_pair_and_records_both(tmp_path):
    run = specfit.fit(_tiny_image()[0].numpy(), "wire", width=8, hidden_layers=1, inits=2, grid=[10.0, 30.0],
                      steps=3, device="cpu", two_knobs=True)
    pair = run.selection.pair
    assert {k: run.config.params[k] for k in pair} == pair
    run.save(tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["value"] == pair["omega_0"]
    recorded = metrics["selection"]
    assert (recorded["second_knob"], recorded["second_chosen"]) == ("scale", pair["scale"])
    assert metrics["selection"]["table_2d"]["rows"] == [5.0, 10.0, 20.0]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["settings"]["two_knobs"] is True
    report = (tmp_path / "run" / "report.html").read_text()
    assert "FreSh: distance over omega_0 and scale" in report
    assert "colour: mean Wasserstein distance" in report
    assert f"FreSh: distance versus omega_0 at scale = {pair['scale']}" in report
    assert load_run(tmp_path / "run").config.settings.two_knobs is True


def test_probes_with_two_knobs_are_refused():
    with pytest.raises(SpecfitError, match="probes train values of one knob") as caught:
        specfit.fit(_tiny_image()[0].numpy(), "wire", steps=2, search="probes", two_knobs=True)
    assert caught.value.setting == "search"


def test_select_prints_the_2d_table_and_its_json(cli, images):
    result = cli("select", images["noise32"], *TINY_WIRE, "--two-knobs")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1].split() == ["scale", "\\", "omega_0", "10", "30"]
    assert [line.split()[0] for line in lines[2:5]] == ["5", "10", "20"]
    assert sum(line.count("*") for line in lines[2:5]) == 1
    assert "omega_0 = " in lines[-1] and "scale = " in lines[-1]
    data = cli("select", images["noise32"], *TINY_WIRE, "--two-knobs", "--json").json()
    assert data["second_knob"] == "scale" and data["second_chosen"] in data["table_2d"]["rows"]
    assert np.shape(data["table_2d"]["w_mean"]) == (3, 2)


def test_one_knob_select_json_is_unchanged(cli, images):
    data = cli("select", images["noise32"], *TINY_WIRE, "--json").json()
    assert list(data) == ONE_KNOB_KEYS


def test_cli_refuses_two_knobs_for_a_family_without_a_second_knob(cli, images):
    result = cli("select", images["noise32"], "--model", "ff-positional", "--two-knobs")
    assert_single_error(result.code, result.out, result.err)
    assert "model ff-positional has no second knob" in result.err


def test_api_select_and_fit_take_two_knobs_by_keyword(images):
    """specfit.select and specfit.fit list the setting in their signatures and take it."""
    assert "two_knobs" in inspect.signature(specfit.select).parameters
    assert "two_knobs" in inspect.signature(specfit.fit).parameters
    selection = specfit.select(load_signal(images["noise32"]), "wire", grid=[10.0, 30.0], inits=2,
                               width=8, hidden_layers=1, two_knobs=True)
    assert selection.second_knob == "scale"


def test_a_grid_search_refuses_two_knobs(tmp_path):
    from specfit.bench.grid import grid_search

    with pytest.raises(SpecfitError, match="two_knobs is for fit and select"):
        grid_search([None], FitSettings(two_knobs=True), tmp_path / "records", [10.0, 30.0])
    assert not (tmp_path / "records").exists()
