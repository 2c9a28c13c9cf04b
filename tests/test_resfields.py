"""ResFields: a SIREN with per-frame low-rank weight residuals in chosen hidden layers."""

from __future__ import annotations

import copy

import pytest
import torch

from specfit.errors import SpecfitError
from specfit.models import REGISTRY, build_model, get_entry, resolve_params
from specfit.models.resfields import ResFieldSiren, ResFieldsParams, parse_layers
from specfit.models.sine import Siren, SirenParams
from specfit.runs.folder import load_model, write_model
from specfit.signals.sampling import grid_coordinates

SMALL = {"width": 12, "hidden_layers": 3, "omega_0": 20.0}


def _video_coords(frames: int, height: int = 4, width: int = 5) -> torch.Tensor:
    """``(T * H * W, 3)`` signed (t, y, x) grid coordinates, time first."""
    return grid_coordinates((frames, height, width))


def _pair(convention: str = "fresh", n_frames: int = 5, **kwargs: object) -> tuple[Siren, ResFieldSiren]:
    """A Siren and a ResFieldSiren built from the same seed (so with the same base weights)."""
    torch.manual_seed(3)
    siren = Siren(3, 2, SirenParams(convention=convention, **SMALL))
    torch.manual_seed(3)
    params = ResFieldsParams(convention=convention, n_frames=n_frames, **SMALL, **kwargs)
    resfield = ResFieldSiren(3, 2, params)
    return siren, resfield


