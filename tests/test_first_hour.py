"""First-hour conveniences: discoverable API names, a bare model, API-worded warnings, CLI help."""

from __future__ import annotations

import specfit


def test_dir_lists_the_public_names_and_no_helpers():
    names = dir(specfit)
    assert set(specfit.__all__) <= set(names)
    assert {"fit", "load_signal", "select"} <= set(names)
    assert not {"TYPE_CHECKING", "import_module", "annotations"} & set(names)


def test_fit_docstring_says_fresh_chooses_by_default():
    first = " ".join(specfit.fit.__doc__.split("\n\n")[0].split())
    assert "chosen by FreSh by default" in first
    assert "fresh=False`` (its default)" not in first
