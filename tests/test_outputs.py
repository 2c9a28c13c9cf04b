"""One output policy for every command: what may be written, nothing created before every check,
records read back checked, executors that cannot start say so at once (specfit.runs.outputs,
specfit.runs.records, specfit.bench)."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pytest
from helpers import SMALL_SIREN, tree

from specfit.bench import executor
from specfit.bench.executor import Task, run_tasks
from specfit.bench.suites import write_results_page
from specfit.errors import SpecfitError
from specfit.runs.outputs import OutputFolder, check_output_file, file_path
from specfit.runs.records import Each, MayOmit, mismatch
from specfit.runs.render import render_run


def dead_address() -> str:
    """An address on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def canned(log: Path, key: str, record: dict, shape: object = dict) -> Task:
    return Task(key, "helpers:canned_task", {"log": str(log), "key": key, "record": record}, shape)


# --- the policy ---------------------------------------------------------------------------------


def test_a_folder_of_a_kind_holds_only_its_entries_and_staging_leftovers(tmp_path):
    kind = OutputFolder("a demo", ("*.json", "data/"), "--demo")
    kind.check(tmp_path / "absent")
    folder = tmp_path / "demo"
    (folder / "data").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / ".a.partial-x1y2.json").write_text("{")  # a killed staged write
    kind.check(folder)
    (folder / "b.json").symlink_to(folder / "a.json")
    with pytest.raises(SpecfitError, match=r"does not write \(b\.json\); choose another --demo"):
        kind.check(folder)
    (folder / "b.json").unlink()
    (folder / "data.json").mkdir()
    with pytest.raises(SpecfitError, match=r"data\.json/"):
        kind.check(folder)


def test_a_name_ending_in_a_slash_names_a_folder(tmp_path):
    with pytest.raises(SpecfitError, match="ends in a slash"):
        file_path(f"{tmp_path}/render.png/", "--out")
    assert file_path(str(tmp_path / "render.png"), "--out") == tmp_path / "render.png"


def test_an_output_file_is_replaced_only_when_its_writer_recognises_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("mine\n")
    with pytest.raises(SpecfitError, match="was not written by demo; choose another --page"):
        check_output_file(page, "--page", lambda p: p.read_text().startswith("# Demo"), "demo")
    page.write_text("# Demo\n")
    assert check_output_file(page, "--page", lambda p: p.read_text().startswith("# Demo"), "demo") == page
    with pytest.raises(SpecfitError, match="does not exist"):
        check_output_file(tmp_path / "new" / "page.md", "--page")
    assert check_output_file(tmp_path / "new" / "page.md", "--page", create_folder=True).name == "page.md"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.md"]


def test_shapes_say_where_a_document_departs_from_them():
    shape = {"knob": str, "table": [{"value": float, "w": (float, None)}], "extra": MayOmit(Each(bool))}
    assert mismatch({"knob": "k", "table": [{"value": 1, "w": None}]}, shape) is None
    assert mismatch({"knob": "k", "table": [{"value": True, "w": None}]}, shape) == (
        "table[0].value is not a number")
    assert mismatch({"knob": "k", "table": [], "extra": {"a": 1}}, shape) == "extra.a is not true or false"
    assert mismatch({"table": []}, shape) == "the document has no knob"
    assert mismatch([], shape) == "the document is not an object"


# --- grid records and executors ------------------------------------------------------------------


def test_a_record_with_infinities_written_as_text_is_kept(tmp_path):
    """``dumps`` writes an exact fit's PSNR as "inf": read back, it is the number again."""
    log = tmp_path / "log"
    task = canned(log, "exact", {"psnr": math.inf}, {"psnr": float})
    assert run_tasks([task], tmp_path / "records")["exact"] == {"psnr": math.inf}
    assert '"inf"' in (tmp_path / "records" / "exact.json").read_text()
    assert run_tasks([task], tmp_path / "records")["exact"] == {"psnr": math.inf}
    assert log.read_text().split() == ["exact"]


