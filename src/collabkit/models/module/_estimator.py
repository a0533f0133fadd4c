"""ModuleRecommender: any ``nn.Module`` taking user and item index tensors, as a full model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from collabkit.errors import ConfigError, NotSupportedError
from collabkit.models._torch import TorchRecommender
from collabkit.models.capabilities import EmbeddingModel
from collabkit.models.module._module import CollabNN
from collabkit.models.module._spec import build_module, module_spec
from collabkit.models.nn._module import emb_size_rule
from collabkit.train.runner import EpochStats

__all__ = ["ModuleRecommender", "find_tables"]

_USER = ("user", "u_")
_ITEM = ("item", "i_", "movie")


def find_tables(module: nn.Module) -> tuple[nn.Embedding | None, nn.Embedding | None]:
    """The user and item factor tables of ``module``.

    A module may name them itself with ``collabkit_tables = {"users": "attr", "items":
    "attr"}``; otherwise the direct ``nn.Embedding`` children whose names start with ``user``
    (or ``u_``) and ``item`` (``i_``, ``movie``) and do not contain ``bias`` are used, as in
    the chapter (``user_factors``, ``item_factors``).
    """
    declared = getattr(module, "collabkit_tables", None)
    if isinstance(declared, dict):
        u, i = getattr(module, declared.get("users", ""), None), \
            getattr(module, declared.get("items", ""), None)
        return (u if isinstance(u, nn.Embedding) else None,
                i if isinstance(i, nn.Embedding) else None)
    user = item = None
    for name, child in module.named_children():
        low = name.lower()
        if not isinstance(child, nn.Embedding) or "bias" in low:
            continue
        if user is None and low.startswith(_USER):
            user = child
        elif item is None and low.startswith(_ITEM):
            item = child
    return user, item


class _Flat(nn.Module):
    """The user's module with its output flattened to one prediction per row."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        out = self.net(users, items)
        if not isinstance(out, torch.Tensor) or out.numel() != users.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(f"{type(self.net).__name__}.forward(users, items) must return one "
                              f"prediction per row: got {shape} for {users.shape[0]} rows")
        return out.reshape(-1)


