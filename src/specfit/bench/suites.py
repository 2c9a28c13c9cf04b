"""Named reproduction suites (``specfit bench NAME --profile quick|paper``).

A suite is a list of jobs on real data: grid searches (FreSh against the grid it replaces, see
:mod:`specfit.bench.grid`) and single fits compared with published numbers. Jobs become
:mod:`specfit.bench.executor` tasks, so a suite resumes where it stopped and can run on a Ray cluster;
the records of a suite go to one folder, and :func:`write_results_page` turns all recorded suites
into ``docs/results.md``.

Profiles: ``quick`` is sized for two CPU cores (about half an hour a suite, networks with fewer
parameters than the signal has values, so that no network can simply memorise it); ``paper`` is
the published protocol's size, for a GPU.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from specfit.bench.executor import Task, run_tasks
from specfit.bench.grid import _digest, grid_search
from specfit.config.settings import FitSettings
from specfit.errors import SpecfitError
from specfit.fitting.pipeline import fit_signal
from specfit.kinds.kind import LoadOptions
from specfit.kinds.load import load_signal
from specfit.signals.measured import is_builtin
from specfit.training.compaction import CompactionPlan
from specfit.training.loop import FitOptions

PROFILES = ("quick", "paper")


@dataclass(frozen=True)
class GridJob:
    """Grid search of ``model`` on ``sources`` (paths relative to the data folder)."""

    label: str
    model: str
    sources: tuple[str, ...]
    params: dict = field(default_factory=dict)
    load: dict = field(default_factory=dict)
    steps: int = 300
    grid: tuple[float, ...] | None = None
    fit: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FitJob:
    """One fit (FreSh choosing the knob unless ``params`` sets it), compared with ``published``."""

    label: str
    model: str
    source: str
    params: dict = field(default_factory=dict)
    load: dict = field(default_factory=dict)
    steps: int = 300
    fit: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    jobs: tuple[GridJob | FitJob, ...]
    protocol: str


def _settings(model: str, params: dict, steps: int, fit: dict, extra: dict | None = None) -> FitSettings:
    options = FitOptions(steps=steps, eval_every=max(1, steps // 10), compile="off", **fit)
    return FitSettings(model=model, params=dict(params), device="auto", fit=options, **(extra or {}))


def variant_name(fresh: dict) -> str:
    """File-name part for a suite run with FreSh settings ``fresh`` (``""``: the defaults)."""
    return "-".join(f"{k}-{v}" for k, v in sorted(fresh.items()) if v is not None)


def fit_task(source: str, load: dict, settings: dict) -> dict:
    """One fit of a suite: its scores, the knob's value and seconds."""

    run = fit_signal(load_signal(source, LoadOptions(**load)), FitSettings.from_json(settings))
    metrics = run.metrics.to_json()
    keep = (
        "psnr",
        "psnr_train",
        "psnr_test",
        "ssim",
        "psnr_grad",
        "iou_boundary",
        "iou_uniform",
        "chamfer",
        "value",
        "knob",
        "params",
        "train_seconds",
        "compaction",
    )
    return {key: metrics.get(key) for key in keep} | {
        "selection_seconds": (metrics["selection"] or {}).get("seconds")
    }


# --- the suites --------------------------------------------------------------------------------

KODAK = tuple(f"kodak/kodim{i:02d}.png" for i in range(1, 11))
NATURAL_TEST = tuple(f"natural/test/{i:02d}.png" for i in range(16))


def fresh_images(profile: str) -> Suite:
    quick = profile == "quick"
    images = KODAK[:3] if quick else KODAK
    load = {"resize": 64} if quick else {}
    steps = 300 if quick else 2000
    shape = {"width": 64, "hidden_layers": 2} if quick else {}
    jobs = (
        GridJob("SIREN", "siren", images, shape, load, steps),
        GridJob(
            "Gaussian FF", "ff-gaussian", images, {**shape, "features": 64} if quick else {}, load, steps
        ),
        GridJob("FINER (bias k)", "finer", images, shape, load, steps),
        GridJob("FINER (omega_0)", "finer-omega", images, shape, load, steps),
        GridJob("hash grid", "hashgrid", images, {"log2_table": 10} if quick else {}, load, steps),
        GridJob("TUNER", "tuner", images, shape, load, steps),
    )
    size = "3 Kodak images at 64 px (short side), 64-wide networks with 2 hidden layers (about 8.6k "
    size += "parameters against 12k values; hash grid 2^10 entries a level), 300 steps"
    return Suite(
        "fresh-images",
        "FreSh against the grid search it replaces, on Kodak images",
        jobs,
        size if quick else "kodim01-10 at full resolution, the models' default sizes, 2000 steps",
    )


