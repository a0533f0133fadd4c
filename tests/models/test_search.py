"""issue 13: every model kind declares what a search may vary, in its own parameter names."""

from __future__ import annotations

import pytest

from collabkit.errors import ConfigError
from collabkit.models import registry
from collabkit.models.search import SEARCH_SPACES, Choice, Float, Int, check_space, search_space


@pytest.mark.parametrize("kind", [k for k in registry.kinds() if k != "module"])
def test_every_kind_declares_a_space_of_its_own_parameters(kind):
    space = search_space(kind)
    accepted = list(registry.get(kind)().get_params())
    check_space(kind, space, accepted)  # raises on a name the kind does not take
    assert set(space) <= set(accepted)


def test_module_and_unknown_kinds_are_refused_by_name():
    assert set(SEARCH_SPACES) == set(registry.kinds()) - {"module"}
    with pytest.raises(ConfigError, match="'module' declares no search space"):
        search_space("module")
    with pytest.raises(ConfigError, match="unknown model kind 'x'"):
        search_space("x")


@pytest.mark.parametrize("dim, match", [
    (Int(5, 1), "low <= high"), (Float(0.0, 1.0, log=True), "low > 0 on a log scale"),
    (Choice(), "at least one value"), ((1, 2), "must be Int"),
])
def test_bad_ranges_are_refused(dim, match):
    with pytest.raises(ConfigError, match=match):
        check_space("itemknn", {"n_neighbors": dim}, ["n_neighbors"])


def test_describe():
    assert Int(8, 256, log=True).describe() == "8..256 (log)"
    assert Choice("a", 1).describe() == "one of ('a', 1)"