class ModuleRecommender(TorchRecommender, EmbeddingModel):
    """Your own ``nn.Module`` trained and served as a full collabkit model (kind ``"module"``).

    ``collabkit.fit(train, model=MyNet(...))`` wraps ``MyNet`` in this class: fit with
    progress and history, ``predict``, ``recommend``, ``evaluate``, ``save``/``load``, and
    fold-in, ``similar_items`` and PCA when the module has user and item factor tables
    (see :func:`find_tables`).

    The module must be an ``nn.Module`` whose ``forward(users, items)`` takes two int64 index
    tensors of shape ``(batch,)`` (rows of the model's user and item vocabularies, so its
    tables need ``collabkit.emb_sizes(train)`` rows) and returns ``batch`` predicted ratings
    (``(batch,)`` or ``(batch, 1)``). Training uses a copy of it; ``model.network`` is the
    trained module. To be saved, its class must be importable (defined in a module, not typed
    into a session that the loading process will not have) and its constructor arguments
    known: decorate the class with :func:`collabkit.remember_args`, or keep each argument as
    an attribute of the same name. The weights go to safetensors and the class path and
    arguments to ``model.json``; nothing is pickled.

    Parameters
    ----------
    module : nn.Module, dict or None
        The network; a dict ``{"class": "pkg.mod:Class", "args": {...}}`` names one to build;
        None builds the chapter's :class:`CollabNN` sized to the data.
    epochs, lr, wd, batch_size, valid_frac
        The chapter's recipe by default: 5 epochs of one-cycle AdamW at 5e-3, weight decay
        0.1, batches of 64, 20 % of the rows held out for validation.
    optimizer : {"adamw", "sgd"}
    y_range, device, random_state, callback
        As in :class:`~collabkit.models.biased_mf._estimator.BiasedMF` (``y_range`` only
        sizes the default CollabNN).
    """

    kind = "module"

    def __init__(self, module: nn.Module | dict[str, Any] | None = None, *, epochs: int = 5,
                 lr: float = 5e-3, wd: float = 0.1, batch_size: int = 64,
                 valid_frac: float = 0.2, optimizer: str = "adamw",
                 y_range: str | tuple[float, float] | None = "auto", device: str = "auto",
                 random_state: int | None = None,
                 callback: Callable[[EpochStats], None] | None = None) -> None:
        self.module = module
        self.epochs = epochs
        self.lr = lr
        self.wd = wd
        self.batch_size = batch_size
        self.valid_frac = valid_frac
        self.optimizer = optimizer
        self.y_range = y_range
        self.device = device
        self.random_state = random_state
        self.callback = callback

    # ------------------------------------------------------------------ building
    def _validate(self) -> None:
        super()._validate()
        if not (self.module is None or isinstance(self.module, nn.Module | dict)):
            raise ConfigError(f"module must be an nn.Module (or None for the chapter's "
                              f"CollabNN), got {type(self.module).__name__}")

    @property
    def network(self) -> nn.Module:
        """The trained module (the user's class)."""
        self.check_fitted()
        net: nn.Module = self.module_.net  # type: ignore[assignment]
        return net

    def _make_net(self, generator: torch.Generator) -> nn.Module:
        if isinstance(self.module, nn.Module):
            import copy

            return copy.deepcopy(self.module)
        if isinstance(self.module, dict):
            return build_module(self.module)
        nu, ni = len(self.user_vocab_), len(self.item_vocab_)
        y_range = self._resolve_y_range() or (0.0, 5.5)
        net = CollabNN((nu, emb_size_rule(nu + 1)), (ni, emb_size_rule(ni + 1)), y_range)
        with torch.no_grad():
            for e in (net.user_factors, net.item_factors):
                e.weight.normal_(0.0, 0.01, generator=generator)
            for lin in net.layers:
                if isinstance(lin, nn.Linear):
                    bound = 1.0 / lin.in_features ** 0.5
                    lin.weight.uniform_(-bound, bound, generator=generator)
                    lin.bias.uniform_(-bound, bound, generator=generator)
        return net

    def _build_module(self, generator: torch.Generator) -> nn.Module:
        net = self._make_net(generator)
        name = type(net).__name__
        for side, table, n in zip(("user", "item"), find_tables(net),
                                  (len(self.user_vocab_), len(self.item_vocab_)), strict=True):
            if table is not None and table.num_embeddings < n:
                raise ConfigError(
                    f"{name}'s {side} table has {table.num_embeddings} rows but the training "
                    f"data has {n} {side}s; size it with collabkit.emb_sizes(train)")
        flat = _Flat(net)
        probe = torch.as_tensor([len(self.user_vocab_) - 1]), \
            torch.as_tensor([len(self.item_vocab_) - 1])
        try:
            with torch.no_grad():
                flat.eval()(*probe)
        except ConfigError:
            raise
        except (IndexError, RuntimeError, TypeError) as e:
            raise ConfigError(
                f"{name}.forward(users, items) failed on the last user and item index "
                f"({len(self.user_vocab_) - 1}, {len(self.item_vocab_) - 1}): "
                f"{str(e).splitlines()[0]}; its tables need collabkit.emb_sizes(train) rows "
                "and forward must take (users, items) index tensors") from None
        return flat.train()

    # ------------------------------------------------------------------ saving
    def _save_params(self) -> dict[str, Any]:
        """Constructor arguments for ``model.json``: the module as its class path and args."""
        params = {k: v for k, v in self.get_params().items() if k != "callback"}
        if isinstance(self.module, nn.Module):
            net = self.module_.net if hasattr(self, "module_") else self.module
            params["module"] = module_spec(net)  # type: ignore[arg-type]
        return params

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        dev = self.device_
        n_items = len(self.item_vocab_)
        items = torch.arange(n_items, device=dev)
        step = max(1, (1 << 18) // max(1, n_items))
        out = []
        for s in range(0, len(u), step):
            block = torch.as_tensor(u[s : s + step], device=dev)
            users = block.repeat_interleave(n_items)
            out.append(self.module_(users, items.repeat(len(block))).reshape(len(block), n_items))
        return torch.cat(out) if out else torch.zeros((0, n_items), device=dev)

    # ------------------------------------------------------------------ capabilities
    def _tables(self) -> tuple[nn.Embedding | None, nn.Embedding | None]:
        self.check_fitted()
        return find_tables(self.module_.net)  # type: ignore[arg-type]

    def user_embedding(self) -> nn.Embedding:
        """The module's user table; :class:`NotSupportedError` when it has none."""
        user, _ = self._tables()
        if user is None:
            raise NotSupportedError(
                f"fold-in is not supported by this ModuleRecommender (kind 'module'): "
                f"{type(self.module_.net).__name__} has no user embedding named user_* "
                "(declare it with collabkit_tables = {'users': ..., 'items': ...})")
        return user

    def forward_with_user_rows(self, x: torch.Tensor, rows: torch.Tensor,
                               items: torch.Tensor) -> torch.Tensor:
        """The network in eval mode with the user table lookup replaced by ``x[rows]``."""
        emb = self.user_embedding()
        handle = emb.register_forward_hook(lambda _mod, _inp, _out: x[rows])
        was_training = self.module_.training
        self.module_.eval()
        try:
            return self.module_(torch.zeros_like(rows), items).reshape(-1)
        finally:
            handle.remove()
            self.module_.train(was_training)

    def item_vectors(self) -> np.ndarray:
        """The module's item table as float64 ``(n_items, d)``."""
        _, item = self._tables()
        if item is None:
            raise NotSupportedError(
                f"this ModuleRecommender (kind 'module') has no item factors: "
                f"{type(self.module_.net).__name__} has no embedding named item_* (declare "
                "it with collabkit_tables = {'users': ..., 'items': ...})")
        return item.weight.detach().cpu().double().numpy()[: len(self.item_vocab_)]
