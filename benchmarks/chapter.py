"""The chapter's recipe by name (issue 12): validation MSE against the book's numbers.

    COLLABKIT_DATA=../shared/datasets nice -n 10 .venv/bin/python benchmarks/chapter.py [--nn]

``collabkit.fit(ml100k, "dot", recipe="chapter", random_state=seed)`` holds out a random 20 %
of ml-100k's 100,000 ratings for validation, as ``CollabDataLoaders.from_df(valid_pct=0.2)``
does, and trains DotProductBias (50 factors, y_range (0, 5.5)) with AdamW, wd 0.1, batches of
64, one-cycle at 5e-3 for 5 epochs. The book's validation MSE is 0.823 (DotProductBias) and
0.865 (EmbeddingNN, ``--nn``); the target is the mean of 3 seeds within 0.01 of it.

Measured 2026-12-01 (2 shared cores, one torch thread, nice 10): DotProductBias 0.8131,
0.8186, 0.8199 (mean 0.8172, within 0.01 of 0.823); EmbeddingNN 0.8466, 0.8562, 0.8616
(mean 0.8548: 0.0102 below the book's 0.865, reported, not a target).
"""

from __future__ import annotations

import statistics
import sys

import torch
from rich.console import Console
from rich.table import Table

import collabkit

BOOK = {"dot": 0.823, "nn": 0.865}
SEEDS = (0, 1, 2)


def main() -> int:
    torch.set_num_threads(1)
    kinds = ["dot", "nn"] if "--nn" in sys.argv else ["dot"]
    data = collabkit.load_dataset("ml-100k", download=False)
    console = Console()
    ok = True
    for kind in kinds:
        table = Table(title=f"recipe='chapter', kind {kind!r}, ml-100k, random 20 % validation")
        for col in ("seed", "epoch", "train MSE", "valid MSE", "valid RMSE", "fit s"):
            table.add_column(col, justify="right")
        mses = []
        for seed in SEEDS:
            m = collabkit.fit(data, kind, recipe="chapter", random_state=seed, device="cpu")
            for h in m.history_:
                table.add_row(str(seed), str(h["epoch"]), f"{h['train_loss']:.4f}",
                              f"{h['valid_mse']:.4f}", f"{h['valid_rmse']:.4f}",
                              f"{h['seconds']:.1f}")
            mses.append(m.valid_rmse_ ** 2)
        console.print(table)
        mean = statistics.mean(mses)
        within = abs(mean - BOOK[kind]) <= 0.01
        ok &= within or kind != "dot"  # the target is DotProductBias; nn is reported
        console.print(f"{kind}: validation MSE per seed {', '.join(f'{x:.4f}' for x in mses)}; "
                      f"mean {mean:.4f} against the book's {BOOK[kind]} "
                      f"({'within' if within else 'NOT within'} 0.01)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
