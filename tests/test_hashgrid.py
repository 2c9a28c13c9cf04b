"""The multiresolution hash-grid encoding and model (methods.md 1.4 and 4).

Expected values are computed by hand in the tests (Python integers for the uint32 hash, the direct
row formula ``offsets[l] + sum_a c_a (N_l + 1)**a``, d-linear weights in float64), never through
the encoding's own ``lookup``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from specfit.encodings.hashgrid import HashGridEncoding, level_resolutions, spatial_hash
from specfit.fresh.search import InitEvaluator
from specfit.models import REGISTRY
from specfit.models.hashgrid import HashGridMLP, HashGridParams
from specfit.models.registry import build_model
from specfit.signals.sampling import grid_coordinates

PRIMES = (1, 2654435761, 805459861)
# Small CLI settings: 8 levels of a 2^12 table keep a hash-grid fit or selection under a second.
SMALL_GRID = ["--set", "log2_table=12", "--set", "levels=8", "--device", "cpu"]
FIT = [*SMALL_GRID, "--compile", "off"]


def hand_hash(corner: tuple[int, ...], table_size: int) -> int:
    """``(c_1 * 1) xor (c_2 * 2654435761) xor (c_3 * 805459861) mod T`` with uint32 products."""
    h = 0
    for c, p in zip(corner, PRIMES, strict=False):
        h ^= (c * p) % 2**32
    return h % table_size


def hand_resolutions(levels: int, n_min: int, n_max: float) -> list[int]:
    """``floor(N_min * (N_max / N_min) ** (l / (L - 1)))``, with exact endpoints."""
    if levels == 1:
        return [n_min]
    return [math.floor(n_min * (n_max / n_min) ** (lv / (levels - 1)) + 1e-6) for lv in range(levels)]


def level_rows(resolutions: list[int], d: int, table_size: int) -> list[int]:
    return [min(table_size, (n + 1) ** d) for n in resolutions]


def hand_offsets(resolutions: list[int], d: int, table_size: int) -> list[int]:
    return [0, *itertools.accumulate(level_rows(resolutions, d, table_size))][:-1]


def hand_corners(point: np.ndarray, resolutions: list[int], d: int, table_size: int) -> list[list]:
    """Per level, ``(row, weight)`` of each cell corner of ``point`` (in [0, 1)^d), computed by hand."""
    offsets = hand_offsets(resolutions, d, table_size)
    out = []
    for n, offset in zip(resolutions, offsets, strict=True):
        scaled = point.astype(np.float32) * np.float32(n)  # same float32 product as the encoding
        cell = np.floor(scaled).astype(np.int64)
        frac = scaled.astype(np.float64) - cell
        direct = (n + 1) ** d <= table_size
        level = []
        for bits in itertools.product((0, 1), repeat=d):
            c = [int(cell[a]) + bits[a] for a in range(d)]
            local = sum(c[a] * (n + 1) ** a for a in range(d)) if direct else hand_hash(tuple(c), table_size)
            weight = math.prod(frac[a] if bits[a] else 1.0 - frac[a] for a in range(d))
            level.append((offset + local, weight))
        out.append(level)
    return out


def set_table(enc: HashGridEncoding, seed: int = 0) -> torch.Tensor:
    values = torch.randn(enc.table.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        enc.table.copy_(values)
    return values


def mlp_params(in_features: int, width: int, hidden_layers: int, out_features: int) -> int:
    sizes = [in_features] + [width] * hidden_layers + [out_features]
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


# ------------------------------------------------------------------------------------------------
# The encoding


@pytest.mark.parametrize("d", [1, 2, 3])
def test_lattice_points_reproduce_table_rows(d):
    """At lattice point c / N_l, level l's output is table row offsets[l] + sum_a c_a (N_l+1)^a."""
    enc = HashGridEncoding(d, levels=2, features=2, log2_table=12, n_min=4, n_max=8)
    resolutions = [4, 8]
    assert enc.direct == [True, True]
    table = set_table(enc)
    offsets = hand_offsets(resolutions, d, 2**12)
    for level, n in enumerate(resolutions):
        lattice = list(itertools.product(range(n + 1), repeat=d))
        coords = torch.tensor(lattice, dtype=torch.float32) / n
        out = enc(coords).detach()
        rows = [offsets[level] + sum(c[a] * (n + 1) ** a for a in range(d)) for c in lattice]
        torch.testing.assert_close(out[:, 2 * level : 2 * level + 2], table[rows], atol=1e-5, rtol=0)


