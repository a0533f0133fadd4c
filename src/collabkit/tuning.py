"""Hyperparameter search for every model kind: :func:`tune` (``collabkit tune`` on the CLI).

The protocol (issue 13):

1. validation rows are carved from the *training* rows only (``train`` is the one table this
   step sees; a test table is never passed to it): a random share of the rows for a rating
   model, a random share of each user's rows for a ranker;
2. each trial fits the kind with parameters from its declared space
   (:data:`collabkit.models.search.SEARCH_SPACES`), chosen by Optuna's TPE sampler seeded with
   ``seed``, on the rest, and scores it on the validation rows: RMSE (lower is better) for a
   rating model, NDCG@20 under full ranking (higher is better) for a ranker;
3. the best parameters are refit on *all* training rows;
4. only then, when a ``test`` table is given, is the refit model scored on it, once.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import CollabkitError, ConfigError, ModelFitWarning
from collabkit.models import registry
from collabkit.models.base import Recommender
from collabkit.models.search import Dim, check_space, search_space

__all__ = ["tune", "TuneResult", "carve_validation", "parse_metric", "RATING_METRICS",
           "RANKING_METRICS"]

#: metrics of rating models (lower is better)
RATING_METRICS = ("rmse", "mae")
#: full-ranking metrics of rankers, at k (higher is better)
RANKING_METRICS = ("ndcg", "recall", "hit_rate", "map", "mrr")


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    kind, metric : str
        The model kind, and the validation metric (``"rmse"``, ``"ndcg@20"``, ...).
    direction : str
        ``"minimize"`` or ``"maximize"``.
    best_params, best_value
        The winning trial's searched parameters and validation score.
    params : dict
        Every constructor argument of the refit model (best, fixed and seed).
    trials : pandas.DataFrame
        One row per trial: ``trial``, the searched parameters, ``score``, ``seconds``,
        ``state`` (``complete`` or ``failed``) and ``error`` (why a trial failed).
    model : Recommender
        The kind with ``params``, refit on every training row.
    n_train, n_fit, n_valid : int
        Training rows; of them, rows fitted and scored in each trial.
    valid_split : str
        How the validation rows were carved.
    test : dict or None
        The refit model's scores on ``test`` (computed once, after the search).
    """

    kind: str
    metric: str
    direction: str
    best_params: dict[str, Any]
    best_value: float
    params: dict[str, Any]
    trials: pd.DataFrame
    model: Recommender
    n_train: int
    n_fit: int
    n_valid: int
    valid_split: str
    seed: int
    refit_seconds: float
    test: dict[str, float] | None = None
    test_report: Any = field(default=None, repr=False)


def parse_metric(metric: str | None, ranker: bool, k: int = 20) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``None`` -> the kind's default (NDCG@k or RMSE)."""
    if metric is None:
        return ("ndcg", k) if ranker else ("rmse", k)
    name, _, at = metric.strip().lower().partition("@")
    if at:
        if not at.isdigit() or int(at) < 1:
            raise ConfigError(f"metric {metric!r}: the cut-off after '@' must be a whole number "
                              ">= 1, e.g. 'ndcg@20'")
        k = int(at)
    allowed = RANKING_METRICS if ranker else RATING_METRICS
    if name not in allowed:
        what = "a ranker (implicit feedback)" if ranker else "a rating model"
        raise ConfigError(f"metric {metric!r} does not score {what}; choose one of "
                          f"{', '.join(allowed)}" + (" (with an optional @K)" if ranker else ""))
    if at and not ranker:
        raise ConfigError(f"metric {metric!r}: {name} takes no cut-off '@K'")
    return name, k


