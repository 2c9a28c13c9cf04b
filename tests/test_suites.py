"""The reproduction suites: well-formed jobs on data that exists, and the results page."""

from __future__ import annotations

import json

import pytest

from specfit.bench.suites import PROFILES, SUITES, FitJob, get_suite, variant_name, write_results_page
from specfit.models.registry import get_entry, resolve_params
from specfit.signals.measured import is_builtin


@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_suite_job_names_a_model_its_parameters_and_existing_data(name, profile, shared_data):
    suite = get_suite(name, profile)
    assert suite.jobs and suite.protocol
    for job in suite.jobs:
        entry = get_entry(job.model)
        resolve_params(entry, job.params)
        sources = (job.source,) if isinstance(job, FitJob) else job.sources
        assert all(is_builtin(source) or (shared_data / source).is_file() for source in sources), sources
        if not isinstance(job, FitJob):
            assert entry.knob is not None


def test_unknown_suites_and_profiles_are_refused():
    with pytest.raises(ValueError, match="unknown suite"):
        get_suite("nope", "quick")
    with pytest.raises(ValueError, match="quick or paper"):
        get_suite("tuner", "fast")


def test_the_results_page_shows_regrets_and_published_numbers(tmp_path):
    record = {
        "suite": "demo", "profile": "quick", "description": "a demo", "protocol": "tiny", "seconds": 120.0,
        "machine": "x86_64, 2 CPU threads", "date": "2026-11-30", "commit": "abc1234",
        "grids": [{"job": {"label": "SIREN", "model": "siren"}, "summaries": [
            {"selection_seconds": 1.0, "grid_seconds": 10.0, "objectives": {
                "train": {"key": "psnr_train", "fresh_regret": 0.5, "default_regret": 2.0, "spearman": 0.9}}},
            {"selection_seconds": 3.0, "grid_seconds": 30.0, "objectives": {
                "train": {"key": "psnr_train", "fresh_regret": 1.5, "default_regret": 4.0,
                          "spearman": 0.7}}}]}],
        "fits": [{"job": {"label": "gaussian", "model": "ff-gaussian", "published": {"psnr_test": 25.57}},
                  "result": {"psnr_test": 24.0, "value": 10.0}},
                 {"job": {"label": "none", "model": "relu", "published": {"psnr_test": 19.32}},
                  "result": {"psnr_test": 19.0, "value": None}}],
    }
    folder = tmp_path / "suites" / "demo-quick"
    folder.mkdir(parents=True)
    (folder / "suite.json").write_text(json.dumps(record))
    page = write_results_page([folder, tmp_path / "absent"], tmp_path / "docs" / "results.md").read_text()
    assert "| SIREN | siren | 2 | train | 1.00 | 3.00 | 0.80 | 2.0 | 20.0 |" in page
    assert "| gaussian | ff-gaussian | 1 | 10.0 | psnr_test | 24.00 | 25.57 |" in page
    assert "| none | relu | 1 | - | psnr_test | 19.00 | 19.32 |" in page  # a model without a knob
    assert "abc1234" not in page  # the commit stays in the record, out of the reader's way
    assert "| job | model | signals | objective | FreSh regret | default regret | rank agreement |" in page
    assert page.index("## In short") < page.index("## demo (quick profile)")
    assert ("FreSh's choice was on target, within 0.5 dB (0.01 IoU) of the best value of a full grid search, "
            "in 0; off it but no worse than the model's default in 1; and worse than the model's default in "
            "0.") in page
    assert ("- SIREN (demo, quick), train: FreSh's regret 1.00 dB, the default's 3.00 dB: no worse than the "
            "default; off the grid's best.") in page
    assert "FreSh variants" not in page  # one record: nothing to compare
    variant = {**record, "fresh": {"spectrum": "published"}, "fits": [],
               "label": "before (published spectrum; commit 1234abc)"}
    variant["grids"] = json.loads(json.dumps(record["grids"]))
    for summary, regret in zip(variant["grids"][0]["summaries"], (3.0, 5.0), strict=True):
        summary["objectives"]["train"]["fresh_regret"] = regret
    (folder / "suite-spectrum-published.json").write_text(json.dumps(variant))
    page = write_results_page([folder], tmp_path / "docs" / "results.md").read_text()
    assert "| job | objective | defaults | earlier settings: published spectrum |" in page
    assert "| SIREN | train | 1.00 | 4.00 |" in page


def test_variant_names():
    assert variant_name({}) == ""
    assert variant_name({"spectrum": None, "objective": None}) == ""
    assert variant_name({"spectrum": "published", "objective": "generalize"}) == (
        "objective-generalize-spectrum-published")


def test_trust_verdicts_compare_with_the_default_first():
    from specfit.bench.suites import trust_verdict

    assert "**worse than the default** by 0.07 dB" in trust_verdict(0.07, 0.0)  # within 0.5 dB, yet worse
    assert trust_verdict(0.0, 0.2).endswith("no worse than the default; on target")
    assert trust_verdict(1.38, 7.29).endswith("no worse than the default; off the grid's best")
    assert trust_verdict(0.3, None).endswith("the default is not a grid value; on target")
    assert "worse than the default" in trust_verdict(0.02, 0.0, iou=True)
