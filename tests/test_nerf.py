"""NeRF as a signal type: rays of training views, held-out views, fitting through rendering,
outputs, a saved run's turntable, and FreSh on rendered views."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import specfit
from specfit.kinds.registry import task_for
from specfit.operators.rendering import turntable_poses
from specfit.signals.scene import scene_from_arrays

TINY = {"width": 16, "hidden_layers": 1, "features": 8}


def tiny_scene(views: int = 6, side: int = 8) -> object:
    rng = np.random.default_rng(0)
    images = rng.random((views, side, side, 3)).astype(np.float32)
    poses = turntable_poses(views).numpy()
    return scene_from_arrays(images, poses, focal=side * 1.2, name="tiny", held_out=2)


def test_rays_cover_every_pixel_and_the_last_views_are_held_out() -> None:
    scene = tiny_scene()
    task = task_for(scene)
    data = task.training_data("holdout", 0.1, 0, "unit", torch.device("cpu"))
    assert data.sampling.coords.shape == (6 * 64, 6)
    assert data.sampling.train.tolist() == list(range(4 * 64))
    assert data.sampling.test.tolist() == list(range(4 * 64, 6 * 64))
    assert torch.equal(data.targets[64 * 5 + 9], scene.images[5, :, 1, 1])  # view 5, row 1, column 1
    assert (task.in_features, task.out_features) == (3, 4)


def test_fit_renders_held_out_views_and_writes_a_turntable(tmp_path) -> None:
    scene = tiny_scene(side=16)  # SSIM's window needs at least 7 pixels a side
    run = specfit.fit(scene, "ff-gaussian", steps=4, eval_every=2, batch_size=32, sigma=1.0, device="cpu",
                      **TINY)
    scores = run.metrics.scores
    assert scores["test_views"] == 2 and 0.0 < scores["psnr_test"] < 60.0
    assert scores["psnr"] == scores["psnr_test"] and scores["ssim"] is not None
    assert run.metrics.history[-1]["psnr_test"] is not None
    out = tmp_path / "run"
    run.save(out)
    assert (out / "turntable.mp4").stat().st_size > 0
    assert np.load(out / "occupancy.npy").dtype == np.bool_
    config = json.loads((out / "config.json").read_text())
    assert config["signal"]["kind"] == "nerf" and config["out_features"] == 4
    from specfit.runs.render import render_run

    rendered = render_run(out, size="12x10", device="cpu")
    assert rendered.path.name == "render-12x10.mp4" and rendered.path.exists()


def test_cli_fits_a_scene_file(cli, tmp_path) -> None:
    scene = tiny_scene()
    path = tmp_path / "scene.npz"
    np.savez(path, images=(scene.images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
             poses=scene.poses.numpy(), focal=np.float64(scene.focal))
    out = tmp_path / "run"
    result = cli("fit", path, "--model", "relu", "--set", "width=16", "--set", "hidden_layers=1",
                 "--steps", "2", "--batch-size", "16", "--device", "cpu", "--out", out)
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr_test"] is not None and (out / "turntable.mp4").exists()


@pytest.mark.shared_data
def test_fresh_on_rendered_views_ranks_too_high_scales_last(shared_data) -> None:
    """Rendered views of untrained fields lose the spectrum's high end as the scale grows past the
    scene's content. Measured here: on the Lego views the distance grows with sigma from the
    smallest value on, so FreSh on NeRF does not flag a too-low scale (see docs/measured.md)."""
    path = shared_data / "nerf" / "lego_train_100x100.npz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    from specfit.fresh.search import fresh_select, plan_measured_selection

    task = task_for(specfit.load_signal(path, resize=32))
    measured = task.measured_spectrum("unit", torch.device("cpu"), "published", "fit", None)
    plan = plan_measured_selection(measured, "ff-gaussian", {"features": 64, "width": 64, "hidden_layers": 1},
                                   [0.5, 4.0, 40.0], inits=2, search="full")
    selection = fresh_select(torch.empty(0), torch.empty(0, 3), "ff-gaussian", plan=plan)
    w = {row.value: row.w_mean for row in selection.table}
    assert w[0.5] < w[4.0] < w[40.0], w


def test_early_batches_come_from_the_centre_of_the_training_views() -> None:
    scene = tiny_scene(views=4, side=8)
    data = task_for(scene).training_data("all", 0.1, 0, "unit", torch.device("cpu"))
    centre = data.forward.pool(1)
    rows, cols = (centre % 64) // 8, centre % 8
    assert len(centre) == 2 * 16 and bool(((rows >= 2) & (rows < 6) & (cols >= 2) & (cols < 6)).all())
    assert int(centre.max()) < 2 * 64  # training views only
    assert data.forward.pool(1000) is None