def fresh_signals(profile: str) -> Suite:
    quick = profile == "quick"
    steps = 300 if quick else 2000
    shape = {"width": 64, "hidden_layers": 2} if quick else {}
    jobs = (
        GridJob("audio", "siren", ("audio/bach.wav",), shape, {"max_seconds": 1.0} if quick else {}, steps),
        GridJob(
            "video",
            "siren",
            ("video/bikes.mp4",),
            shape,
            {"max_frames": 8, "resize": 32} if quick else {"max_frames": 50},
            steps,
        ),
        GridJob(
            "volume",
            "siren",
            ("volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",),
            shape,
            {"resize": 32} if quick else {"resize": 96},
            steps,
        ),
        GridJob(
            "bunny",
            "ff-gaussian",
            ("meshes/bunny.ply",),
            {"width": 128, "hidden_layers": 2},
            {},
            steps,
            fit={"lr": 5e-4},
        ),
        GridJob(
            "armadillo",
            "ff-gaussian",
            ("meshes/armadillo.obj",),
            {"width": 128, "hidden_layers": 2},
            {},
            steps,
            fit={"lr": 5e-4},
        ),
    )
    size = "SIREN 64 x 2 on 1 s of audio, 8 frames of video at 32 px and the volume at 32 voxels; "
    size += "Gaussian FF 128 x 2 on the meshes; 300 steps"
    return Suite(
        "fresh-signals",
        "FreSh against the grid search on audio, video, a volume and meshes",
        jobs,
        size
        if quick
        else "the same signals at larger sizes (audio whole, 50 frames, 96 voxels), "
        "default widths, 2000 steps",
    )


# Label: model, published held-out PSNR, and parameters of its own (ff-basic's period: the lattice
# split's coordinates are i / N in [0, 1)).
FF_IMAGES = {
    "none": ("relu", 19.32, {}),
    "basic": ("ff-basic", 21.71, {"period": 1.0}),
    "positional": ("ff-positional", 24.95, {}),
    "gaussian": ("ff-gaussian", 25.57, {}),
}


def ff_images(profile: str) -> Suite:
    quick = profile == "quick"
    images = NATURAL_TEST[:4] if quick else NATURAL_TEST
    load = {"resize": 64} if quick else {"resize": 512}
    steps = 500 if quick else 2000
    jobs = []
    for label, (model, published, own) in FF_IMAGES.items():
        params = {"width": 128 if quick else 256, "hidden_layers": 3, **own}
        for source in images:
            jobs.append(
                FitJob(
                    label,
                    model,
                    source,
                    params,
                    load,
                    steps,
                    {"lr": 1e-3},
                    {"split": "lattice"},
                    {"psnr_test": published},
                )
            )
    return Suite(
        "ff-images",
        "Fourier features, 2-D images: train on even pixels, test on odd ones",
        tuple(jobs),
        "4 natural test images at 64 px, 128 x 4 ReLU, 500 steps, lr 1e-3; knobs by FreSh"
        if quick
        else "16 natural test images at 512 px, 256 x 4 ReLU, 2000 steps",
    )


FF_SHAPES = {
    "none": ("relu", 0.864),
    "basic": ("ff-basic", 0.892),
    "positional": ("ff-positional", 0.960),
    "gaussian": ("ff-gaussian", 0.973),
}


def ff_shapes(profile: str) -> Suite:
    quick = profile == "quick"
    layers = 3 if quick else 7
    steps = 300 if quick else 10000
    jobs = tuple(
        FitJob(
            label,
            model,
            "meshes/armadillo.obj",
            {"width": 256, "hidden_layers": layers},
            {},
            steps,
            {"lr": 5e-4, "schedule": "exp"},
            {},
            {"iou_boundary": published},
        )
        for label, (model, published) in FF_SHAPES.items()
    )
    return Suite(
        "ff-shapes",
        "Fourier features, 3-D occupancy of the armadillo (IoU on boundary points)",
        jobs,
        "4 x 256 ReLU, 300 steps of 32^3 points" if quick else "8 x 256 ReLU, 10k steps",
    )


