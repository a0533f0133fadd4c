"""Issue 8: `from collabkit.recommend import genre_start` (as the README writes it) failed."""

from __future__ import annotations

import importlib

import pytest

import collabkit.recommend as rec


@pytest.mark.parametrize("name", rec.__all__)
def test_public_functions_import_from_the_package(name):
    where = rec._WHERE[name]  # a submodule, or (top-N, issue 9) a module of collabkit.models
    module = importlib.import_module(where if "." in where else f"collabkit.recommend.{where}")
    assert getattr(rec, name) is getattr(module, name)


def test_genre_start_as_the_readme_imports_it():
    from collabkit.recommend import genre_start
    from collabkit.recommend.onboarding import genre_start as defined

    assert genre_start is defined


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rec.nope  # noqa: B018