def _randomise_coeff(model: ResFieldSiren, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for coeff in model.coeff.values():
            coeff.copy_(torch.randn(coeff.shape, generator=generator))


def test_output_shape_for_flat_and_batched_coordinates():
    """(N, in) -> (N, out), and leading batch dimensions are kept."""
    _, model = _pair()
    coords = _video_coords(5)
    out = model(coords)
    assert out.shape == (100, 2) and out.dtype == torch.float32
    assert model(coords.reshape(5, 20, 3)).shape == (5, 20, 2)
    torch.testing.assert_close(model(coords.reshape(5, 20, 3)).reshape(100, 2), out)


@pytest.mark.parametrize("convention", ["fresh", "siren"])
def test_zero_coefficients_equal_the_plain_siren(convention):
    """At init (coefficients zero) the output is exactly the SIREN's with the same base weights."""
    siren, model = _pair(convention)
    assert all(float(c.detach().abs().max()) == 0.0 for c in model.coeff.values())
    for name, tensor in siren.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    coords = _video_coords(5)
    torch.testing.assert_close(model(coords), siren(coords), rtol=0, atol=0)


def _frame_siren(siren: Siren, model: ResFieldSiren, frame: int) -> Siren:
    """Reference: a copy of ``siren`` whose hidden layer i has the weight W_i + sum_r c[frame, r] F[r]
    (written as an explicit loop over the rank)."""
    reference = copy.deepcopy(siren)
    with torch.no_grad():
        for key in model.coeff:
            layer = reference.hidden[int(key) - 1]
            for r in range(model.rank):
                layer.weight += model.coeff[key][frame, r] * model.factors[key][r]
    return reference


@pytest.mark.parametrize("convention", ["fresh", "siren"])
def test_nonzero_coefficients_match_per_frame_weights(convention):
    """Once the coefficients are non-zero, each frame's samples see the SIREN with weights
    W_i + dW_i(t) of their own frame; different frames give different outputs."""
    siren, model = _pair(convention, n_frames=4)
    _randomise_coeff(model)
    coords = _video_coords(4)
    with torch.no_grad():
        out = model(coords).reshape(4, 20, 2)
        for frame in range(4):
            expected = _frame_siren(siren, model, frame)(coords.reshape(4, 20, 3)[frame])
            torch.testing.assert_close(out[frame], expected, rtol=1e-4, atol=1e-5)
        # Same (y, x), different t: the outputs differ frame to frame.
        for frame in range(1, 4):
            assert float((out[frame] - out[0]).abs().max()) > 1e-3


def test_frame_index_rounds_time_to_the_frame_grid():
    """Frame k of T sits at t = -1 + 2k/(T-1); nearby times round to it; outside [-1, 1] clamps."""
    _, model = _pair(n_frames=6)
    t = torch.linspace(-1, 1, 6)
    torch.testing.assert_close(model.frame_index(t), torch.arange(6))
    half_step = 1.0 / 5
    torch.testing.assert_close(model.frame_index(t + 0.45 * half_step)[:5], torch.arange(5))
    torch.testing.assert_close(model.frame_index(t - 0.45 * half_step)[1:], torch.arange(1, 6))
    torch.testing.assert_close(model.frame_index(torch.tensor([-3.0, 3.0])), torch.tensor([0, 5]))
    _, single = _pair(n_frames=1)
    zeros = torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(single.frame_index(torch.tensor([-1.0, 0.3, 1.0])), zeros)


def test_gradients_reach_only_the_frames_in_the_batch():
    """Coefficient rows of frames absent from the batch get zero gradient; present rows, factors
    and base weights get non-zero gradient."""
    _, model = _pair(n_frames=5)
    _randomise_coeff(model)
    coords = _video_coords(5).reshape(5, 20, 3)[[0, 2]].reshape(-1, 3)
    model(coords).square().sum().backward()
    for key in model.coeff:
        grad = model.coeff[key].grad
        assert float(grad[[1, 3, 4]].abs().max()) == 0.0, key
        assert float(grad[0].abs().min()) > 0.0 and float(grad[2].abs().min()) > 0.0, key
        assert float(model.factors[key].grad.abs().max()) > 0.0, key
    assert float(model.hidden[0].weight.grad.abs().max()) > 0.0


def test_at_init_coefficients_learn_first():
    """With coefficients zero the factors get no gradient yet but the coefficients do, so a residual
    can start to grow."""
    _, model = _pair(n_frames=3)
    model(_video_coords(3)).square().sum().backward()
    for key in model.coeff:
        assert float(model.coeff[key].grad.abs().max()) > 0.0
        assert float(model.factors[key].grad.abs().max()) == 0.0


@pytest.mark.parametrize(
    ("width", "hidden_layers", "n_frames", "rank", "layers", "expected_layers"),
    [
        (12, 3, 5, 10, "1,2,3", 3),
        (8, 1, 7, 2, "1,2,3", 1),  # a shallower network uses the layers it has
        (8, 4, 3, 4, "all", 4),
        (8, 3, 3, 4, "2", 1),
        (8, 3, 3, 4, "none", 0),
        (8, 3, 3, 4, (1, 3), 2),
    ],
)
def test_parameter_count(width, hidden_layers, n_frames, rank, layers, expected_layers):
    """params = SIREN's + len(layers) * (n_frames * rank + rank * width^2)."""
    siren = Siren(3, 3, SirenParams(width=width, hidden_layers=hidden_layers))
    model = ResFieldSiren(3, 3, ResFieldsParams(width=width, hidden_layers=hidden_layers, n_frames=n_frames,
                                                rank=rank, resfield_layers=layers))
    base = sum(p.numel() for p in siren.parameters())
    count = sum(p.numel() for p in model.parameters())
    assert len(model.resfield_layers) == expected_layers
    assert count == base + expected_layers * (n_frames * rank + rank * width * width)


def test_parse_layers():
    assert parse_layers("1,2,3", 3) == (1, 2, 3)
    assert parse_layers("3, 1", 5) == (1, 3)
    assert parse_layers("1,2,3", 2) == (1, 2)
    assert parse_layers("all", 2) == (1, 2)
    assert parse_layers("none", 3) == ()
    assert parse_layers((2, 2, 1), 3) == (1, 2)
    for bad in ("0,1", "a,b", (0,)):
        with pytest.raises(SpecfitError):
            parse_layers(bad, 3)


def test_constructor_rejects_bad_sizes():
    with pytest.raises(SpecfitError):
        ResFieldSiren(3, 3, ResFieldsParams(width=8, n_frames=0))
    with pytest.raises(SpecfitError):
        ResFieldSiren(3, 3, ResFieldsParams(width=8, rank=0))
    with pytest.raises(ValueError):
        ResFieldSiren(3, 3, ResFieldsParams(width=8, convention="other"))


def test_registry_entry_mirrors_siren():
    """'resfields' shares SIREN's knob, grid, lr, value range and conventions; n_frames and rank
    are parameters with minimum 1; layer sets come from a fixed list of choices."""
    entry, siren = get_entry("resfields"), get_entry("siren")
    assert entry is REGISTRY["resfields"]
    assert entry.knob == siren.knob and entry.knob.name == "omega_0"
    assert (entry.lr, entry.value_range) == (siren.lr, siren.value_range)
    assert entry.defaults["n_frames"] == 1 and entry.defaults["rank"] == 10
    assert entry.defaults["resfield_layers"] == "1,2,3" and entry.defaults["convention"] == "fresh"
    params = resolve_params(entry, {"n_frames": "7", "rank": "3", "resfield_layers": "2,3", "width": 8})
    assert (params["n_frames"], params["rank"]) == (7, 3)
    model = build_model("resfields", 3, 3, params)
    assert isinstance(model, ResFieldSiren)
    assert model.n_frames == 7 and model.rank == 3 and model.resfield_layers == (2, 3)
    assert model.coeff["2"].shape == (7, 3) and model.factors["3"].shape == (3, 8, 8)
    for bad in ({"n_frames": 0}, {"rank": 0}, {"n_frames": 2.5}, {"resfield_layers": "4"}):
        with pytest.raises(SpecfitError):
            resolve_params(entry, bad)


def test_saved_run_rebuilds_exactly(tmp_path):
    """write_model + load_model restores n_frames, rank and the trained residuals exactly."""
    torch.manual_seed(0)
    entry = get_entry("resfields")
    params = resolve_params(entry, {"width": 10, "hidden_layers": 2, "n_frames": 4, "rank": 3})
    model = build_model("resfields", 3, 3, params)
    _randomise_coeff(model)
    config = {"model": "resfields", "params": params, "in_features": 3, "out_features": 3}
    write_model(tmp_path, model, config)
    torch.manual_seed(1)  # a different stream: everything must come from the files
    loaded, saved = load_model(tmp_path)
    assert saved["params"]["n_frames"] == 4 and isinstance(loaded, ResFieldSiren)
    coords = _video_coords(4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(coords), model(coords), rtol=0, atol=0)
    # A config whose n_frames disagrees with the weights is refused, not silently rebuilt.
    (tmp_path / "config.json").write_text((tmp_path / "config.json").read_text().replace(
        '"n_frames": 4', '"n_frames": 5'))
    with pytest.raises(SpecfitError, match="does not match"):
        load_model(tmp_path)