def carve_validation(train: Interactions, ranker: bool, valid_frac: float, seed: int,
                     carve: Literal["auto", "random", "latest"] = "auto"
                     ) -> tuple[Interactions, Interactions, str]:
    """(rows to fit, validation rows, how) from ``train`` alone.

    A ranker gets ``valid_frac`` of each user's rows (users with too few rows keep them all in
    the fit part): their *latest* by timestamp when ``carve`` is ``"latest"``, or ``"auto"``
    and the rows have timestamps (what comes next is what a ranker is asked for, and a random
    carve would hide what ``recency`` does), else a random share. A rating model gets a random
    ``valid_frac`` of all rows.
    """
    from collabkit.data import split as sp

    if not 0.0 < valid_frac < 1.0:
        raise ConfigError(f"valid_frac must be between 0 and 1 (exclusive), got {valid_frac}")
    if carve not in ("auto", "random", "latest"):
        raise ConfigError(f"carve must be 'auto', 'random' or 'latest', got {carve!r}")
    latest = ranker and carve != "random" and train.timestamps is not None
    if ranker and carve == "latest" and train.timestamps is None:
        raise ConfigError("carve='latest' needs timestamps, and these rows have none; use "
                          "carve='random' or 'auto'")
    if ranker:
        s = sp.user_fraction_split(train.users, test_frac=valid_frac, seed=seed,
                                   timestamps=train.timestamps if latest else None)
        how = "per-user latest" if latest else "per-user"
    else:
        s, how = sp.random_split(len(train), test_frac=valid_frac, seed=seed), "random"
    how += f" {valid_frac:.0%} of the training rows" + (" (by timestamp)" if latest else "")
    return train.take(s.train), train.take(s.test), how


def score(model: Recommender, rows: Interactions, metric: str, k: int) -> float:
    """``metric`` of a fitted ``model`` on ``rows`` (full ranking at ``k`` for a ranker)."""
    if metric in RANKING_METRICS:
        from collabkit.metrics.fullrank import evaluate_ranking

        return float(evaluate_ranking(model, rows, k).metrics[metric])
    from collabkit.metrics.evaluate import evaluate

    with warnings.catch_warnings():  # validation rows are disjoint from the fitted ones
        warnings.simplefilter("ignore")
        report = evaluate(model, rows)
    return report.rmse if metric == "rmse" else report.mae


def _suggest(trial: Any, name: str, dim: Dim) -> Any:
    if dim.type == "int":
        return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
    if dim.type == "float":
        return trial.suggest_float(name, float(dim.low), float(dim.high), log=dim.log)
    return trial.suggest_categorical(name, list(dim.choices))


