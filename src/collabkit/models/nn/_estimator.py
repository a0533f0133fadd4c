"""MLPRecommender: the estimator around :class:`~collabkit.models.nn._module.EmbeddingNN`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from collabkit.errors import ConfigError, NotSupportedError
from collabkit.models._side_features import SideFeatureRecommender, logit_mean
from collabkit.models.capabilities import EmbeddingModel
from collabkit.models.nn._module import EmbeddingNN
from collabkit.train.runner import EpochStats

__all__ = ["MLPRecommender"]


class MLPRecommender(SideFeatureRecommender, EmbeddingModel):
    r"""The chapter's EmbeddingNN as an estimator (kind ``"nn"``).

    .. math::

        \hat r_{ui} = \operatorname{sigmoid\_range}\big(
            \operatorname{MLP}(\operatorname{drop}_e[p_u; q_i] \oplus z_{ui}),\;
            y_{lo}, y_{hi}\big)

    with hidden layers ``Linear → ReLU → Dropout`` (see :class:`EmbeddingNN`), trained on MSE
    with AdamW and the one-cycle schedule.

    With ``use_features=True`` the side features of :mod:`collabkit.data.features` go in
    too: user demographics as extra embeddings (concatenated with :math:`p_u, q_i`, so under
    the embedding dropout), the item numbers (genres multi-hot, standardised year, missing
    flag) and rating-time numbers as :math:`z_{ui}`. A cold item or user with features is
    then scored with the mean embedding of its table in place of its own (see
    :class:`~collabkit.models.hybrid._estimator.SideFeatureRecommender` for cold ids and
    timestamps).

    Parameters
    ----------
    layers : sequence of int, default (100, 50)
        Hidden layer widths.
    dropout : float or sequence of float, default 0.1
        Dropout after each hidden layer; a float applies to all of them.
    emb_dropout : float, default 0.4
        Dropout on the concatenated embeddings. The chapter's companion uses 0.05; with it
        the test RMSE on ml-100k u1 is about 0.937-0.945 against 0.931-0.933 with 0.4 (the
        strongest single lever found when tuning on validation rows).
    user_emb_size, item_emb_size : int or None
        Embedding widths; ``None`` uses fastai's rule ``min(600, round(1.6 * n**0.56))``.
    use_features : bool, default False
        Feed side features into the network.
    features : "auto" or sequence of str, default "auto"
        Feature groups used when ``use_features`` (see
        :class:`~collabkit.models.hybrid._estimator.HybridMF`).
    use_bn : bool, default False
        BatchNorm in every hidden layer, as fastai's ``collab_learner(use_nn=True)`` network
        (``recipe="chapter"`` turns it on with the chapter's other settings).
    optimizer : {"adamw", "sgd"}, default "adamw"
    epochs : int, default 20
    lr : float, default 1e-2
        Peak learning rate of the one-cycle schedule.
    wd : float, default 1.0
        Decoupled weight decay (AdamW).
    batch_size : int, default 512
    y_range, valid_frac, device, random_state, callback
        As in :class:`~collabkit.models.biased_mf._estimator.BiasedMF`.

    Notes
    -----
    The defaults were tuned on ml-100k u1: test RMSE 0.931 on ``u1.test`` (0.922 mean over
    u1–u5) in 20 epochs of batches of 512, 11–13 s on one CPU core, against 0.948 for
    fastai's EmbeddingNN (5 epochs, lr 5e-3, wd 0.1, bs 64).
    :meth:`_score_users` scores a block of users against every item at once: the first layer
    is split into its user and item parts (:meth:`EmbeddingNN.score_grid`).

    Examples
    --------
    >>> import collabkit                                                    # doctest: +SKIP
    >>> train, test = collabkit.load_split("ml-100k", "u1")                 # doctest: +SKIP
    >>> model = MLPRecommender(random_state=0).fit(train)                   # doctest: +SKIP
    >>> model.recommend(1, n=5)                                             # doctest: +SKIP
    """

    kind = "nn"

    def __init__(self, *, layers: Sequence[int] = (100, 50),
                 dropout: float | Sequence[float] = 0.1, emb_dropout: float = 0.4,
                 user_emb_size: int | None = None, item_emb_size: int | None = None,
                 use_features: bool = False, features: str | tuple[str, ...] = "auto",
                 use_bn: bool = False, optimizer: str = "adamw",
                 epochs: int = 20, lr: float = 1e-2, wd: float = 1.0, batch_size: int = 512,
                 y_range: str | tuple[float, float] | None = "auto", valid_frac: float = 0.1,
                 device: str = "auto", random_state: int | None = None,
                 callback: Callable[[EpochStats], None] | None = None) -> None:
        self.layers = layers
        self.dropout = dropout
        self.emb_dropout = emb_dropout
        self.user_emb_size = user_emb_size
        self.item_emb_size = item_emb_size
        self.use_features = use_features
        self.features = features
        self.use_bn = use_bn
        self.optimizer = optimizer
        self.epochs = epochs
        self.lr = lr
        self.wd = wd
        self.batch_size = batch_size
        self.y_range = y_range
        self.valid_frac = valid_frac
        self.device = device
        self.random_state = random_state
        self.callback = callback

    def _dropouts(self) -> list[float]:
        layers = list(self.layers)
        if isinstance(self.dropout, int | float | np.floating):
            return [float(self.dropout)] * len(layers)
        drops = [float(p) for p in self.dropout]
        if len(drops) != len(layers):
            raise ConfigError(f"dropout needs one value per hidden layer: got {len(drops)} for "
                              f"layers={tuple(layers)}; pass a float to use it everywhere")
        return drops

    def _validate(self) -> None:
        super()._validate()
        layers = list(self.layers) if isinstance(self.layers, Iterable) else [self.layers]
        if not layers or not all(isinstance(h, int | np.integer) and h > 0 for h in layers):
            raise ConfigError(f"layers must be a non-empty sequence of positive integers, got "
                              f"{self.layers!r}; e.g. layers=(100, 50)")
        for p in [*self._dropouts(), self.emb_dropout]:
            if not 0 <= p < 1:
                raise ConfigError(f"dropout probabilities must be in [0, 1), got {p!r}")
        for name in ("user_emb_size", "item_emb_size"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | np.integer) or v < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {v!r}")

    def _feature_spec(self) -> str | Iterable[str] | None:
        return self.features if self.use_features else None

    def _pack(self, users: torch.Tensor, items: torch.Tensor, item_numbers: torch.Tensor,
              user_cats: torch.Tensor, time_numbers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.encoder_.groups:
            return users, items
        return users, items, user_cats, torch.cat([item_numbers, time_numbers], dim=1)

    def _build_module(self, generator: torch.Generator) -> EmbeddingNN:
        y_range = self._resolve_y_range()
        enc = self.encoder_
        m = EmbeddingNN(len(self.user_vocab_), len(self.item_vocab_),
                        user_emb_size=self.user_emb_size, item_emb_size=self.item_emb_size,
                        layers=tuple(int(h) for h in self.layers), dropout=self._dropouts(),
                        emb_dropout=float(self.emb_dropout), y_range=y_range,
                        cat_cardinalities=enc.user_cardinalities,
                        n_cont=enc.n_item_numbers + enc.n_time,
                        global_bias=logit_mean(self.global_mean_, y_range),
                        use_bn=bool(self.use_bn))
        with torch.no_grad():  # reproducible initialisation from the model's own generator
            for e in (m.user_emb, m.item_emb, *m.cat_embs):
                e.weight.normal_(0.0, 0.01, generator=generator)
            for lin in [*m.body, m.out]:
                if isinstance(lin, torch.nn.Linear):
                    bound = 1.0 / lin.in_features ** 0.5
                    lin.weight.uniform_(-bound, bound, generator=generator)
                    if lin is not m.out and lin.bias is not None:
                        lin.bias.uniform_(-bound, bound, generator=generator)
        return m

    # ------------------------------------------------------------------ capabilities
    def user_embedding(self) -> torch.nn.Embedding:
        """The user table ``user_emb``; refused for a network that also takes features."""
        self.check_fitted()
        m: EmbeddingNN = self.module_  # type: ignore[assignment]
        if len(m.cat_embs) or m.n_cont:
            raise NotSupportedError(
                "fold-in is not supported by MLPRecommender (kind 'nn') trained with "
                "use_features=True: its network also takes user or item features, which a "
                "new user does not have; fold-in supports models trained on ids alone")
        return m.user_emb

    def forward_with_user_rows(self, x: torch.Tensor, rows: torch.Tensor,
                               items: torch.Tensor) -> torch.Tensor:
        """The network in eval mode with the user embedding lookup replaced by ``x[rows]``."""
        m: EmbeddingNN = self.module_  # type: ignore[assignment]
        emb = self.user_embedding()
        handle = emb.register_forward_hook(lambda _mod, _inp, _out: x[rows])
        was_training = m.training
        m.eval()
        try:
            # the user indices are dummies: the hook swaps in the rows of x
            return m(torch.zeros_like(rows), items).reshape(-1)
        finally:
            handle.remove()
            m.train(was_training)

    def item_vectors(self) -> np.ndarray:
        """The item embedding table as float64 ``(n_items, d)``."""
        m: EmbeddingNN = self.module_  # type: ignore[assignment]
        return m.item_emb.weight.detach().cpu().double().numpy()

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        m: EmbeddingNN = self.module_  # type: ignore[assignment]
        dev = self.device_
        numbers, tn = self._item_side()
        conts = torch.cat([numbers, tn], dim=1)
        return m.score_grid(torch.as_tensor(u, device=dev),
                            torch.arange(len(self.item_vocab_), device=dev),
                            torch.as_tensor(self.user_cats_[u], device=dev), conts)
