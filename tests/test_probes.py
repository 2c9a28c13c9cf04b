"""FreSh-guided probes (``search="probes"``): the candidates, successive halving, the validation
part of the generalize objective, resumed survivors, and the probes through the API and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import SMALL_SIREN, powerlaw_image

import specfit
from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.fitting.pipeline import plan_fit
from specfit.fitting.probes import (
    ProbeCurve,
    ProbeResult,
    ProbeSetup,
    _Networks,
    baseline_rungs,
    halving_baseline,
    probe_data,
    propose,
    run_probes,
    rung_steps,
    successive_halving,
)
from specfit.fresh.search import Candidate, Selection
from specfit.models.evaluate import Forward
from specfit.signals.sampling import make_sampling
from specfit.tasks.base import TrainingData
from specfit.util.formatting import shown

TINY = {"width": 16, "hidden_layers": 1}


def _selection(distances: dict[float, float | None], chosen: float) -> Selection:
    table = [Candidate(value, w, None, 0 if w is None else 3) for value, w in distances.items()]
    return Selection("omega_0", chosen, table, 0.0, 8, 3, [], {})


def _setup(steps: int = 60, slope: float = 2.0, **options: object) -> ProbeSetup:
    """SIREN 16 x 1 on a 16 x 16 power-law image, on the CPU."""
    image = powerlaw_image(16, slope, seed=0).astype(np.float32) / 255
    settings = FitSettings.for_fit(model="siren", params=dict(TINY), steps=steps, device="cpu", compile="off",
                                   **options)
    plan = plan_fit(specfit.load_signal(image), settings)
    return ProbeSetup(plan.task, plan.entry, plan.params, plan.settings, plan.device)


def test_candidates_are_freshs_choice_and_its_neighbours_on_the_lower_distance_side():
    u_shape = {10.0: 5.0, 20.0: 4.0, 30.0: 3.0, 40.0: 2.0, 50.0: 1.0, 60.0: 1.5, 70.0: 2.5, 80.0: 3.5}
    assert propose(_selection(u_shape, 50.0), 4) == [50.0, 60.0, 40.0, 70.0]
    # a value the search skipped counts as farther than an evaluated one
    skipped = {30.0: 3.0, 40.0: None, 50.0: 1.0, 60.0: 4.0, 70.0: None}
    assert propose(_selection(skipped, 50.0), 3) == [50.0, 60.0, 40.0]
    # unknown on both sides: the window stays balanced, the larger value first
    unknown = {30.0: None, 40.0: None, 50.0: 1.0, 60.0: None, 70.0: None}
    assert propose(_selection(unknown, 50.0), 5) == [50.0, 60.0, 40.0, 70.0, 30.0]
    assert propose(_selection(u_shape, 10.0), 3) == [10.0, 20.0, 30.0]  # at the grid's edge
    assert sorted(propose(_selection(u_shape, 50.0), 20)) == sorted(u_shape)  # never more than the grid
    # unsorted grids are taken in increasing order
    shuffled = {60.0: 1.5, 40.0: 2.0, 50.0: 1.0, 10.0: 5.0}
    assert propose(_selection(shuffled, 50.0), 2) == [50.0, 60.0]


def test_rung_ends_and_the_baselines_budget():
    assert rung_steps(300, (0.15, 0.3)) == [45, 90]
    assert rung_steps(2, (0.15, 0.3, 0.6)) == [1]  # a very short fit: fewer rungs, at least one step
    ends = baseline_rungs(20, 400)
    assert len(ends) == 5 and ends == sorted(set(ends))  # 20 -> 10 -> 5 -> 3 -> 2 -> 1
    alive, spent, previous = 20, 0, 0
    for end in ends:
        spent, previous, alive = spent + alive * (end - previous), end, (alive + 1) // 2
    assert 0.8 * 400 < spent <= 400


def test_probes_choose_the_best_trained_value_where_freshs_choice_is_not():
    """Training each candidate for the fit's whole budget ranks them; the probes, with less training,
    choose the same best value although FreSh's spectra put another first."""
    setup = _setup(steps=100)
    selection = _selection({10.0: 1.2, 20.0: 1.0, 30.0: 1.1, 40.0: 1.5, 50.0: 2.0}, chosen=20.0)
    probes = run_probes(setup, selection)
    full = successive_halving(setup, propose(selection), [100])  # one rung: every candidate trained fully
    trained = {curve.value: curve.rung_scores[-1] for curve in full.curves}
    assert max(trained.values()) - min(trained.values()) > 1.0  # the choice matters
    assert max(trained, key=trained.get) != selection.chosen
    assert trained[max(trained, key=trained.get)] - trained[probes.chosen] == 0.0
    assert probes.fresh_chosen == 20.0 and probes.steps < full.steps
    assert [curve.value for curve in probes.curves] == propose(selection)
    assert probes.stacked and probes.objective == "fit" and probes.on == "training"
    json.dumps(probes.to_json())  # plain JSON for metrics.json