def tune(train: Interactions, model: str = "dot", *, test: Interactions | None = None,
         trials: int = 20, metric: str | None = None, k: int = 20,
         timeout: float | None = None, seed: int = 0, valid_frac: float = 0.2,
         space: Mapping[str, Dim] | None = None, params: Mapping[str, Any] | None = None,
         callback: Callable[[dict[str, Any]], None] | None = None,
         carve: Literal["auto", "random", "latest"] = "auto") -> TuneResult:
    """Search ``model``'s hyperparameters on validation rows carved from ``train``.

    Parameters
    ----------
    train : Interactions
        Training rows; validation is carved from them and nothing else.
    model : str
        A model kind (:func:`collabkit.model_kinds`), rating model or ranker.
    test : Interactions, optional
        Held-out rows, scored once by the refit model after the search.
    trials : int
        Trials to run (fewer when ``timeout`` runs out first); a kind with nothing to search
        (``mean``, ``bias``, ``popularity``) runs one.
    metric : str, optional
        ``rmse`` (default) or ``mae`` for a rating model; ``ndcg`` (default), ``recall``,
        ``hit_rate``, ``map`` or ``mrr``, optionally ``@K``, for a ranker.
    k : int
        The ranking cut-off when ``metric`` names none.
    timeout : float, optional
        Stop starting trials after this many seconds.
    seed : int
        Seeds the validation carve, the sampler (Optuna's ``TPESampler(seed=...)``) and the
        model (``random_state``, when it takes one): the same call gives the same trials.
    valid_frac : float
        Share of the training rows (of each user's rows, for a ranker) used for validation.
    space : mapping, optional
        ``{parameter: Int(...) | Float(...) | Choice(...)}`` replacing the kind's declared space
        (:data:`collabkit.models.search.SEARCH_SPACES`).
    params : mapping, optional
        Parameters held fixed in every trial and the refit (removed from the search).
    callback : callable, optional
        Called with each finished trial's row (a dict) as it completes.
    carve : {"auto", "random", "latest"}
        How a ranker's validation rows are chosen (:func:`carve_validation`): ``"auto"``, each
        user's latest rows when there are timestamps, else a random share of each user's rows.

    Returns
    -------
    TuneResult

    Raises
    ------
    ConfigError
        An unknown kind, a kind with no search space, a parameter the kind does not take, a
        metric that does not score the kind, ``trials < 1``, or every trial failed (the first
        failure's message is given).
    """
    import optuna

    from collabkit.models.implicit import ImplicitRecommender

    cls = registry.get(model)
    ranker = issubclass(cls, ImplicitRecommender)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a whole number >= 1, got {trials!r}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    name, k = parse_metric(metric, ranker, k)
    label = f"{name}@{k}" if ranker else name
    accepted = [p for p in cls().get_params() if p != "callback"]
    fixed = dict(params or {})
    unknown = [p for p in fixed if p not in accepted]
    if unknown:
        raise ConfigError(f"model {model!r} does not take {', '.join(map(repr, unknown))}; its "
                          f"parameters are {', '.join(accepted) or '(none)'}")
    dims = dict(search_space(model) if space is None else space)
    check_space(model, dims, accepted)
    dims = {p: d for p, d in dims.items() if p not in fixed}
    if train.timestamps is None and space is None:  # nothing to weigh by how recent it is
        dims.pop("recency", None)
    if "random_state" in accepted:
        fixed.setdefault("random_state", seed)
    fit_rows, valid_rows, how = carve_validation(train, ranker, valid_frac, seed, carve)
    direction: Literal["maximize", "minimize"] = "maximize" if ranker else "minimize"
    rows: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        chosen = {p: _suggest(trial, p, d) for p, d in dims.items()}
        t0 = time.perf_counter()
        row: dict[str, Any] = {"trial": trial.number, **chosen}
        try:
            with warnings.catch_warnings():  # a poor trial is expected; the table shows it
                warnings.simplefilter("ignore", ModelFitWarning)
                est = cls(**{**fixed, **chosen}).fit(fit_rows)
            value = score(est, valid_rows, name, k)
            if not math.isfinite(value):
                raise ConfigError(f"the validation {label} is {value}")
            row.update(score=value, seconds=time.perf_counter() - t0, state="complete",
                       error=None)
            return value
        except CollabkitError as e:
            row.update(score=math.nan, seconds=time.perf_counter() - t0, state="failed",
                       error=str(e))
            raise
        finally:
            rows.append(row)
            if callback is not None:
                callback(row)

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the trials table reports each trial
    try:
        study = optuna.create_study(direction=direction,
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials if dims else 1, timeout=timeout,
                       catch=(CollabkitError,))
    finally:
        optuna.logging.set_verbosity(level)
    done = [r for r in rows if r["state"] == "complete"]
    if not done:
        raise ConfigError(f"every trial of {model!r} failed; the first: {rows[0]['error']}")
    best = (min if direction == "minimize" else max)(done, key=lambda r: r["score"])
    best_params = {p: best[p] for p in dims}
    final = {**fixed, **best_params}
    t0 = time.perf_counter()
    refit = cls(**final).fit(train)
    refit_s = time.perf_counter() - t0
    result = TuneResult(kind=model, metric=label, direction=direction, best_params=best_params,
                        best_value=float(best["score"]), params=final,
                        trials=pd.DataFrame(rows), model=refit, n_train=len(train),
                        n_fit=len(fit_rows), n_valid=len(valid_rows), valid_split=how,
                        seed=seed, refit_seconds=refit_s)
    if test is not None:
        _score_test(result, test, ranker, k)
    return result


def _score_test(result: TuneResult, test: Interactions, ranker: bool, k: int) -> None:
    """The refit model's scores on ``test``: once, after the search."""
    if ranker:
        from collabkit.metrics.fullrank import evaluate_ranking

        rep = evaluate_ranking(result.model, test, k)
        result.test = {f"{m}@{k}": float(v) for m, v in rep.metrics.items()
                       if m in RANKING_METRICS}
        result.test_report = rep
    else:
        from collabkit.metrics.evaluate import evaluate

        report = evaluate(result.model, test)
        result.test = {"rmse": report.rmse, "mae": report.mae}
        result.test_report = report


def best_index(trials: pd.DataFrame, direction: str) -> int:
    """Row of the best completed trial in a :attr:`TuneResult.trials` table."""
    scores = trials["score"].to_numpy(dtype=np.float64)
    ok = np.isfinite(scores)
    pick = np.where(ok, scores if direction == "minimize" else -scores, np.inf)
    return int(np.argmin(pick))
