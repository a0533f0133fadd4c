"""Part 2's tiers in the tier table (issue 15): registered under their names with importable
entry points of the shared signature, which in one process (no process group) return a
fitted model of the asked kind."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.distributed import tiers
from collabkit.distributed.group import world
from collabkit.errors import ConfigError
from collabkit.testing.ranks import _planted_split


@pytest.mark.parametrize(("name", "kind"), [("rowwise", "dot"), ("als", "als"),
                                            ("als", "ials")])
def test_entry_point_trains_the_kind_in_one_process(name: str, kind: str) -> None:
    assert kind in tiers.get(name).kinds
    train, _ = _planted_split({})
    job = tiers.TrainJob(train, kind, {"n_factors": 3, "epochs": 2, "random_state": 1})
    model = tiers.entry(name)(job, world())
    assert model is not None and model.kind == kind
    pred = model.predict(train.user_vocab.ids(train.users[:5]),
                         train.item_vocab.ids(train.items[:5]))["prediction"].to_numpy()
    assert np.isfinite(pred).all()


def test_als_tier_refuses_other_kinds() -> None:
    train, _ = _planted_split({})
    with pytest.raises(ConfigError, match="'als' tier trains kinds 'als' and 'ials'"):
        tiers.entry("als")(tiers.TrainJob(train, "dot"), world())
