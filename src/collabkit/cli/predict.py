"""``collabkit predict``: ratings of (user, item) pairs from a saved model."""

from __future__ import annotations

import click

from collabkit.cli import output as out
from collabkit.cli.options import common, raw_id
from collabkit.errors import ConfigError


@click.command()
@click.argument("model_dir", metavar="MODEL")
@click.argument("pairs", nargs=-1, metavar="USER ITEM [USER ITEM ...]")
@click.option("--raw", is_flag=True,
              help="The model's raw output, not clipped to the training rating range.")
@common
def predict(model_dir: str, pairs: tuple[str, ...], raw: bool, as_json: bool,
            quiet: bool) -> None:
    """Predict ratings for (USER, ITEM) pairs of raw ids (clipped to the rating range)."""
    from collabkit.models.persist import load_model

    if not pairs or len(pairs) % 2:
        raise ConfigError("give USER ITEM pairs, e.g. `collabkit predict MODEL 1 31 1 1029`")
    model = load_model(model_dir)
    from collabkit.metrics.ranking_report import is_ranker

    if is_ranker(model):  # issue 13: its scores rank items; they are no ratings
        raise ConfigError(f"MODEL is a {model.kind!r} model, which ranks items from "
                          "interactions and predicts no ratings; use `collabkit recommend "
                          "MODEL USER` (ranked items with their scores)")
    users = [raw_id(model.user_vocab_, p) for p in pairs[0::2]]
    items = [raw_id(model.item_vocab_, p) for p in pairs[1::2]]
    df = model.predict(users, items, clip=not raw)
    if as_json:
        out.emit_json({"model": model_dir, "predictions": df.to_dict(orient="records")})
    else:
        out.stdout.print(out.frame_table(df, "predicted ratings (fallback: unseen id, "
                                         "baseline answered)"))
