"""PNG plots of what a model learned and how it trained (matplotlib, Agg canvas).

The figures are drawn on :class:`matplotlib.figure.Figure` with an Agg canvas directly, so
nothing here touches pyplot's global state or the backend a notebook has chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from collabkit.errors import ConfigError, DataError
from collabkit.interpret import PCAResult

__all__ = ["plot_pca", "plot_history", "plot_lr_find"]


def _save(fig: Figure, path: str | os.PathLike[str]) -> str:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(target, dpi=120, bbox_inches="tight")
    return str(target)


def _short(title: Any, width: int = 28) -> str:
    text = str(title)
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_pca(result: PCAResult, path: str | os.PathLike[str], *, x: int = 1, y: int = 2,
             n_labels: int = 30) -> str:
    """Scatter the items on two principal components, labelling the telling ones.

    Every item of the PCA pool is a grey dot; the ``n_labels`` labelled items are the most
    extreme along either axis plus the most rated, shown in blue with their (shortened)
    titles, so the axes can be read the way the fast.ai chapter reads them.

    Parameters
    ----------
    result : PCAResult
        From :func:`collabkit.interpret.pca`.
    path : str or path
        Output PNG.
    x, y : int
        1-based components on the horizontal and vertical axes.
    n_labels : int
        How many items get a title.

    Returns
    -------
    str
        The path written.
    """
    nc = len(result.components)
    for c in (x, y):
        if not 1 <= c <= nc:
            raise ConfigError(f"components must be in 1..{nc}, got {c}")
    t = result.coords
    px, py = t[f"pc{x}"].to_numpy(), t[f"pc{y}"].to_numpy()
    labels = [str(a) if a is not None else str(b) for a, b in zip(t["title"], t["item"],
                                                                   strict=True)]
    fig = Figure(figsize=(11, 9))
    ax = fig.add_subplot()
    ax.scatter(px, py, s=8, c="0.75", linewidths=0)
    picked = _label_set(px, py, t["n_ratings"].to_numpy(), n_labels)
    ax.scatter(px[picked], py[picked], s=18, c="tab:blue")
    ax.margins(0.06)
    _place_labels(fig, ax, px[picked], py[picked], [_short(labels[j]) for j in picked])
    vr = result.explained_variance_ratio
    ax.set_xlabel(f"PC{x} ({100 * vr[x - 1]:.1f}% of variance)")
    ax.set_ylabel(f"PC{y} ({100 * vr[y - 1]:.1f}% of variance)")
    ax.set_title(f"Item factors: {len(t)} most-rated items on PC{x} and PC{y}")
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    return _save(fig, path)


_OFFSETS = [(4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
            (-4, -3, "right", "top"), (4, 11, "left", "bottom"), (4, -11, "left", "top"),
            (-4, 11, "right", "bottom"), (-4, -11, "right", "top")]


def _place_labels(fig: Figure, ax: Any, xs: np.ndarray, ys: np.ndarray, texts: list[str],
                  fontsize: float = 7.5) -> None:
    """Annotate points, trying eight offsets per label to avoid overlapping earlier labels.

    Label boxes are estimated in display pixels (0.55 em per character), which is enough to
    keep neighbouring titles apart without a layout solver.
    """
    ax.get_xlim()  # settle the autoscaled limits before reading transData
    px = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    placed: list[tuple[float, float, float, float]] = []
    for (x, y), text in zip(pts, texts, strict=True):
        w, h = 0.55 * fontsize * len(text) * px, 1.25 * fontsize * px
        best, best_cost = _OFFSETS[0], np.inf
        for dx, dy, ha, va in _OFFSETS:
            x0 = x + dx * px - (w if ha == "right" else 0.0)
            y0 = y + dy * px - (h if va == "top" else 0.0)
            box = (x0, y0, x0 + w, y0 + h)
            cost = sum(_overlap(box, b) for b in placed)
            if cost < best_cost:
                best, best_cost, best_box = (dx, dy, ha, va), cost, box
            if cost == 0:
                break
        placed.append(best_box)
        dx, dy, ha, va = best
        ax.annotate(text, (ax.transData.inverted().transform((x, y))), xytext=(dx, dy),
                    textcoords="offset points", ha=ha, va=va, fontsize=fontsize, color="0.15")


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _label_set(px: np.ndarray, py: np.ndarray, counts: np.ndarray, n: int) -> list[int]:
    """Indices of the extremes on both axes, then the most rated, without repeats."""
    per = max(1, n // 5)
    groups = [np.argsort(px)[:per], np.argsort(-px)[:per], np.argsort(py)[:per],
              np.argsort(-py)[:per], np.argsort(-counts, kind="stable")]
    out: list[int] = []
    for g in groups:
        for j in g:
            if len(out) >= n:
                return out
            if int(j) not in out:
                out.append(int(j))
    return out


def plot_history(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> str:
    """Training curves: training loss (MSE) and validation RMSE per epoch, lr beside.

    Parameters
    ----------
    history : sequence of mappings
        A model's ``history_``: dicts with ``epoch``, ``train_loss``, ``valid_rmse`` (may be
        None), ``lr`` and ``seconds``.
    path : str or path
        Output PNG.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    DataError
        If ``history`` is empty or lacks ``epoch``/``train_loss``.
    """
    if not history:
        raise DataError("history is empty; fit the model first (model.history_)")
    try:
        epochs = np.array([h["epoch"] for h in history], dtype=float)
        train = np.array([h["train_loss"] for h in history], dtype=float)
    except KeyError as e:
        raise DataError(f"history entries need 'epoch' and 'train_loss'; missing {e}") from None
    valid = np.array([np.nan if h.get("valid_rmse") is None else h["valid_rmse"]
                      for h in history], dtype=float)
    lr = np.array([h.get("lr", np.nan) for h in history], dtype=float)
    fig = Figure(figsize=(10, 4))
    ax, ax2 = fig.subplots(1, 2)
    ax.plot(epochs, np.sqrt(train), "o-", label="train RMSE (√ mean batch loss)")
    if np.isfinite(valid).any():
        ax.plot(epochs, valid, "s-", label="valid RMSE")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title("Training curves")
    ax2.plot(epochs, lr, "o-", color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("learning rate at epoch end")
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3)
    ax2.set_title("Schedule")
    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _save(fig, path)


def plot_lr_find(lrs: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
                 suggestion: float | None, path: str | os.PathLike[str]) -> str:
    """The learning-rate finder's curve: smoothed loss against a log learning rate.

    Parameters
    ----------
    lrs, losses : sequences of float
        From :class:`~collabkit.train.lr_find.LRFindResult`.
    suggestion : float or None
        Marked with a red dot and a label.
    path : str or path
        Output PNG.

    Returns
    -------
    str
        The path written.
    """
    lrs_a, losses_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs_a.shape != losses_a.shape or lrs_a.size == 0:
        raise DataError(f"lrs and losses must be non-empty and of one length, got "
                        f"{lrs_a.size} and {losses_a.size}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(lrs_a, losses_a)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    finite = losses_a[np.isfinite(losses_a)]
    if finite.size:
        top = min(float(finite.max()), 4 * float(finite.min()) + 1e-12)
        ax.set_ylim(float(finite.min()) * 0.95, top * 1.05)
    if suggestion is not None and np.isfinite(suggestion):
        y = float(np.interp(np.log(suggestion), np.log(lrs_a), losses_a))
        ax.plot([suggestion], [y], "o", color="tab:red")
        ax.annotate(f"suggestion {suggestion:.1e}", (suggestion, y), xytext=(6, 6),
                    textcoords="offset points", color="tab:red")
    ax.grid(alpha=0.3)
    ax.set_title("Learning-rate finder")
    return _save(fig, path)
