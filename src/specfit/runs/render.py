"""``specfit render``: draw a saved run at any resolution, streaming so memory stays bounded."""

from __future__ import annotations

from pathlib import Path

from specfit.kinds.registry import get_kind
from specfit.kinds.render import RenderResult, scaled_size
from specfit.runs.folder import load_model, read_config
from specfit.runs.outputs import check_output_file, file_path
from specfit.runs.schema import RENDER_FIELDS, check_complete_run
from specfit.util.runtime import resolve_device


def render_run(
    run_dir: Path, size: str | None = None, out: str | Path | None = None, device: str = "auto"
) -> RenderResult:
    """Draw the model of a saved run at any size and write it as its signal's kind of file.

    Args:
        run_dir: a complete run folder (:func:`specfit.runs.schema.check_complete_run`).
        size: images and video ``"WIDTHxHEIGHT"``, audio a number of samples (the clip's duration
            is kept: the sample rate scales), volumes ``"DxHxW"``, shapes the marching-cubes grid
            resolution; or a factor of the signal's own size, ``"2x"`` (see :func:`scaled_size`);
            ``None`` draws the signal's own grid (shapes: 256).
        out: the file to write, ``.png``, ``.wav``, ``.mp4``/``.mov``/``.mkv``,
            ``.npy``/``.nii``/``.nii.gz`` or ``.ply``/``.obj`` by kind; default
            ``run_dir/render-SIZE.png`` (``.wav``, ``.mp4``, ``.npy``, ``.ply``). Its folder must
            exist; a name ending in a slash (given as text: :class:`~pathlib.Path` drops the
            slash) or naming a folder is refused, never written as a file. An existing file
            there is replaced.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    The folder, its config, the size, the output path (:func:`specfit.runs.outputs.check_output_file`)
    and the render's size against :data:`RENDER_LIMIT` are all checked before the model is built;
    anything wrong is a one-line :class:`SpecfitError`, and the output is staged and renamed, so
    nothing is half-written.
    """

    run_dir = Path(run_dir)
    out = None if out is None else file_path(out, "--out")
    check_complete_run(run_dir)
    config = read_config(run_dir, RENDER_FIELDS)
    kind = get_kind(config["signal"].get("kind", "image"))
    job = kind.render(config, scaled_size(size, kind, config["signal"]), out, run_dir)
    check_output_file(job.out, "--out")
    model, _ = load_model(run_dir, resolve_device(device), config)
    return RenderResult(job.out, job.write(model))