def test_bilinear_inside_a_cell():
    """Inside one 2-D cell the output is bilinear in the corners: centre = mean, edges and interior linear."""
    enc = HashGridEncoding(2, levels=2, features=2, log2_table=12, n_min=4, n_max=8)
    table = set_table(enc, seed=1).double()
    n, offset, (i, j) = 8, 25, (3, 5)  # level 1: N = 8, after level 0's 5^2 rows

    def corner(a: int, b: int) -> torch.Tensor:
        return table[offset + (i + a) + (j + b) * (n + 1)]

    def level_out(points: list[tuple[float, float]]) -> torch.Tensor:
        coords = torch.tensor([((i + s) / n, (j + t) / n) for s, t in points], dtype=torch.float32)
        return enc(coords).detach().double()[:, 2:4]

    centre = level_out([(0.5, 0.5)])[0]
    torch.testing.assert_close(centre, (corner(0, 0) + corner(1, 0) + corner(0, 1) + corner(1, 1)) / 4,
                               atol=1e-5, rtol=0)
    ts = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    along_x = level_out([(float(t), 0.0) for t in ts])
    along_y = level_out([(0.0, float(t)) for t in ts])
    t = ts.unsqueeze(1)
    torch.testing.assert_close(along_x, (1 - t) * corner(0, 0) + t * corner(1, 0), atol=1e-5, rtol=0)
    torch.testing.assert_close(along_y, (1 - t) * corner(0, 0) + t * corner(0, 1), atol=1e-5, rtol=0)
    s, u = 0.3, 0.8
    inside = level_out([(s, u)])[0]
    expected = ((1 - s) * (1 - u) * corner(0, 0) + s * (1 - u) * corner(1, 0)
                + (1 - s) * u * corner(0, 1) + s * u * corner(1, 1))
    torch.testing.assert_close(inside, expected, atol=1e-5, rtol=0)
    # Along a segment parallel to an axis at a fixed interior height, second differences vanish.
    segment = level_out([(float(t), 0.4) for t in ts])
    torch.testing.assert_close(segment[2:] - 2 * segment[1:-1] + segment[:-2],
                               torch.zeros_like(segment[2:]), atol=1e-5, rtol=0)


def test_spatial_hash_matches_uint32_formula():
    """spatial_hash is (c1 ^ c2*2654435761 mod 2^32 ^ c3*805459861 mod 2^32) mod T, even past 32 bits."""
    table_size = 2**14
    corners3 = [(1, 2, 3), (123456, 654321, 987654), (4000000, 3000000, 2000000), (7, 2**20 + 3, 6),
                (0, 0, 0)]
    assert all(c[1] * PRIMES[1] >= 2**32 and c[2] * PRIMES[2] >= 2**32 for c in corners3[1:4])
    got = spatial_hash(torch.tensor(corners3), table_size).tolist()
    assert got == [hand_hash(c, table_size) for c in corners3]
    corners2 = [(9, 10), (65537, 99999), (2**25, 2**25 + 1)]
    got = spatial_hash(torch.tensor(corners2), table_size).tolist()
    assert got == [hand_hash(c, table_size) for c in corners2]
    batch = torch.tensor(corners3[:4]).view(2, 2, 3)  # leading shape is kept
    assert spatial_hash(batch, table_size).tolist() == [[hand_hash(c, table_size) for c in corners3[:2]],
                                                        [hand_hash(c, table_size) for c in corners3[2:4]]]


