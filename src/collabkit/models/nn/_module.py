"""EmbeddingNN: user and item embeddings fed through a small multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from collabkit.models.biased_mf._module import sigmoid_range

__all__ = ["EmbeddingNN", "emb_size_rule", "emb_sizes"]


def emb_size_rule(n: int) -> int:
    """fastai's embedding size for a table of ``n`` rows: ``min(600, round(1.6 * n**0.56))``.

    Examples
    --------
    >>> emb_size_rule(944), emb_size_rule(1665)
    (74, 102)
    """
    return int(min(600, round(1.6 * max(1, n) ** 0.56)))


def emb_sizes(data: Any) -> list[tuple[int, int]]:
    """fastai's ``get_emb_sz(dls)`` on a ratings table: ``[(n_users, width), (n_items, width)]``.

    The rows are the users and items a model fitted on ``data`` has (its vocabularies); the
    widths follow :func:`emb_size_rule` on ``n + 1`` (fastai counts its ``#na#`` row), so
    ml-100k gives ``[(943, 74), (1682, 102)]`` against fastai's ``[(944, 74), (1665, 102)]``
    (fastai's 20 % validation split leaves 17 items out of its vocabulary).

    Examples
    --------
    >>> from collabkit.testing.synthetic import planted_low_rank
    >>> emb_sizes(planted_low_rank(n_users=30, n_items=20, k=2, density=1.0, seed=0).data)
    [(30, 11), (20, 9)]
    """
    n_users = int(len(np.unique(np.asarray(data.users))))
    n_items = int(len(np.unique(np.asarray(data.items))))
    return [(n_users, emb_size_rule(n_users + 1)), (n_items, emb_size_rule(n_items + 1))]


def _lookup(emb: nn.Embedding, idx: torch.Tensor, cold: bool) -> torch.Tensor:
    """Embedding rows; with ``cold``, index ``-1`` gets the mean row of the table."""
    if not cold:
        return emb(idx)
    known = (idx >= 0).unsqueeze(-1)
    return torch.where(known, emb(idx.clamp(min=0)), emb.weight.mean(0))


class EmbeddingNN(nn.Module):
    r"""The chapter's EmbeddingNN: concatenated embeddings through an MLP.

    .. math::

        x &= \operatorname{drop}_e\big([\,p_u;\; q_i;\; e_{c_1};\dots;e_{c_C}\,]\big)
             \oplus z, \\
        h_\ell &= \operatorname{drop}_\ell\big(\operatorname{ReLU}(W_\ell h_{\ell-1}
                 + b_\ell)\big), \quad h_0 = x, \\
        \hat r_{ui} &= \operatorname{sigmoid\_range}(w^\top h_L + b,\; y_{lo}, y_{hi})

    where :math:`p_u, q_i` are user and item embeddings, :math:`e_{c}` optional embeddings of
    extra categorical inputs (user side features), :math:`z` optional numeric inputs (item
    features, rating time) appended after the embedding dropout :math:`\operatorname{drop}_e`,
    as fastai's ``TabularModel`` does.

    Parameters
    ----------
    n_users, n_items : int
        Rows of the user and item tables.
    user_emb_size, item_emb_size : int or None
        Embedding widths; ``None`` applies :func:`emb_size_rule` to ``n + 1`` (fastai counts
        its ``#na#`` row, so ml-100k gets 74 and 102 as in fastai).
    layers : sequence of int
        Widths of the hidden layers.
    dropout : sequence of float
        Dropout after each hidden layer (same length as ``layers``).
    emb_dropout : float
        Dropout on the concatenated embeddings.
    y_range : (low, high) or None
        Output range of the final sigmoid; ``None`` returns the raw output.
    cat_cardinalities : sequence of int
        Rows of each extra categorical input (their widths follow :func:`emb_size_rule`).
    n_cont : int
        Number of extra numeric inputs.
    init_std : float
        Standard deviation of the normal initialisation of the embeddings.
    global_bias : float
        Initial bias of the output unit (in logit space when ``y_range`` is set), so that
        training starts near the mean rating.
    use_bn : bool
        BatchNorm after each hidden layer's activation, its Linear without bias: fastai's
        ``TabularModel`` (``collab_learner(use_nn=True)``) layer by layer.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        *,
        user_emb_size: int | None = None,
        item_emb_size: int | None = None,
        layers: Sequence[int] = (100, 50),
        dropout: Sequence[float] = (0.0, 0.0),
        emb_dropout: float = 0.05,
        y_range: tuple[float, float] | None = (0.0, 5.5),
        cat_cardinalities: Sequence[int] = (),
        n_cont: int = 0,
        init_std: float = 0.01,
        global_bias: float = 0.0,
        use_bn: bool = False,
    ) -> None:
        super().__init__()
        su = user_emb_size or emb_size_rule(n_users + 1)
        si = item_emb_size or emb_size_rule(n_items + 1)
        self.user_emb = nn.Embedding(n_users, su)
        self.item_emb = nn.Embedding(n_items, si)
        cat_sizes = [emb_size_rule(c) for c in cat_cardinalities]
        self.cat_embs = nn.ModuleList(
            nn.Embedding(c, s) for c, s in zip(cat_cardinalities, cat_sizes, strict=True))
        self.emb_drop = nn.Dropout(emb_dropout)
        self.n_cont = int(n_cont)
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        n_cat = sum(cat_sizes)
        self._widths = (su, si, n_cat, self.n_cont)
        sizes = [su + si + n_cat + self.n_cont, *(int(h) for h in layers)]
        body: list[nn.Module] = []
        for k, p in enumerate(dropout):
            if use_bn:  # fastai's LinBnDrop(lin_first=True): Linear (no bias), ReLU, BN, Dropout
                body += [nn.Linear(sizes[k], sizes[k + 1], bias=False), nn.ReLU(),
                         nn.BatchNorm1d(sizes[k + 1]), nn.Dropout(float(p))]
            else:
                body += [nn.Linear(sizes[k], sizes[k + 1]), nn.ReLU(), nn.Dropout(float(p))]
        self.body = nn.Sequential(*body)
        self.out = nn.Linear(sizes[-1], 1)
        with torch.no_grad():
            for e in (self.user_emb, self.item_emb, *self.cat_embs):
                e.weight.normal_(0.0, init_std)
            self.out.bias.fill_(global_bias)

    def _user_part(self, users: torch.Tensor, cats: torch.Tensor | None,
                   cold: bool) -> list[torch.Tensor]:
        parts = [_lookup(self.user_emb, users, cold)]
        if len(self.cat_embs):
            assert cats is not None
            parts += [e(cats[:, k]) for k, e in enumerate(self.cat_embs)]
        return parts

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        res = self.out(h).squeeze(-1)
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)

    def forward(self, users: torch.Tensor, items: torch.Tensor, cats: torch.Tensor | None = None,
                conts: torch.Tensor | None = None, *, cold: bool = False) -> torch.Tensor:
        """Predicted ratings, shape ``(batch,)``.

        Parameters
        ----------
        users, items : Tensor of int64, shape (batch,)
            With ``cold=True``, ``-1`` marks an id without its own embedding; the mean
            embedding of the table stands in for it.
        cats : Tensor of int64, shape (batch, len(cat_cardinalities)), optional
        conts : Tensor of float32, shape (batch, n_cont), optional
        """
        u = self._user_part(users, cats, cold)
        x = torch.cat([u[0], _lookup(self.item_emb, items, cold), *u[1:]], dim=1)
        x = self.emb_drop(x)
        if self.n_cont:
            assert conts is not None
            x = torch.cat([x, conts], dim=1)
        return self._head(self.body(x))

    @torch.no_grad()
    def score_grid(self, users: torch.Tensor, items: torch.Tensor,
                   cats: torch.Tensor | None = None, item_conts: torch.Tensor | None = None,
                   *, max_rows: int = 1 << 16) -> torch.Tensor:
        """Ratings of every ``(user, item)`` pair, shape ``(len(users), len(items))`` (eval only).

        The first layer is linear in the concatenated input, so its user part (user embedding
        and ``cats``, which must be per user) and item part (item embedding and
        ``item_conts``, which must be per item) are computed once and broadcast-added; the
        rest of the network runs on blocks of at most ``max_rows`` pairs.
        """
        su, si, sc, _ = self._widths
        first: nn.Linear = self.body[0]  # type: ignore[assignment]
        w = first.weight
        hu = torch.cat(self._user_part(users, cats, False), dim=1)
        hu = hu[:, :su] @ w[:, :su].T + hu[:, su:] @ w[:, su + si : su + si + sc].T
        if first.bias is not None:
            hu = hu + first.bias
        hi = self.item_emb(items) @ w[:, su : su + si].T
        if self.n_cont:
            assert item_conts is not None
            hi = hi + item_conts @ w[:, su + si + sc :].T
        rest = self.body[1:]
        step = max(1, max_rows // max(1, len(items)))
        out = []
        for s in range(0, len(users), step):
            h = hu[s : s + step, None, :] + hi[None, :, :]
            flat = rest(h.reshape(-1, h.shape[-1]))  # 2-D rows: BatchNorm1d reads dim 1
            out.append(self._head(flat).reshape(h.shape[0], h.shape[1]))
        if not out:
            return hi.new_zeros((0, len(items)))
        return torch.cat(out, dim=0)
