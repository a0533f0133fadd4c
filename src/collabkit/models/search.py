"""What each model kind lets a hyperparameter search vary, declared beside the models.

:data:`SEARCH_SPACES` maps a kind (as in :mod:`collabkit.models.registry`) to the parameters a
search may vary and the range of each, as plain data: :class:`Dim` needs no search library, and
:func:`collabkit.tune` turns it into Optuna suggestions. A kind with an empty space (the
baselines) has nothing to tune: one fit is its only trial. A kind missing from the table
(``module``, which wraps a network you build) cannot be tuned by kind.

The rating models' ranges are starting points around their defaults. The implicit kinds'
defaults were chosen *by* a search over these ranges (issue 13): ``collabkit tune`` on the
training rows of ml-100k, ml-latest-small and gowalla, then the setting that holds up across
the three (``benchmarks/implicit_defaults.py``; results in
``benchmarks/results/implicit-defaults.md``); a range whose best sat at its edge there was
widened. The ranges themselves were set by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from collabkit.errors import ConfigError

__all__ = ["Dim", "Int", "Float", "Choice", "SEARCH_SPACES", "search_space", "check_space"]


@dataclass(frozen=True)
class Dim:
    """One searchable parameter: integers or floats in ``[low, high]`` (``log``: sampled on a log
    scale), or one of ``choices``."""

    type: Literal["int", "float", "choice"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        """``8..256 (log)``, ``0.001..0.1``, or ``one of (a, b)``."""
        if self.type == "choice":
            return f"one of {self.choices}"
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


def Int(low: int, high: int, log: bool = False) -> Dim:
    """Whole numbers from ``low`` to ``high`` inclusive."""
    return Dim("int", low, high, log)


def Float(low: float, high: float, log: bool = False) -> Dim:
    """Real numbers from ``low`` to ``high``."""
    return Dim("float", low, high, log)


def Choice(*choices: Any) -> Dim:
    """One of ``choices`` (numbers, text, booleans or None)."""
    return Dim("choice", choices=tuple(choices))


#: kind -> {parameter: range}; every name is a constructor parameter of the kind (a test checks)
SEARCH_SPACES: dict[str, dict[str, Dim]] = {
    # rating models (explicit feedback), scored by validation RMSE
    "mean": {},
    "bias": {},
    "dot": {"n_factors": Int(8, 160, log=True), "lr": Float(2e-3, 5e-2, log=True),
            "epochs": Int(3, 15), "wd": Float(1e-3, 1.0, log=True)},
    "als": {"n_factors": Int(4, 128, log=True), "reg": Float(0.1, 10.0, log=True),
            "reg_exponent": Float(0.0, 1.0), "epochs": Int(5, 20)},
    "bpmf": {"n_factors": Int(4, 32, log=True), "beta0": Float(0.5, 8.0, log=True)},
    "svdpp": {"n_factors": Int(8, 64, log=True), "lr": Float(1e-3, 2e-2, log=True),
              "reg": Float(1e-3, 1.0, log=True), "epochs": Int(5, 30)},
    "nn": {"lr": Float(1e-3, 3e-2, log=True), "wd": Float(1e-2, 3.0, log=True),
           "dropout": Float(0.0, 0.5), "emb_dropout": Float(0.0, 0.6), "epochs": Int(3, 20)},
    "hybrid": {"n_factors": Int(8, 128, log=True), "lr": Float(2e-3, 5e-2, log=True),
               "wd": Float(1e-2, 2.0, log=True), "id_dropout": Float(0.0, 0.3),
               "epochs": Int(3, 15)},
    "ensemble": {"ridge": Float(1e-5, 1.0, log=True)},
    # rankers (implicit feedback), scored by validation NDCG under full ranking
    "popularity": {},
    # recency (a half-life in interactions, None = off) is searched only on timestamped data
    "itemknn": {"n_neighbors": Int(5, 500, log=True), "shrink": Float(0.0, 100.0),
                "recency": Choice(None, 2.0, 5.0, 10.0, 30.0)},
    "ials": {"n_factors": Int(8, 256, log=True), "reg": Float(1e-4, 10.0, log=True),
             "reg_exponent": Float(0.0, 1.0), "alpha": Float(0.1, 50.0, log=True),
             "unobserved_weight": Float(1e-3, 1.0, log=True), "epochs": Int(4, 16)},
    "ease": {"reg": Float(1.0, 5000.0, log=True),
             "recency": Choice(None, 2.0, 5.0, 10.0, 30.0)},
    "gfcf": {"n_factors": Int(16, 512, log=True), "alpha": Float(0.0, 1.0),
             "sharpen": Float(0.0, 4.0), "recency": Choice(None, 2.0, 5.0, 10.0, 30.0)},
    "bpr": {"n_factors": Int(8, 256, log=True), "lr": Float(5e-3, 0.2, log=True),
            "reg": Float(1e-6, 0.1, log=True), "epochs": Int(10, 80)},
}


def search_space(kind: str) -> dict[str, Dim]:
    """The declared space of ``kind`` (a copy).

    Raises
    ------
    ConfigError
        ``kind`` declares no search space (it is unknown, or ``module``: a network you build,
        whose settings you tune yourself).
    """
    if kind not in SEARCH_SPACES:
        from collabkit.models import registry

        if registry.find(kind) is None:
            raise ConfigError(registry.unknown_kind_message(kind))
        raise ConfigError(f"model kind {kind!r} declares no search space (it wraps a network "
                          "you build); tune its settings yourself, or choose one of "
                          f"{', '.join(sorted(SEARCH_SPACES))}")
    return dict(SEARCH_SPACES[kind])


def check_space(kind: str, space: Mapping[str, Dim], accepted: list[str]) -> None:
    """Refuse a space naming a parameter ``kind`` does not take, or an empty/inverted range."""
    for name, dim in space.items():
        if name not in accepted:
            raise ConfigError(f"model {kind!r} does not take {name!r}, so it cannot be searched; "
                              f"its parameters are {', '.join(accepted) or '(none)'}")
        if not isinstance(dim, Dim):
            raise ConfigError(f"the range of {name!r} must be Int(low, high), Float(low, high) "
                              f"or Choice(...), from collabkit.models.search; got {dim!r}")
        if dim.type == "choice":
            if not dim.choices:
                raise ConfigError(f"Choice() for {name!r} needs at least one value")
            continue
        ok = math.isfinite(dim.low) and math.isfinite(dim.high) and dim.low <= dim.high
        if not ok or (dim.log and dim.low <= 0):
            raise ConfigError(f"the range of {name!r} ({dim.low:g}..{dim.high:g}"
                              f"{', log' if dim.log else ''}) must have low <= high"
                              f"{' and low > 0 on a log scale' if dim.log else ''}")