TUNER_MODELS = {
    "TUNER": ("tuner", {}, 32.14),
    "TUNER uniform init": ("tuner-uniform", {}, 33.07),
    "SIREN": ("siren", {"hidden_layers": 1}, None),
    "FINER": ("finer", {"hidden_layers": 1}, 30.23),
    "Gaussian FF": ("ff-gaussian", {"hidden_layers": 0, "features": 128}, 29.42),
}


def tuner(profile: str) -> Suite:
    quick = profile == "quick"
    images = NATURAL_TEST[:2] if quick else NATURAL_TEST
    load = {"resize": 128} if quick else {}
    steps = 300 if quick else 1000
    jobs = []
    for label, (model, params, published) in TUNER_MODELS.items():
        for source in images:
            jobs.append(
                FitJob(
                    label,
                    model,
                    source,
                    {"width": 256, **params},
                    load,
                    steps,
                    {},
                    {"fresh": False, "holdout": 0.05},
                    {"psnr": published} if published else {},
                )
            )
    prune = {
        "target_inputs": 60,
        "ramp_steps": 200 if quick else 1000,
        "finetune_steps": 300 if quick else 1000,
        "alpha": 1e-2,
    }
    jobs.append(
        FitJob(
            "pruning",
            "tuner",
            "natural/test/00.png",
            {"width": 300, "inputs": 300},
            {"resize": 128} if quick else {},
            500 if quick else 2000,
            {},
            {"fresh": False, "holdout": 0.05, "compaction": prune},
            {"params_after": 19380, "psnr_before": 30.18, "psnr_after": 29.55},
        )
    )
    return Suite(
        "tuner",
        "TUNER against its uniform init, SIREN, FINER and Gaussian FF at equal width; pruning",
        tuple(jobs),
        "2 natural test images at 128 px, width 256, one hidden layer, 300 steps; pruning 300 -> 60 inputs"
        if quick
        else "16 natural test images at 512 px, 1000 steps",
    )


MEASURED_FF = {  # Tancik et al. 2020: PSNR (none, basic, positional, Gaussian); NeRF at 400 px
    "ct": (16.75, 23.31, 26.89, 28.33),
    "mri": (26.14, 28.58, 32.23, 34.51),
    "nerf": (22.41, 23.16, 25.28, 25.48),
}
MEASURED_MODELS = (("none", "relu"), ("basic", "ff-basic"), ("positional", "ff-positional"),
                   ("gaussian", "ff-gaussian"))
# Published scales (sigma, sigma_p) on the paper's [0, 1) coordinates; specfit's are in [-1, 1], so
# the same frequencies are sigma / 2 and sigma_p - 1. NeRF's sigma is in world units, and specfit's
# field divides world points by 1.5: sigma * 1.5.
MEASURED_SCALES = {"ct": {"sigma": 2.0, "scale": 2.0}, "mri": {"sigma": 2.5, "scale": 3.0},
                   "nerf": {"sigma": 9.0, "scale": 7.0}}
MEASURED_LRS = {"ct": (1e-2, 1e-2, 1e-3, 1e-3), "mri": (2e-3,) * 4, "nerf": (1e-2, 5e-3, 5e-4, 5e-4)}