def test_fine_levels_use_the_hash():
    """A level whose (N_l+1)^d exceeds T is hashed, and lookup returns offsets[l] + the hand-computed hash."""
    boundary = HashGridEncoding(1, levels=2, log2_table=4, n_min=15, n_max=16)  # 16 <= 16, 17 > 16
    assert boundary.direct == [True, False]
    table_size, resolutions = 2**12, [16, 256, 4096]
    enc = HashGridEncoding(2, levels=3, features=2, log2_table=12, n_min=16, n_max=4096)
    assert enc.resolutions == resolutions
    assert enc.direct == [True, False, False]
    points = np.random.default_rng(3).random((40, 2)).astype(np.float32)
    indices, _ = enc.lookup(torch.from_numpy(points))
    for p, point in enumerate(points):
        expected = hand_corners(point, resolutions, 2, table_size)
        for level in (1, 2):
            assert sorted(indices[p, level].tolist()) == sorted(row for row, _ in expected[level])


@pytest.mark.parametrize(("d", "n_min", "n_max"), [(1, 4, 64), (2, 4, 16), (3, 2, 8)])
def test_direct_levels_are_collision_free(d, n_min, n_max):
    """On a direct level the (N_l+1)^d lattice corners map to (N_l+1)^d distinct rows of its block."""
    enc = HashGridEncoding(d, levels=3, features=2, log2_table=12, n_min=n_min, n_max=n_max)
    assert all(enc.direct)
    offsets = hand_offsets(enc.resolutions, d, 2**12)
    for level, n in enumerate(enc.resolutions):
        centres = (torch.tensor(list(itertools.product(range(n), repeat=d)), dtype=torch.float32) + 0.5) / n
        indices, _ = enc.lookup(centres)
        rows = indices[:, level]
        assert all(len(set(cell)) == 2**d for cell in rows.tolist())
        touched = set(rows.flatten().tolist())
        assert len(touched) == (n + 1) ** d
        assert min(touched) == offsets[level] and max(touched) == offsets[level] + (n + 1) ** d - 1


def test_gradients_reach_exactly_the_touched_rows():
    """table.grad is the weighted upstream gradient on the queried corners' rows and zero elsewhere."""
    d, table_size = 2, 2**8
    enc = HashGridEncoding(d, levels=3, features=2, log2_table=8, n_min=4, n_max=32)
    resolutions = hand_resolutions(3, 4, 32)
    assert enc.resolutions == resolutions and enc.direct == [True, True, False]
    points = np.random.default_rng(5).random((6, d)).astype(np.float32)
    upstream = torch.randn(6, 3 * 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (enc(torch.from_numpy(points)).double() * upstream).sum().backward()
    expected = torch.zeros(enc.table.shape, dtype=torch.float64)
    touched = set()
    for p, point in enumerate(points):
        for level, corners in enumerate(hand_corners(point, resolutions, d, table_size)):
            for row, weight in corners:
                expected[row] += weight * upstream[p, 2 * level : 2 * level + 2]
                touched.add(row)
    grad = enc.table.grad.double()
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-5)
    nonzero = set(torch.nonzero(grad.abs().sum(1)).flatten().tolist())
    assert nonzero == touched

    model = HashGridMLP(d, 1, HashGridParams(levels=3, features=2, log2_table=8, n_min=4, n_max=32, width=16))
    coords = torch.from_numpy(points * 2 - 1)
    model(coords).square().sum().backward()
    grad = model.encoding.table.grad
    unit = ((coords.double() + 1) / 2).float().numpy()
    touched = {row for point in unit for level in hand_corners(point, resolutions, d, table_size)
               for row, w in level if w > 0}
    assert set(torch.nonzero(grad.abs().sum(1)).flatten().tolist()) == touched