def test_a_diverged_candidate_is_null_in_the_record():
    curves = [ProbeCurve(10.0, [5], [21.5], [21.5]), ProbeCurve(20.0, [5], [float("nan")], [float("nan")])]
    result = ProbeResult("omega_0", 10.0, "fit", "psnr", "training", [5], curves, 10, 0.1, True)
    record = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert record["curves"][1]["scores"] == record["curves"][1]["rung_scores"] == [None]
    assert record["curves"][0]["scores"] == [21.5]


def _positions(indices: torch.Tensor) -> set[int]:
    return set(indices.tolist())


@pytest.mark.parametrize("objective", ["fit", "generalize"])
def test_the_probes_never_see_the_held_out_samples(objective):
    setup = _setup(split="holdout", objective=objective)
    settings, entry = setup.settings, setup.entry
    data = setup.task.training_data(settings.split, settings.holdout, settings.seed, entry.value_range,
                                    setup.device)
    train, test = data.sampling.train, data.sampling.test
    probe = probe_data(data, objective, settings.seed)
    # the probes' samples are the training samples, in order, and nothing else
    assert torch.equal(probe.sampling.coords, data.sampling.coords[train])
    assert torch.equal(probe.targets, data.targets[train])
    if objective == "generalize":
        fitted, validation = _positions(train[probe.sampling.train]), _positions(train[probe.sampling.test])
        assert validation and fitted and not fitted & validation
        assert fitted | validation == _positions(train)  # the validation part is carved out of train
        assert not validation & _positions(test)
        assert len(validation) == round(0.1 * len(train))
    else:
        assert probe.sampling.test is None and len(probe.sampling.train) == len(train)
    # Poisoned held-out targets: a probe trained or scored on any of them would score NaN.
    poisoned = data.targets.clone()
    poisoned[test] = float("nan")
    task = setup.task
    original = task.training_data
    task.training_data = lambda *args, **kwargs: replace(original(*args, **kwargs), targets=poisoned)
    result = successive_halving(setup, [10.0, 20.0, 40.0], [4, 8])
    assert all(np.isfinite(curve.scores).all() for curve in result.curves)
    assert result.on == ("validation" if objective == "generalize" else "training")
    assert result.validation_samples == (round(0.1 * len(train)) if objective == "generalize" else None)


def test_a_mini_batch_pool_follows_the_samples_into_the_probes_training_part():
    """A forward model's pool (positions among the training samples, e.g. NeRF's central rays)
    points at the same samples once the validation part is carved out, and at none of those."""
    sampling = make_sampling((10, 10), "holdout", 0.2, seed=3)
    centre = torch.arange(0, len(sampling.train), 2)
    forward = Forward(apply=lambda model, x: x, pool=lambda step: centre if step <= 5 else None)
    data = TrainingData(sampling, torch.rand(100, 1), forward)
    probe = probe_data(data, "generalize", seed=0)
    moved = probe.forward.pool(1)
    samples = sampling.train[centre]  # the samples the pool meant, as indices of the whole grid
    fitted, validation = sampling.train[probe.sampling.train], sampling.train[probe.sampling.test]
    assert set(fitted[moved].tolist()) == set(samples.tolist()) - set(validation.tolist())
    assert len(moved) < len(centre) and probe.forward.pool(6) is None