def measured(profile: str) -> Suite:
    """CT, MRI and NeRF: FreSh against the grid on measured spectra, and the Fourier-features rows."""
    quick = profile == "quick"
    brain = "volume/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    lego = "nerf/lego_train_100x100.npz"
    signals = {
        "ct": (("shepp-logan", "phantom-1"), {"measure": "ct", "resize": 64 if quick else 512}),
        "mri": ((brain, "phantom3d-1"), {"measure": "mri", "resize": 24 if quick else 96}),
        "nerf": ((lego,), {"resize": 50} if quick else {}),
    }
    steps = {"ct": 300 if quick else 1000, "mri": 200 if quick else 1000, "nerf": 1000 if quick else 5000}
    grids = {"ct": (0.5, 1.0, 2.0, 4.0, 8.0), "mri": (0.5, 1.0, 2.0, 4.0), "nerf": (1.0, 3.0, 9.0, 27.0)}
    quick_widths = {"ct": 128, "mri": 128, "nerf": 64}
    jobs: list[GridJob | FitJob] = []
    for task, (sources, load) in signals.items():
        shape = {"width": quick_widths[task] if quick else 256, "hidden_layers": 2 if quick else 3}
        params = {**shape, "features": 128} if quick else dict(shape)
        jobs.append(GridJob(f"{task.upper()} Gaussian FF", "ff-gaussian", sources, params, load, steps[task],
                            grids[task], {"lr": MEASURED_LRS[task][3]}))
        for index, (label, model) in enumerate(MEASURED_MODELS):
            scales = MEASURED_SCALES[task]
            knob = {"ff-positional": {"scale": scales["scale"]}, "ff-gaussian": {"sigma": scales["sigma"]}}
            job_params = {**shape, **knob.get(model, {})}
            for source in sources:
                jobs.append(FitJob(f"{task.upper()} {label}", model, source, job_params, load, steps[task],
                                   {"lr": MEASURED_LRS[task][index]}, {},
                                   {"psnr": MEASURED_FF[task][index]}))
    return Suite(
        "measured",
        "Signals seen only through measurements (CT from 20 projections, MRI from 13 % of k-space, NeRF "
        "from camera views): FreSh on measured spectra against the grid, and the Fourier-features rows at "
        "the published scales",
        tuple(jobs),
        "CT: Shepp-Logan and a random phantom at 64 px, 300 steps; MRI: the brain volume and a random "
        "phantom at 24^3, 200 steps (ReLU 128 x 3); NeRF: Lego at 50 px, 1000 steps of 1024 rays (ReLU "
        "64 x 3)"
        if quick
        else "CT at 512 px, 1000 steps; MRI at 96^3, 1000 steps; NeRF Lego at 100 px, 5000 steps; "
        "ReLU 256 x 4",
    )


SUITES: dict[str, Callable[[str], Suite]] = {
    "fresh-images": fresh_images,
    "fresh-signals": fresh_signals,
    "ff-images": ff_images,
    "ff-shapes": ff_shapes,
    "tuner": tuner,
    "measured": measured,
}


# --- running and reporting ---------------------------------------------------------------------


def _source(data: Path, source: str) -> str:
    """A job's signal: a path in the data folder, or a built-in phantom's name."""
    return source if is_builtin(source) else str(data / source)


def get_suite(name: str, profile: str) -> Suite:
    if name not in SUITES:
        raise SpecfitError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    if profile not in PROFILES:
        raise SpecfitError(f"profile must be quick or paper, got {profile!r}", setting="profile")
    return SUITES[name](profile)


def _fit_tasks(job: FitJob, data: Path, index: int) -> Task:
    extra = dict(job.settings)
    if "compaction" in extra:

        extra["compaction"] = CompactionPlan(**extra["compaction"])
    settings = _settings(job.model, job.params, job.steps, job.fit, extra)

    args = {"source": _source(data, job.source), "load": job.load, "settings": settings.to_json()}
    return Task(f"fit-{index:03d}-{job.model}-{_digest(args)}", "specfit.bench.suites:fit_task", args)


