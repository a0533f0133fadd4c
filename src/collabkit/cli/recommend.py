"""``collabkit recommend``: top-N items for known users, or for a new user from their
ratings (``--rate ITEM=RATING``) or liked genres (``--genres``), folded in without retraining."""

from __future__ import annotations

from typing import Any

import click

from collabkit.cli import output as out
from collabkit.cli.options import common, raw_id
from collabkit.errors import ConfigError


@click.command()
@click.argument("model_dir", metavar="MODEL")
@click.argument("users", nargs=-1, metavar="USER [USER ...]")
@click.option("-n", "n", default=10, show_default=True, help="Items per user.")
@click.option("--include-seen", is_flag=True, help="Also recommend items the user rated.")
@click.option("--raw", is_flag=True,
              help="Show raw scores, not clipped to the training rating range.")
@click.option("--rate", "rates", multiple=True, metavar="ITEM=RATING",
              help="A new user's rating (repeatable): recommend without retraining.")
@click.option("--item", "items", multiple=True, metavar="ITEM",
              help="A new user's interaction, for an implicit-feedback model (repeatable): "
                   "recommend without retraining.")
@click.option("--genres", default=None, metavar="G1,G2",
              help="A new user's liked genres, e.g. Sci-Fi,Comedy.")
@click.option("--policy", type=click.Choice(["top", "explore", "mmr", "debias"]), default="top",
              show_default=True,
              help="top: the N best; explore: half the list drawn from the user's 200 best, "
                   "which keeps the feedback loop from narrowing the catalogue "
                   "(docs/feedback-loop.md); mmr, debias: diversity and popularity penalties.")
@click.option("--seed", default=0, show_default=True, help="Seed of --policy explore.")
@common
def recommend(model_dir: str, users: tuple[str, ...], n: int, include_seen: bool, raw: bool,
              rates: tuple[str, ...], items: tuple[str, ...], genres: str | None, policy: str,
              seed: int, as_json: bool, quiet: bool) -> None:
    """Top-N items for each USER (raw ids), with titles when known.

    For a user the model never saw, give no USER and their ratings with --rate (or
    --genres), or their interactions with --item for an implicit-feedback model: they are
    folded into the model in milliseconds, with no retraining.
    """
    from collabkit.models.persist import load_model

    if items:
        if rates or genres or users or policy != "top":
            raise ConfigError("--item gives a new user's interactions; use it without USER ids, "
                              "--rate, --genres and --policy")
        recommend_items(model_dir, items, n, as_json, quiet)
        return
    if rates or genres:
        if policy != "top":
            raise ConfigError("--policy applies to known USER ids; a new user's list (--rate, "
                              "--genres) is always the top N")
        if users:
            raise ConfigError("give either USER ids or --rate/--genres for a new user, not both")
        recommend_cold(model_dir, rates, genres, n, as_json, quiet)
        return
    if not users:
        raise ConfigError("give at least one USER id, e.g. `collabkit recommend MODEL 1`")
    model = load_model(model_dir)
    ids = [raw_id(model.user_vocab_, u) for u in users]
    opts: dict[str, Any] = {"seed": seed} if policy == "explore" else {}
    df = model.recommend(ids, n=n, exclude_seen=not include_seen, clip=not raw, policy=policy,
                         **opts)
    if as_json:
        out.emit_json({"model": model_dir, "recommendations": df.to_dict(orient="records")})
        return
    for u in ids:
        part = df[df["user"] == u].drop(columns=["user"])
        tier = part["tier"].iloc[0] if len(part) else "model"
        note = "" if tier == "model" else f" (unknown user: {tier} ranking)"
        out.stdout.print(out.frame_table(part.drop(columns=["tier"]),
                                         f"top {n} for user {u}{note}"))


def parse_rates(model: Any, rates: tuple[str, ...]) -> dict[Any, float]:
    """``ITEM=RATING`` pairs into ``{raw_item: rating}``."""
    ratings: dict[Any, float] = {}
    for text in rates:
        item, sep, value = text.rpartition("=")
        try:
            ratings[raw_id(model.item_vocab_, item)] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--rate {text!r} must look like ITEM=RATING, e.g. --rate 318=5")
    return ratings


def recommend_items(model_dir: str, items: tuple[str, ...], n: int, as_json: bool,
                    quiet: bool) -> None:
    """``recommend MODEL --item ITEM ...``: a new user's interactions folded into a ranker."""
    from collabkit.metrics.ranking_report import is_ranker
    from collabkit.models.persist import load_model

    model = load_model(model_dir)
    if not is_ranker(model):
        raise ConfigError(f"--item is for implicit-feedback models; MODEL is a {model.kind!r} "
                          "model, which learns from ratings: give --rate ITEM=RATING")
    df = model.recommend_new_user([raw_id(model.item_vocab_, i) for i in items], n=n)
    if as_json:
        out.emit_json({"model": model_dir, "recommendations": df.to_dict(orient="records")})
    elif not quiet:
        out.stdout.print(out.frame_table(df.drop(columns=["user"], errors="ignore"),
                                         f"top {n} for a new user with {len(items)} "
                                         "interactions (folded in)"))


def recommend_cold(model_dir: str, rates: tuple[str, ...], genres: str | None, n: int,
                   as_json: bool, quiet: bool) -> None:
    """``recommend MODEL --rate ITEM=RATING ...`` / ``--genres``: a user the model never saw."""
    from collabkit.metrics.ranking_report import is_ranker
    from collabkit.models.persist import load_model
    from collabkit.recommend.coldstart import DEFAULT_MIN_PERSONAL, recommend_new_user
    from collabkit.recommend.onboarding import genre_start

    model = load_model(model_dir)
    if is_ranker(model):
        raise ConfigError(f"MODEL is a {model.kind!r} model, which ranks interactions without "
                          "ratings; give a new user's items with --item ITEM (repeatable)")
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
        out.emit_json({"model": model_dir, "recommendations": df.to_dict(orient="records")})
    elif not quiet:
        tiers = ", ".join(sorted(set(df["tier"]))) if "tier" in df else "personal"
        out.stdout.print(out.frame_table(df.drop(columns=["user"], errors="ignore"),
                                         f"top {n} for a new user (tier: {tiers})"))