@pytest.mark.parametrize(
    ("in_features", "out_features", "params"),
    [
        (2, 3, {}),  # registry defaults
        (3, 1, {"levels": 4, "features": 4, "log2_table": 10, "n_min": 2, "n_max": 32, "width": 16,
                "hidden_layers": 1}),
        (1, 2, {"levels": 5, "features": 1, "log2_table": 6, "n_min": 8, "n_max": 128, "hidden_layers": 0}),
    ],
)
def test_parameter_count(in_features, out_features, params):
    """Parameters = sum_l min(T, (N_l+1)^d) * F for the table plus the MLP's weights and biases."""
    settings = {**REGISTRY["hashgrid"].defaults, **params}
    model = build_model("hashgrid", in_features, out_features, params)
    resolutions = hand_resolutions(settings["levels"], settings["n_min"], settings["n_max"])
    table = sum(level_rows(resolutions, in_features, 2 ** settings["log2_table"])) * settings["features"]
    mlp = mlp_params(settings["levels"] * settings["features"], settings["width"], settings["hidden_layers"],
                     out_features)
    assert model.encoding.table.numel() == table
    assert sum(p.numel() for p in model.parameters()) == table + mlp


def test_level_resolutions_grow_geometrically():
    """level_resolutions(16, 16, 2048) runs from 16 to 2048 as floor(16 * b^l) with b = 128^(1/15)."""
    res = level_resolutions(16, 16, 2048)
    assert len(res) == 16 and res[0] == 16 and res[-1] == 2048
    assert all(isinstance(n, int) for n in res)
    # 2^(7 l / 15) is irrational for 0 < l < 15, so the float floor is unambiguous there.
    assert res[1:-1] == [math.floor(16 * 2 ** (7 * lv / 15)) for lv in range(1, 15)]
    assert res[:4] == [16, 22, 30, 42]
    ratios = [b / a for a, b in itertools.pairwise(res)]
    assert all(1.3 < r < 1.45 for r in ratios)  # b = 1.3819
    assert level_resolutions(1, 16, 2048) == [16]
    assert level_resolutions(4, 16, 16) == [16, 16, 16, 16]


# ------------------------------------------------------------------------------------------------
# The model's fixed-grid cache


def test_fixed_grid_cache(monkeypatch):
    """The same coords tensor reuses the lookup, matches a cache-free model; inference keeps the cache."""
    settings = {"levels": 3, "log2_table": 8, "n_min": 4, "n_max": 32, "width": 8, "init_scale": 0.5}
    torch.manual_seed(0)
    model = HashGridMLP(2, 1, HashGridParams(**settings))
    calls = []
    original = model.encoding.lookup

    def counting(coords: torch.Tensor):
        calls.append(coords)
        return original(coords)

    monkeypatch.setattr(model.encoding, "lookup", counting)
    coords = torch.rand(50, 2) * 2 - 1
    first = model(coords)
    second = model(coords)
    assert len(calls) == 1
    assert model._cache is not None and model._cache[0] is coords
    torch.testing.assert_close(first, second)

    with torch.no_grad():  # a training step changes the table; cached indices must still see it
        model.encoding.table.add_(torch.randn_like(model.encoding.table))
    cached = model(coords)
    assert len(calls) == 1
    fresh = HashGridMLP(2, 1, HashGridParams(**settings))
    fresh.load_state_dict(model.state_dict())
    assert fresh._cache is None
    torch.testing.assert_close(cached, fresh(coords))

    twin = coords.clone()  # equal values, different tensor
    model(twin)
    assert len(calls) == 2 and model._cache[0] is twin

    with torch.inference_mode():
        model(coords)
        model(coords[:10])
    assert len(calls) == 4
    assert model._cache[0] is twin
    model(twin)
    assert len(calls) == 4


