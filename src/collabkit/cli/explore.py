"""CLI commands that look inside a saved model: inspect, similar, explain, lr-find, plot,
onboard, and cold-start recommendations (``recommend --rate``)."""

from __future__ import annotations

import os
from typing import Any

import click
import pandas as pd

from collabkit.cli import output as out
from collabkit.cli.main import _load_data, _raw_id, _value, cli, common, data_options
from collabkit.errors import ConfigError


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict(orient="records")


@cli.command("inspect")
@click.argument("model_dir", metavar="MODEL")
@click.option("-n", "n", default=10, show_default=True, help="Items at each end.")
@click.option("--min-ratings", default=20, show_default=True,
              help="Only items with at least this many training ratings.")
@click.option("--pca-png", default=None, metavar="FILE", help="Write a labelled PCA scatter.")
@click.option("--curves-png", default=None, metavar="FILE", help="Write training curves.")
@common
def inspect_cmd(model_dir: str, n: int, min_ratings: int, pca_png: str | None,
                curves_png: str | None, as_json: bool, quiet: bool) -> None:
    """Learned item biases and the principal components of the item factors."""
    from collabkit.interpret import item_biases, pca
    from collabkit.models.persist import load_model
    from collabkit.plots import plot_history, plot_pca

    model = load_model(model_dir)
    biases = item_biases(model, n=n, min_ratings=min_ratings)
    result: dict[str, Any] = {"model": model_dir, "kind": model.kind,
                              "item_biases": _records(biases)}
    comps = None
    try:
        comps = pca(model, n_components=3, min_ratings=min_ratings, n_extreme=n)
        result["pca"] = {"explained_variance_ratio": comps.explained_variance_ratio.tolist(),
                         "extremes": _records(comps.extremes)}
        if pca_png:
            result["pca_png"] = plot_pca(comps, pca_png)
    except ConfigError as e:  # a model without item factors has no PCA
        result["pca"] = None
        result["pca_unavailable"] = str(e)
    if curves_png:
        result["curves_png"] = plot_history(getattr(model, "history_", []), curves_png)
    if as_json:
        out.emit_json(result)
        return
    if quiet:
        return
    o = out.stdout
    shown = biases[["end", "item", "title", "bias", "n_ratings"]]
    o.print(out.frame_table(shown, "item biases: liked less / more than their factors explain"))
    if comps is not None:
        ev = ", ".join(f"PC{k + 1} {v:.1%}" for k, v in enumerate(comps.explained_variance_ratio))
        o.print(f"[bold]PCA of item factors[/] (variance explained: {ev})")
        for c in range(1, len(comps.explained_variance_ratio) + 1):
            lo = "; ".join(comps.titles_at(c, "low")[:5])
            hi = "; ".join(comps.titles_at(c, "high")[:5])
            o.print(f"  PC{c} low : {lo}\n  PC{c} high: {hi}")
    for key in ("pca_png", "curves_png"):
        if key in result:
            o.print(f"wrote {result[key]}")


@cli.command("similar")
@click.argument("model_dir", metavar="MODEL")
@click.argument("item")
@click.option("-n", "n", default=10, show_default=True)
@click.option("--min-ratings", default=0, show_default=True)
@common
def similar_cmd(model_dir: str, item: str, n: int, min_ratings: int, as_json: bool,
                quiet: bool) -> None:
    """Items whose factors are closest (cosine) to ITEM's."""
    from collabkit.interpret import similar_items
    from collabkit.models.persist import load_model

    model = load_model(model_dir)
    raw = _raw_id(model.item_vocab_, item)
    df = similar_items(model, raw, n=n, min_ratings=min_ratings)
    if as_json:
        out.emit_json({"model": model_dir, "item": raw, "similar": _records(df)})
    elif not quiet:
        title = model._titles([raw])[0] or raw
        out.stdout.print(out.frame_table(df, f"items most similar to {title}"))


@cli.command("explain")
@click.argument("model_dir", metavar="MODEL")
@click.argument("user")
@click.argument("item")
@click.option("-n", "n", default=5, show_default=True, help="Contributing items shown.")
@common
def explain_cmd(model_dir: str, user: str, item: str, n: int, as_json: bool,
                quiet: bool) -> None:
    """Why MODEL predicts what it does for USER and ITEM."""
    from collabkit.interpret import explain
    from collabkit.models.persist import load_model

    model = load_model(model_dir)
    ex = explain(model, _raw_id(model.user_vocab_, user), _raw_id(model.item_vocab_, item))
    contrib = ex.contributions.head(n)
    if as_json:
        fields = {k: getattr(ex, k) for k in ("user", "item", "title", "prediction",
                                              "global_bias", "user_bias", "item_bias", "dot",
                                              "raw", "y_range", "source", "ratings_source")}
        out.emit_json({"model": model_dir, **fields, "contributions": _records(contrib)})
    elif not quiet:
        out.stdout.print(str(ex))
        out.stdout.print(out.frame_table(contrib, "rated items that weigh most"))


