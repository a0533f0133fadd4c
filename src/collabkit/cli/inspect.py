"""Commands that look inside a saved model: ``inspect``, ``similar``, ``explain``, ``plot``
and ``onboard``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from collabkit.cli import output as out
from collabkit.cli.options import common, raw_id
from collabkit.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in df.to_dict(orient="records")]


@click.command("inspect")
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


@click.command("similar")
@click.argument("model_dir", metavar="MODEL")
@click.argument("item")
@click.option("-n", "n", default=10, show_default=True)
@click.option("--min-ratings", default="auto", show_default=True,
              help="Only items with at least this many ratings ('auto': 50, less on small data).")
@click.option("--similarity", type=click.Choice(["auto", "ratings", "factors"]), default="auto",
              show_default=True,
              help="ratings: adjusted cosine of the training ratings, shrunk by the users who "
                   "rated both; factors: cosine of the centred item factors; auto: ratings "
                   "when the model stores varied ratings.")
@common
def similar_cmd(model_dir: str, item: str, n: int, min_ratings: str, similarity: str,
                as_json: bool, quiet: bool) -> None:
    """Items most similar to ITEM: by default, those the users who rated both rated alike
    (adjusted cosine of the training ratings, shrunk by how many users rated both); for an
    implicit-feedback model, the items it would recommend to someone who has only ITEM.

    ITEM is an item id or a title: "silence of the lambs" finds
    "Silence of the Lambs, The (1991)".
    """
    from collabkit.interpret import find_item, similar_items
    from collabkit.metrics.ranking_report import is_ranker
    from collabkit.models.persist import load_model

    model = load_model(model_dir)
    raw = find_item(model, raw_id(model.item_vocab_, item))
    if is_ranker(model):  # issue 13: a ranker's own neighbours (what it would recommend)
        if min_ratings != "auto":
            raise ConfigError(f"--min-ratings applies to factor models; a {model.kind!r} model "
                              "ranks every item by its own similarity")
        df = model.similar_items(raw, n=n)
    elif min_ratings != "auto":
        try:
            min_ratings = int(min_ratings)  # type: ignore[assignment]
        except ValueError:
            raise ConfigError(f"--min-ratings must be a whole number or 'auto', got "
                              f"{min_ratings!r}") from None
    if not is_ranker(model):
        df = similar_items(model, raw, n=n, min_ratings=min_ratings,
                           similarity=similarity)  # type: ignore[arg-type]
    if as_json:
        out.emit_json({"model": model_dir, "item": raw, "similar": _records(df)})
    elif not quiet:
        title = model._titles([raw])[0] or raw
        out.stdout.print(out.frame_table(df, f"items most similar to {title}"))


@click.command("explain")
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
    ex = explain(model, raw_id(model.user_vocab_, user), raw_id(model.item_vocab_, item))
    contrib = ex.contributions.head(n)
    if as_json:
        fields = {k: getattr(ex, k) for k in ("user", "item", "title", "prediction",
                                              "global_bias", "user_bias", "item_bias", "dot",
                                              "raw", "y_range", "source", "ratings_source")}
        out.emit_json({"model": model_dir, **fields, "contributions": _records(contrib)})
    elif not quiet:
        out.stdout.print(str(ex))
        out.stdout.print(out.frame_table(contrib, "rated items that weigh most"))


@click.command("plot")
@click.argument("model_dir", metavar="MODEL")
@click.option("--png", default="training_curves.png", show_default=True, metavar="FILE")
@common
def plot_cmd(model_dir: str, png: str, as_json: bool, quiet: bool) -> None:
    """Training curves (loss and validation RMSE per epoch) of a saved MODEL."""
    from collabkit.models.persist import load_model
    from collabkit.plots import plot_history

    path = plot_history(getattr(load_model(model_dir), "history_", []), png)
    if as_json:
        out.emit_json({"png": path})
    elif not quiet:
        out.stdout.print(f"wrote {path}")


@click.command("onboard")
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