@pytest.mark.parametrize("batch_size", [None, 64], ids=["stacked", "one-by-one"])
def test_survivors_continue_from_their_state_bit_for_bit(batch_size):
    """Two rungs (4 networks to step 5, 2 of them on to step 12) leave the survivors exactly as
    training them straight to step 12 does: parameters, Adam's moments and mini-batch stream."""
    setup = _setup(batch_size=batch_size)
    values = [10.0, 20.0, 40.0, 80.0]
    rungs = _Networks(setup, values)
    assert rungs.stacked == (batch_size is None)
    rungs.train([0, 1, 2, 3], 0, 5, lambda position, step: None)
    rungs.train([1, 3], 5, 12, lambda position, step: None)
    straight = _Networks(setup, values)
    straight.train([0, 1, 2, 3], 0, 12, lambda position, step: None)
    for k in (1, 3):
        resumed, direct = rungs.states[k], straight.states[k]
        assert resumed.step == direct.step == 12
        for name, tensor in direct.model.items():
            assert torch.equal(resumed.model[name], tensor), name
        for key, moments in direct.optimiser["state"].items():
            for name, value in moments.items():
                assert torch.equal(resumed.optimiser["state"][key][name], value), (key, name)
        if batch_size is not None:
            assert torch.equal(resumed.generator, direct.generator)
    assert rungs.states[0].step == 5  # set aside after the first rung


def test_halving_over_the_whole_grid_stays_within_its_budget():
    setup = _setup()
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    result = halving_baseline(setup, values, budget=40)
    assert result.steps <= 40 and result.fresh_chosen is None
    assert [curve.value for curve in result.curves] == values and result.chosen in values
    assert sum(1 for curve in result.curves if len(curve.rung_scores) == len(result.rungs)) == 2


def test_fit_with_probes_through_the_api():
    image = powerlaw_image(16, 1.0, seed=1).astype(np.float32) / 255
    run = specfit.fit(image, "siren", steps=20, search="probes", inits=3, device="cpu", compile="off", **TINY)
    selection = run.metrics.selection
    probes = selection["probes"]
    assert run.metrics.value == selection["chosen"] == probes["chosen"] == run.selection.chosen
    assert probes["fresh_chosen"] in [curve["value"] for curve in probes["curves"]]
    assert probes["seconds"] > 0 and selection["seconds"] > 0 and probes["steps"] > 0
    assert any(note.startswith("probes: ") for note in run.metrics.notes)
    with pytest.raises(SpecfitError, match="only a fit"):
        specfit.select(image, "siren", search="probes", inits=3)


def test_cli_fit_with_probes_records_and_draws_them_and_select_refuses(cli, images, tmp_path):
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], *SMALL_SIREN, "--steps", "10", "--inits", "2",
                 "--grid", "10,30,60,90", "--search", "probes", "--out", out, "--json")
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    probes = metrics["selection"]["probes"]
    assert metrics["value"] == probes["chosen"] and probes["rungs"] == rung_steps(10)
    assert json.loads((out / "config.json").read_text())["settings"]["search"] == "probes"
    report = (out / "report.html").read_text()
    assert "Probes: score versus training steps" in report and "The probes' table" in report
    refused = cli("select", images["noise32"], "--search", "probes")
    assert refused.code == 2 and refused.err.startswith("error:") and "specfit fit" in refused.err


def test_cli_says_what_fresh_and_the_probes_chose_with_a_bar_of_their_own(cli, images, tmp_path):
    result = cli("fit", images["noise32"], *SMALL_SIREN, "--steps", "10", "--inits", "2",
                 "--grid", "10,30,60,90", "--search", "probes", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    probes = metrics["selection"]["probes"]
    line = next(line for line in result.out.splitlines() if line.startswith("FreSh chose"))
    assert f"omega_0 = {shown(probes['fresh_chosen'])} in" in line
    assert f"the probes chose {shown(metrics['value'])} in" in line
    assert "probes: training" in result.err  # the probes' phase announces itself


def test_a_grid_search_selection_with_probes_records_them_and_counts_their_time(images):
    from specfit.bench.grid import select_task, summarize

    settings = FitSettings(params={"width": 8, "hidden_layers": 1}, search="probes", inits=2)
    settings = replace(settings, fit=replace(settings.fit, steps=10, compile="off"))
    record = select_task(str(images["noise32"]), {}, settings.to_json(), [10.0, 30.0, 60.0])
    probes = record["probes"]
    assert record["chosen"] == probes["chosen"] and probes["steps"] > 0
    trained = {str(v): {"value": v, "seconds": 1.0, "psnr_train": v, "psnr_test": -v}
               for v in (10.0, 30.0, 60.0)}
    summary = summarize(record, trained, 30.0)
    assert summary["selection_seconds"] == pytest.approx(record["seconds"] + probes["seconds"])