@cli.command("lr-find")
@data_options
@click.option("--model", "kind", default="dot", show_default=True,
              help="Model kind, or a saved MODEL folder whose parameters to use.")
@click.option("--png", default="lr_find.png", show_default=True, metavar="FILE")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE")
@common
def lr_find_cmd(kind: str, png: str, extra: tuple[str, ...], as_json: bool, quiet: bool,
                **data_kw: Any) -> None:
    """Sweep the learning rate on the data; suggest one and plot loss against lr."""
    from collabkit.models import registry
    from collabkit.models.persist import load_model
    from collabkit.plots import plot_lr_find
    from collabkit.train.lr_find import lr_find

    data = _load_data(data_kw, not (as_json or quiet))
    params = dict(kv.split("=", 1) for kv in extra if "=" in kv)
    if os.path.isdir(kind):
        est: Any = load_model(kind)
        est = type(est)(**{k: v for k, v in est.get_params().items()})
    else:
        est = registry.get(kind)()
    est.set_params(**{k: _value(v) for k, v in params.items()})
    res = lr_find(est, data)
    path = plot_lr_find(res.lrs, res.losses, res.suggestion, png)
    if as_json:
        out.emit_json({"suggestion": res.suggestion, "steepest": res.steepest, "png": path})
    elif not quiet:
        out.stdout.print(f"suggested lr {res.suggestion:.2g} (valley; steepest descent at "
                         f"{res.steepest:.2g}); wrote {path}")


@cli.command("plot")
@click.argument("model_dir", metavar="MODEL")
@click.option("--png", default="training_curves.png", show_default=True, metavar="FILE")
@common
def plot_cmd(model_dir: str, png: str, as_json: bool, quiet: bool) -> None:
    """Training curves (loss and validation RMSE per epoch) of a saved MODEL."""
    from collabkit.models.persist import load_model
    from collabkit.plots import plot_history

    path = plot_history(getattr(load_model(model_dir), "history_", []), png)
    out.emit_json({"png": path}) if as_json else (quiet or out.stdout.print(f"wrote {path}"))


@cli.command("onboard")
@click.argument("model_dir", metavar="MODEL")
@click.option("-n", "n", default=10, show_default=True)
@common
def onboard_cmd(model_dir: str, n: int, as_json: bool, quiet: bool) -> None:
    """Items to ask a new user to rate: well known, and spread across tastes."""
    from collabkit.models.persist import load_model
    from collabkit.recommend.onboarding import onboarding_items

    df = onboarding_items(load_model(model_dir), n=n)
    if as_json:
        out.emit_json({"model": model_dir, "items": _records(df)})
    elif not quiet:
        out.stdout.print(out.frame_table(df, "rate these to get personal recommendations"))


def parse_rates(model: Any, rates: tuple[str, ...]) -> dict[Any, float]:
    """``ITEM=RATING`` pairs into ``{raw_item: rating}``."""
    ratings: dict[Any, float] = {}
    for text in rates:
        item, sep, value = text.rpartition("=")
        try:
            ratings[_raw_id(model.item_vocab_, item)] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--rate {text!r} must look like ITEM=RATING, e.g. --rate 318=5")
    return ratings


def recommend_cold(model_dir: str, rates: tuple[str, ...], genres: str | None, n: int,
                   as_json: bool, quiet: bool) -> None:
    """``recommend MODEL --rate ITEM=RATING ...`` / ``--genres``: a user the model never saw."""
    from collabkit.models.persist import load_model
    from collabkit.recommend.coldstart import DEFAULT_MIN_PERSONAL, recommend_new_user
    from collabkit.recommend.onboarding import genre_start

    model = load_model(model_dir)
    if genres:
        folded = genre_start(model, [g.strip() for g in genres.split(",") if g.strip()])
        df = folded.recommend(n, tier="genres", min_count=20)
    else:
        df = recommend_new_user(model, parse_rates(model, rates), n=n)
        if not (as_json or quiet) and set(df["tier"]) != {"personal"}:
            out.stderr.print(f"note: fewer than {DEFAULT_MIN_PERSONAL} ratings of known items, "
                             "so these are ranked by bias-adjusted popularity; rate "
                             f"{DEFAULT_MIN_PERSONAL} or more for personal recommendations")
    if as_json:
        out.emit_json({"model": model_dir, "recommendations": _records(df)})
    elif not quiet:
        tiers = ", ".join(sorted(set(df["tier"]))) if "tier" in df else "personal"
        out.stdout.print(out.frame_table(df.drop(columns=["user"], errors="ignore"),
                                         f"top {n} for a new user (tier: {tiers})"))