def test_a_dead_ray_address_fails_at_once_and_creates_nothing(tmp_path):
    started = time.perf_counter()
    with pytest.raises(SpecfitError, match=r"no Ray cluster answers at --ray 127\.0\.0\.1:.*refused"):
        run_tasks([canned(tmp_path / "log", "a", {})], tmp_path / "out" / "records",
                  ray_address=dead_address())
    assert time.perf_counter() - started < 10
    assert tree(tmp_path) == set()


def test_a_ray_address_that_never_answers_is_given_up_after_the_connect_timeout(tmp_path, monkeypatch):
    waited = []

    def silent(address: tuple[str, int], timeout: float) -> socket.socket:
        waited.append(timeout)
        raise TimeoutError

    monkeypatch.setattr(executor.socket, "create_connection", silent)
    monkeypatch.setattr(executor, "RAY_CONNECT_SECONDS", 0.25)
    with pytest.raises(SpecfitError, match=r"nothing answered within 0\.25 s"):
        run_tasks([canned(tmp_path / "log", "a", {})], tmp_path / "records", ray_address="ray://127.0.0.1:10001")
    assert waited == [0.25] and tree(tmp_path) == set()


def test_auto_follows_ray_address_to_the_cluster_it_names(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", dead_address())
    with pytest.raises(SpecfitError, match="no Ray cluster answers at --ray auto"):
        run_tasks([canned(tmp_path / "log", "a", {})], tmp_path / "records", ray_address="auto")
    assert tree(tmp_path) == set()


def test_nothing_is_reported_before_the_executor_has_started(tmp_path):
    log, folder, reported = tmp_path / "log", tmp_path / "records", []
    run_tasks([canned(log, "a", {"x": 1})], folder)
    with pytest.raises(SpecfitError, match="no Ray cluster answers"):
        run_tasks([canned(log, "a", {"x": 1}), canned(log, "b", {"x": 2})], folder,
                  ray_address=dead_address(), on_done=lambda task, result, cached: reported.append(task.key))
    assert reported == [] and sorted(p.name for p in folder.iterdir()) == ["a.json"]


def test_recorded_tasks_need_no_executor(tmp_path):
    log = tmp_path / "log"
    run_tasks([canned(log, "a", {"x": 1})], tmp_path / "records")
    assert run_tasks([canned(log, "a", {"x": 1})], tmp_path / "records", ray_address=dead_address()) == {
        "a": {"x": 1}}


def test_a_grid_whose_record_was_edited_trains_that_task_again(cli, images, tmp_path):
    out = tmp_path / "grid"
    args = ["grid", images["smooth"], *SMALL_SIREN, "--grid", "10,30", "--steps", "5", "--inits", "2",
            "--out", out, "--json"]
    first = cli(*args)
    assert first.code == 0, first.err
    (train,) = out.glob("*-train-*.json")
    record = json.loads(train.read_text())
    record["10.0"]["psnr_train"] = "very good"
    train.write_text(json.dumps(record))
    again = cli(*args)
    assert again.code == 0, again.err
    assert scores(again.out) == scores(first.out)
    assert json.loads(train.read_text())["10.0"]["psnr_train"] == scores(first.out)[0][0]["psnr_train"]


def scores(printed: str) -> list[list[dict]]:
    """The rows of a grid's summaries without their seconds (which differ from run to run)."""
    return [[{k: v for k, v in row.items() if k != "seconds"} for row in summary["rows"]]
            for summary in json.loads(printed)]


# --- fits of many signals ------------------------------------------------------------------------


def test_fits_of_many_signals_replace_their_own_summary_and_refuse_a_users(cli, images, tmp_path):
    out = tmp_path / "runs"
    args = ["fit", images["noise32"], images["smooth"], *SMALL_SIREN, "--no-fresh", "--steps", "1",
            "--out", out]
    assert cli(*args).code == 0
    assert cli(*args, "--overwrite").code == 0
    (out / "summary.csv").write_text("name,grade\nme,A\n")
    refused = cli(*args, "--overwrite")
    assert refused.code == 2 and "summary.csv exists and was not written by specfit fit" in refused.err
    assert (out / "summary.csv").read_text() == "name,grade\nme,A\n"


# --- renders --------------------------------------------------------------------------------------


def test_a_render_to_a_name_ending_in_a_slash_is_refused_and_writes_nothing(fitted_run, tmp_path):
    for out in (f"{tmp_path}/render.png/", f"{tmp_path}/renders/"):
        with pytest.raises(SpecfitError, match="ends in a slash"):
            render_run(fitted_run.path, "8x8", out)
    assert tree(tmp_path) == set()


def test_a_render_into_a_missing_folder_is_refused_before_the_model_is_built(fitted_run, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr("specfit.runs.render.load_model", lambda *a: pytest.fail("the model was built"))
    with pytest.raises(SpecfitError, match="does not exist"):
        render_run(fitted_run.path, "8x8", tmp_path / "missing" / "out.png")
    assert tree(tmp_path) == set()


# --- the results page -------------------------------------------------------------------------


SUITE = {"suite": "demo", "profile": "quick", "description": "a demo", "protocol": "tiny", "seconds": 60.0,
         "machine": "x86_64", "date": "2026-11-30", "commit": None, "grids": [], "fits": []}


def test_the_results_page_replaces_only_a_page_it_wrote(tmp_path):
    folder = tmp_path / "suites" / "demo-quick"
    folder.mkdir(parents=True)
    (folder / "suite.json").write_text(json.dumps(SUITE))
    page = tmp_path / "results.md"
    page.write_text("# My notes\n")
    with pytest.raises(SpecfitError, match="not written by specfit bench; choose another --page"):
        write_results_page([folder], page)
    assert page.read_text() == "# My notes\n"
    page.unlink()
    write_results_page([folder], page)
    write_results_page([folder], page)  # its own page is replaced
    assert "## demo (quick profile)" in page.read_text()


@pytest.mark.parametrize("text", ["{", "[]", json.dumps({**SUITE, "grids": {"a": 1}}),
                                  json.dumps({**SUITE, "seconds": "long"}),
                                  json.dumps({**SUITE, "fits": [{"job": {}, "result": {}}]})])
def test_suite_results_that_are_not_what_bench_wrote_are_one_line_errors(tmp_path, text):
    folder = tmp_path / "demo-quick"
    folder.mkdir()
    (folder / "suite.json").write_text(text)
    with pytest.raises(SpecfitError, match=r"suite\.json .*give --page '' to write no results") as caught:
        write_results_page([folder], tmp_path / "results.md")
    assert "\n" not in str(caught.value) and not (tmp_path / "results.md").exists()


def test_the_render_command_refuses_an_out_ending_in_a_slash(fitted_run, tmp_path, capsys):
    from specfit.cli.main import main

    assert main(["render", str(fitted_run.path), "--size", "8x8", "--out", f"{tmp_path}/big.png/"]) == 2
    assert "ends in a slash" in capsys.readouterr().err
    assert tree(tmp_path) == set()


def test_the_bench_command_refuses_a_foreign_page_before_any_work(tmp_path, monkeypatch, capsys):
    from specfit.cli.main import main

    monkeypatch.setattr("specfit.bench.suites.run_suite", lambda *a, **k: pytest.fail("the suite ran"))
    page = tmp_path / "results.md"
    page.write_text("# My notes\n")
    code = main(["bench", "fresh-images", "--data", str(tmp_path), "--out", str(tmp_path / "suite"),
                 "--page", str(page)])
    assert code == 2 and "choose another --page" in capsys.readouterr().err
    assert page.read_text() == "# My notes\n" and not (tmp_path / "suite").exists()