def run_suite(
    name: str,
    profile: str,
    data: Path,
    folder: Path,
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[Task, dict, bool], None] | None = None,
    fresh: dict | None = None,
) -> dict:
    """Run (or resume) a suite; returns its results record, also written to ``folder/suite.json``.

    ``fresh`` overrides FreSh's settings (``spectrum``, ``objective``, ``search``) in the grid
    searches: the values already trained are reused, only the selections run again, and the record
    goes to ``folder/suite-VARIANT.json`` (see :func:`variant_name`) for the variants table.
    """

    suite = get_suite(name, profile)
    data = Path(data)
    missing = sorted(
        {
            s
            for job in suite.jobs
            for s in ((job.source,) if isinstance(job, FitJob) else job.sources)
            if not is_builtin(s) and not (data / s).exists()
        }
    )
    if missing:
        raise SpecfitError(f"the data folder {data} lacks {', '.join(missing[:3])}; give it with --data")
    started = time.perf_counter()
    grids, fits = [], []
    for job in suite.jobs:
        if isinstance(job, GridJob):
            settings = _settings(job.model, job.params, job.steps, job.fit,
                                 {k: v for k, v in (fresh or {}).items() if v is not None})
            summaries = grid_search(
                [_source(data, s) for s in job.sources],
                settings,
                folder / "records",
                job.grid,
                job.load,
                workers=workers,
                ray_address=ray_address,
                on_done=on_done,
            )
            grids.append({"job": asdict(job), "summaries": summaries})
    fit_jobs = [job for job in suite.jobs if isinstance(job, FitJob)] if not variant_name(fresh or {}) else []
    if fit_jobs:
        tasks = [_fit_tasks(job, data, i) for i, job in enumerate(fit_jobs)]
        records = run_tasks(tasks, folder / "records", workers, ray_address, on_done)
        fits = [
            {"job": asdict(job), "result": records[task.key]}
            for job, task in zip(fit_jobs, tasks, strict=True)
        ]
    result = {
        "suite": name,
        "profile": profile,
        "description": suite.description,
        "protocol": suite.protocol,
        "grids": grids,
        "fits": fits,
        "seconds": time.perf_counter() - started,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
        "fresh": {k: v for k, v in (fresh or {}).items() if v is not None},
    }
    folder.mkdir(parents=True, exist_ok=True)
    variant = variant_name(fresh or {})
    name = f"suite-{variant}.json" if variant else "suite.json"
    staged = folder / f".{name}.partial"
    staged.write_text(json.dumps(result, indent=2, default=str))
    staged.replace(folder / name)
    return result


def machine() -> str:
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {torch.get_num_threads()} CPU threads{gpu}, torch {torch.__version__}"