# ------------------------------------------------------------------------------------------------
# Selection and the command line


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return -10.0 * math.log10(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_cli_fit_and_render(cli, images, tmp_path):
    """fit --model hashgrid with FreSh beats the untrained model, and its run renders at a new size."""
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--model", "hashgrid", "--steps", 30, *FIT,
                 "--grid", "16,64,256", "--inits", 3, "--json", "--out", out)
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["mode"] == "fresh" and metrics["knob"] == "n_max"
    assert metrics["value"] in (16.0, 64.0, 256.0)
    assert config["params"]["n_max"] == metrics["value"]
    assert config["params"]["levels"] == 8 and config["params"]["log2_table"] == 12

    target = np.asarray(Image.open(images["noise32"]), dtype=np.float64) / 255.0
    torch.manual_seed(0)  # the pipeline seeds with --seed (0) right before building the trained model
    untrained = build_model("hashgrid", 2, 1, config["params"])
    with torch.inference_mode():
        initial = untrained(grid_coordinates((32, 32))).clamp(0, 1).reshape(32, 32).numpy()
    assert metrics["psnr"] > _psnr(initial, target) + 6.0

    rendered = cli("render", out, "--size", "20x10", "--device", "cpu")
    assert rendered.code == 0, rendered.err
    with Image.open(out / "render-20x10.png") as image:
        assert image.size == (20, 10)


def test_selection_prefers_finer_grid_for_rough_image(cli, images):
    """FreSh picks a larger n_max for a rough (1/f) image than for a smooth (1/f^3) one."""
    chosen = {}
    for name in ("rough", "smooth"):
        result = cli("select", images[name], "--model", "hashgrid", "--grid", "16,64,256", "--inits", 3,
                     *SMALL_GRID, "--json")
        assert result.code == 0, result.err
        chosen[name] = result.json()["chosen"]
    assert chosen["rough"] > chosen["smooth"], chosen


def test_large_table_init_only_for_selection(cli, images, tmp_path, monkeypatch):
    """Selection builds use init_scale 1e-2 (|table| up to ~1e-2); the trained model starts <= 1e-4."""
    entry = REGISTRY["hashgrid"]
    assert entry.selection_overrides == {"init_scale": 1e-2}
    builds = []

    def spy(in_features, out_features, params):
        model = HashGridMLP(in_features, out_features, params)
        frame, selecting, validating = sys._getframe(1), False, False
        while frame is not None:
            selecting = selecting or frame.f_code.co_name in ("fresh_select", "init_spectrum")
            validating = validating or frame.f_code.co_name == "check_buildable"  # built and discarded
            frame = frame.f_back
        if not validating:
            builds.append((selecting, params.init_scale, float(model.encoding.table.detach().abs().max())))
        return model

    monkeypatch.setitem(REGISTRY, "hashgrid", dataclasses.replace(entry, build=spy))
    out = tmp_path / "run"
    result = cli("fit", images["noise32"], "--model", "hashgrid", "--steps", 2, *FIT,
                 "--grid", "16,64", "--inits", 2, "--out", out, "--json")
    assert result.code == 0, result.err
    selection = [b for b in builds if b[0]]
    training = [b for b in builds if not b[0]]
    assert len(selection) >= 4  # 2 candidates x 2 initialisations
    assert all(scale == 1e-2 and 5e-3 < biggest <= 1e-2 for _, scale, biggest in selection)
    assert len(training) == 1
    _, scale, biggest = training[0]
    assert scale == 1e-4 and 0 < biggest <= 1e-4
    assert json.loads((out / "config.json").read_text())["params"]["init_scale"] == 1e-4


def test_batched_init_evaluation_matches_sequential():
    """The vmap path (default on CUDA) evaluates hash-grid initialisations like the one-by-one path."""
    coords = grid_coordinates((24, 24))

    def build(n_max):
        params = HashGridParams(levels=4, log2_table=8, n_min=4, n_max=n_max, width=16, init_scale=1e-2)
        return HashGridMLP(2, 1, params)

    sequential = InitEvaluator(build, coords, (1, 24, 24), 0, 3, batched=False).outputs(64.0, 0, 3)
    batched = InitEvaluator(build, coords, (1, 24, 24), 0, 3, batched=True).outputs(64.0, 0, 3)
    torch.testing.assert_close(batched, sequential, atol=1e-5, rtol=1e-5)
