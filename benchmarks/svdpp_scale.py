"""SVD++ on issue 14's catalog shape: 7k users x 105k items, very sparse, 1-5 stars.

    nice -n 10 .venv/bin/python benchmarks/svdpp_scale.py                 # 140,000 ratings
    nice -n 10 .venv/bin/python benchmarks/svdpp_scale.py --ratings 300000 --item-exponent 0.5 \
        --fits baseline,single --out benchmarks/results/svdpp-scale-300k.md

The issue's product-ratings file is not on disk and its rating count was not given: the set
is :func:`collabkit.testing.synthetic.long_tail` at that shape, by default with the ratings
per user of the ``sparse`` set of ``benchmarks/defaults.py`` (20), split 80/20 (seed 0).
At that count the Zipf law rates 45k of the 105k items; ``--item-exponent 0.5 --ratings
300000`` rates 93k of them (70 % with 1-3 ratings).

Fits, one torch thread each, in this order: the damped-bias baseline (the reference),
``SVDpp(reg=0.1, valid_frac=0)`` (one run of the epochs, as before issue 14's carve) and
``SVDpp()`` (the default: carve, ``reg="auto"`` search, safety net, refit). Prints and writes
``benchmarks/results/svdpp-scale.md`` (``--out``) with fit seconds, their ratio to the
baseline's, test RMSE and the load average around each fit (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=7000)
    ap.add_argument("--items", type=int, default=105_000)
    ap.add_argument("--ratings", type=int, default=140_000)
    ap.add_argument("--item-exponent", type=float, default=0.9)
    ap.add_argument("--fits", default="baseline,single,default",
                    help="which of baseline, single, default to fit (baseline always first)")
    ap.add_argument("--out", default=str(HERE / "results" / "svdpp-scale.md"))
    args = ap.parse_args()
    import torch

    from collabkit.data.interactions import Interactions
    from collabkit.models.baseline import BiasBaseline
    from collabkit.models.svdpp import SVDpp
    from collabkit.testing.synthetic import long_tail

    torch.set_num_threads(1)
    df = long_tail(args.users, args.items, args.ratings, item_exponent=args.item_exponent,
                   seed=0)
    perm = np.random.default_rng(0).permutation(len(df))
    cut = int(round(0.8 * len(df)))
    train, test = df.iloc[perm[:cut]], df.iloc[perm[cut:]]
    data = Interactions.from_dataframe(train, name="long-tail")
    rows: list[dict[str, Any]] = []
    fits = {"baseline": ("damped-bias baseline", BiasBaseline),
            "single": ("SVDpp(reg=0.1, valid_frac=0)", lambda: SVDpp(reg=0.1, valid_frac=0.0,
                                                                     random_state=0)),
            "default": ("SVDpp() default", lambda: SVDpp(random_state=0))}
    wanted = ["baseline"] + [f for f in args.fits.split(",") if f in fits and f != "baseline"]
    for label, make in (fits[f] for f in wanted):
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = make().fit(data)
        fit_s = time.perf_counter() - t0
        pred, _ = est.predict_ratings(test.user.to_numpy(), test.item.to_numpy())
        rmse = float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))
        chosen = getattr(est, "chosen_", None)
        rows.append({"label": label, "fit_s": fit_s, "rmse": rmse, "chosen": chosen,
                     "load": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"})
        print(f"{label}: fit {fit_s:.2f} s, test RMSE {rmse:.4f}, load {rows[-1]['load']}"
              + (f", {chosen}" if chosen else ""), flush=True)
    ref = rows[0]["fit_s"]
    md = (f"# SVD++ on a {args.users:,} x {args.items:,} long-tail catalog\n\n"
          f"`benchmarks/svdpp_scale.py --users {args.users} --items "
          f"{args.items} --ratings {args.ratings} --item-exponent {args.item_exponent}`, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} "
          f"UTC, nice -n 10, one torch thread, {os.cpu_count()} cores (shared).\n\n"
          f"Training rows: {len(train):,} ({train.user.nunique():,} users x "
          f"{train.item.nunique():,} items); test rows: {len(test):,}.\n\n"
          "| fit | seconds | x baseline | test RMSE | load average | chosen |\n"
          "|---|---:|---:|---:|---|---|\n")
    for r in rows:
        c = r["chosen"]
        what = "-" if not c else (f"reg {c['reg']:.3g} of {len(c['reg_tried'])} tried; serves "
                                  f"the {c['serving']}")
        md += (f"| {r['label']} | {r['fit_s']:.2f} | {r['fit_s'] / ref:,.0f} | "
               f"{r['rmse']:.4f} | {r['load']} | {what} |\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(md)
    print(md)


if __name__ == "__main__":
    main()
