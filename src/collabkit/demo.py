"""``make demo``: the main job on the bundled ml-latest-small, offline.

Loads the data, holds out 20% of the ratings, trains DotProductBias (BiasedMF) with a live
progress bar, prints the held-out RMSE beside the baselines, then a user's top 10.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import collabkit
from collabkit.cli import output as out


def main(user: int = 1, seed: int = 42) -> int:
    o = out.stdout
    data = collabkit.load_dataset("ml-latest-small", download=False)
    o.print(f"[bold]collabkit {collabkit.__version__}[/] demo on the bundled {data!r}")
    train, test = collabkit.split(data, "random", test_frac=0.2, seed=seed)
    model = collabkit.BiasedMF(random_state=seed)
    with out.EpochProgress(model.epochs, enabled=True,
                           then="closed-form passes") as bar:
        model.callback = bar
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
    model.callback = None
    report = collabkit.evaluate(model, test)
    o.print(f"trained on {len(train)} ratings in {fit_s:.1f} s "
            f"(validation RMSE {model.valid_rmse_:.4f}, carved from training rows)")
    title = f"held-out test: {report.n} ratings (20%, seed {seed})"
    o.print(out.metrics_table(report.table, title))

    seen = train.to_dataframe()
    mine = seen[seen["user"] == user].sort_values("rating", ascending=False).head(5)
    titles = np.asarray(data.titles(mine["item"].to_numpy()), dtype=object)
    mine = mine.assign(title=titles)[["item", "title", "rating"]]
    o.print(out.frame_table(mine, f"user {user} rated highly (training rows)", floats="{:.1f}"))
    recs = model.recommend(user, n=10)[["rank", "item", "title", "score"]]
    o.print(out.frame_table(recs, f"top 10 recommendations for user {user} (unseen movies)"))
    from collabkit.interpret import similar_items
    from collabkit.recommend.coldstart import recommend_new_user

    sim = similar_items(model, 260, n=5, min_ratings=20)[["rank", "item", "title", "similarity"]]
    o.print(out.frame_table(sim, "movies most like Star Wars: Episode IV (cosine of factors)"))
    # A brand-new user rates five films; fold-in gives them a vector without retraining.
    new = {1: 5.0, 2571: 5.0, 4993: 5.0, 79132: 4.5, 2959: 4.5}
    cold = recommend_new_user(model, new, n=5)[["rank", "item", "title", "score", "tier"]]
    names = ", ".join(t for t in model.titles(list(new)) if t)
    o.print(out.frame_table(cold, f"a new user who loved {names}"))
    path = model.save("runs/demo-ml-latest-small")
    o.print(f"model saved to {path}; try: [bold].venv/bin/collabkit recommend {path} {user} 2[/]")
    if not np.isfinite(report.rmse):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