def _commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _fmt(value: object, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def grid_table(grids: list[dict]) -> list[str]:
    """Markdown rows: per grid job, mean regrets of FreSh and of the default, and rank correlations."""
    lines = [
        "| job | model | signals | objective | FreSh regret | default regret | Spearman(-W, score) | "
        "FreSh s | grid s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for grid in grids:
        summaries = grid["summaries"]
        objectives = summaries[0]["objectives"] if summaries else {}
        for name in objectives:
            pick = [s["objectives"].get(name, {}) for s in summaries]
            lines.append(
                f"| {grid['job']['label']} | {grid['job']['model']} | {len(summaries)} | {name} | "
                f"{_fmt(_mean([p.get('fresh_regret') for p in pick]))} | "
                f"{_fmt(_mean([p.get('default_regret') for p in pick]))} | "
                f"{_fmt(_mean([p.get('spearman') for p in pick]))} | "
                f"{_fmt(_mean([s['selection_seconds'] for s in summaries]), 1)} | "
                f"{_fmt(_mean([s['grid_seconds'] for s in summaries]), 1)} |"
            )
    return lines


def fit_table(fits: list[dict]) -> list[str]:
    """Markdown rows: per fit label, the mean of each published metric, ours beside the paper's."""
    by_label: dict[str, list[dict]] = {}
    for fit in fits:
        by_label.setdefault(fit["job"]["label"], []).append(fit)
    lines = ["| job | model | signals | knob | metric | ours | published |", "|---|---|---|---|---|---|---|"]
    for label, group in by_label.items():
        job = group[0]["job"]
        values = sorted({str(f["result"].get("value")) for f in group})
        metrics = job["published"] or {"psnr": None}
        for metric, published in metrics.items():
            ours = _mean([_metric(f["result"], metric) for f in group])
            digits = 3 if "iou" in metric else 2
            lines.append(
                f"| {label} | {job['model']} | {len(group)} | {', '.join(values)} | {metric} | "
                f"{_fmt(ours, digits)} | {_fmt(published, digits)} |"
            )
    return lines


def _metric(result: dict, metric: str) -> float | None:
    compaction = result.get("compaction") or {}
    if metric == "params_after":  # parameters with the frozen frequencies, as the paper counts them
        return (compaction.get("after") or {}).get("with_frequencies")
    if metric in ("psnr_before", "psnr_after"):
        return (compaction.get(metric.split("_")[1]) or {}).get("psnr")
    return result.get(metric)


def suite_markdown(result: dict) -> list[str]:
    lines = [
        f"## {result['suite']} ({result['profile']} profile)",
        "",
        result["description"] + ".",
        "",
        f"Protocol: {result['protocol']}. Measured on {result['machine']}, commit {result['commit']}, "
        f"{result['date']}, {result['seconds'] / 60:.0f} min.",
        "",
    ]
    if result["grids"]:
        lines += [*grid_table(result["grids"]), ""]
    if result["fits"]:
        lines += [*fit_table(result["fits"]), ""]
    return lines


def trust_section(results: list[dict]) -> list[str]:
    """Plain-language verdicts from the grid regrets: where FreSh's choice can be trusted."""
    lines = [
        "## When to trust FreSh's choice",
        "",
        "Written from the regrets above, per job and objective (mean over the job's signals); "
        "a regret within 0.5 dB (0.01 IoU) of the grid's best counts as on target.",
        "",
    ]
    for result in results:
        for grid in result["grids"]:
            summaries = grid["summaries"]
            for name in summaries[0]["objectives"] if summaries else ():
                pick = [s["objectives"].get(name, {}) for s in summaries]
                fresh = _mean([p.get("fresh_regret") for p in pick])
                default = _mean([p.get("default_regret") for p in pick])
                if fresh is None:
                    continue
                tolerance = 0.01 if "iou" in (pick[0].get("key") or "") else 0.5
                unit = "" if tolerance == 0.01 else " dB"
                if fresh <= tolerance:
                    verdict = "on target"
                elif default is None:
                    verdict = "off the grid's best (the default is not a grid value)"
                elif fresh <= default:
                    verdict = "better than the default, but off the grid's best"
                else:
                    verdict = "**worse than the default**"
                versus = "" if default is None else f" (the default: {default:.2f}{unit})"
                lines.append(
                    f"- {grid['job']['label']} ({result['suite']}, {result['profile']}), {name}: "
                    f"FreSh's regret {fresh:.2f}{unit}{versus}: {verdict}."
                )
    return [*lines, ""]


def _variant_label(record: dict) -> str:
    fresh = record.get("fresh") or {}
    if record.get("label"):
        return record["label"]
    parts = [f"{k} {v}" for k, v in sorted(fresh.items())]
    return ", ".join(parts) if parts else "defaults"


def variants_table(folder: Path, result: dict) -> list[str]:
    """Markdown: mean regrets of FreSh's choice under each recorded FreSh variant of a suite
    (``suite-*.json`` beside ``suite.json``), per grid job and objective."""
    records = [result] + [json.loads(p.read_text()) for p in sorted(folder.glob("suite-*.json"))]
    records = [r for r in records if r.get("grids")]
    if len(records) < 2:
        return []
    labels = [_variant_label(r) for r in records]
    lines = ["FreSh variants: mean regret of FreSh's choice (dB; IoU for shapes), per objective, on the "
             "same trained grid.", "",
             "| job | objective | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for index, grid in enumerate(result["grids"]):
        summaries = grid["summaries"]
        for name in summaries[0]["objectives"] if summaries else {}:
            cells = []
            for record in records:
                other = record["grids"][index]["summaries"] if index < len(record["grids"]) else []
                cells.append(_fmt(_mean([s["objectives"].get(name, {}).get("fresh_regret") for s in other])))
            lines.append(f"| {grid['job']['label']} | {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_results_page(folders: list[Path], path: Path) -> Path:
    """``docs/results.md`` from the ``suite.json`` records in ``folders`` (those that exist)."""
    lines = [
        "# Results",
        "",
        "Generated by `specfit bench` from its result records; every number below was "
        "measured with the command `specfit bench NAME --profile PROFILE`. Regret is the best score "
        "of the grid minus the score at the chosen value, in dB (IoU for shapes), on training samples "
        "(train), held-out samples (held-out) or all samples; Spearman is the rank correlation between "
        "-W (FreSh's distance) and the score across the grid (1: FreSh ranks the grid as training does).",
        "",
    ]
    results = [
        json.loads((Path(f) / "suite.json").read_text())
        for f in folders
        if (Path(f) / "suite.json").is_file()
    ]
    recorded = [f for f in folders if (Path(f) / "suite.json").is_file()]
    for folder, result in zip(recorded, results, strict=True):
        lines += suite_markdown(result)
        lines += variants_table(Path(folder), result)
    if any(result["grids"] for result in results):
        lines += trust_section(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


__all__ = ["SUITES", "FitJob", "GridJob", "Suite", "get_suite", "run_suite", "write_results_page"]
