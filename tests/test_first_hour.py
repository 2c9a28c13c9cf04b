"""First-hour conveniences: discoverable API names, a bare model, API-worded warnings, CLI help."""

from __future__ import annotations

import pytest

import specfit
from specfit import SpecfitError


def test_dir_lists_the_public_names_and_no_helpers():
    names = dir(specfit)
    assert set(specfit.__all__) <= set(names)
    assert {"fit", "load_signal", "select"} <= set(names)
    assert not {"TYPE_CHECKING", "import_module", "annotations"} & set(names)


def test_fit_docstring_says_fresh_chooses_by_default():
    first = " ".join(specfit.fit.__doc__.split("\n\n")[0].split())
    assert "chosen by FreSh by default" in first
    assert "fresh=False`` (its default)" not in first


def test_build_model_gives_the_registry_model_untrained():
    import torch

    from specfit.models import build_model as registry_build

    torch.manual_seed(0)
    model = specfit.build_model("siren", 2, 3, width=16, hidden_layers=1, omega_0=60.0)
    torch.manual_seed(0)
    same = registry_build("siren", 2, 3, {"width": 16, "hidden_layers": 1, "omega_0": 60.0})
    coords = torch.rand(5, 2) * 2 - 1
    assert isinstance(model, torch.nn.Module)
    assert model(coords).shape == (5, 3)
    assert torch.equal(model(coords), same(coords))
    assert "build_model" in specfit.__all__
    with pytest.raises(SpecfitError, match="unknown model"):
        specfit.build_model("nope", 2, 1)
