"""The folder ``specfit ntk --out`` writes: ``report.html`` (the figures with reading guides),
``kernel.png`` and ``ntk.json`` (:meth:`~specfit.tangent.analysis.NTKResult.to_json`).

The folder is written under a temporary name beside it and renamed into place, so that it is
either complete or absent. Whether an existing folder may be replaced is the command line's
policy (``specfit.runs.outputs``), checked before any work.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from pathlib import Path

from specfit.figures import figure_uri
from specfit.tangent.analysis import NTKResult
from specfit.tangent.figures import result_figure
from specfit.util.files import current_umask

RECORD = "ntk.json"
PAGE = "report.html"
FIGURE = "kernel.png"

GUIDE = ("<b>K</b>: the kernel between every two grid points (row-major); a stationary kernel is constant "
         "along each diagonal. <b>Profile</b>: the kernel between the centre point and the points along "
         "the first axis; its width is the distance over which training at one point moves the output at "
         "another. <b>Spectrum</b>: the profile's DFT magnitude; frequencies where it is small are learned "
         "slowly (spectral bias). <b>Eigenvalues</b>: gradient descent fits the component along "
         "eigenvector i at the rate exp(-eta lambda_i t); a steep fall means a badly conditioned kernel.")


def page_html(result: NTKResult, figure: str) -> str:
    """The page: a headline, the figure (a data URI or a file name) with its guide, the numbers."""
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    tenth = result.eigenvalues[min(9, len(result.eigenvalues) - 1)]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in (
        ("model", result.model), ("hyperparameters", params),
        ("grid", f"{result.size} points per axis, {result.dims}-D, coordinates in [-1, 1]"),
        ("initialisations", str(result.seeds)), ("stationarity", f"{result.stationarity:.4f}"),
        ("bandwidth (99 % of the profile's energy beyond the constant)",
         f"{result.bandwidth:g} cycles over [-1, 1]"),
        ("largest eigenvalue", f"{result.eigenvalues[0]:.4g}"),
        ("condition (largest / 10th)", f"{result.eigenvalues[0] / max(tenth, 1e-300):.3g}"),
        ("seconds", f"{result.seconds:.2f}")))
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>NTK of {html.escape(result.model)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "img{max-width:100%}th{text-align:left;padding-right:1em}.guide{color:#444;background:#f6f7f9;"
            "border-left:3px solid #9ab;padding:.3em .6em}</style></head><body>"
            f"<h1>Neural tangent kernel of {html.escape(result.model)}</h1>"
            f"<img src='{html.escape(figure)}' alt='the kernel, its profile, spectrum and eigenvalues'>"
            f"<p class='guide'>{GUIDE}</p><table>{rows}</table></body></html>")


FILES = (PAGE, FIGURE, RECORD)


def write_page(result: NTKResult, out_dir: Path) -> Path:
    """Write the folder (module docstring) at ``out_dir``, replacing what is there; returns it."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        stage.chmod(0o777 & ~current_umask())
        figure = result_figure(result)
        figure.savefig(stage / FIGURE, dpi=90, bbox_inches="tight")
        (stage / PAGE).write_text(page_html(result, figure_uri(figure, dpi=90)), encoding="utf-8")
        (stage / RECORD).write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        stage.rename(out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out_dir
