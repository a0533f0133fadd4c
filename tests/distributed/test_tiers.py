"""The tier table (issue 15): tiers by name, an unknown name refused with the known ones."""

from __future__ import annotations

import pytest

from collabkit.distributed import tiers
from collabkit.errors import ConfigError


def test_replicate_is_registered_with_an_importable_entry() -> None:
    assert "replicate" in tiers.names()
    assert tiers.get("replicate").kinds == ("dot", "nn", "module")
    assert callable(tiers.entry("replicate"))


def test_unknown_tier_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown distributed tier 'nope'.*replicate"):
        tiers.get("nope")


def test_a_second_tier_under_one_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        tiers.register(tiers.Tier("replicate", "x:y", ("dot",), "other"))
