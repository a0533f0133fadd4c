"""Saving and loading models: a model's state mapped to and from a model folder.

The folder format (atomic saves, the version gate, safetensors + JSON, never pickle) is
:mod:`collabkit.io`; this module turns a fitted :class:`~collabkit.models.base.Recommender`
into that state and back, finding the class of a saved kind in
:mod:`collabkit.models.registry`. The device is a runtime choice, resolved at load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError, ModelFileError
from collabkit.io import (
    InvalidModelFile,
    check_save_target,
    jsonable,
    read_model_dir,
    validate_model_dir,
    write_model_dir,
)
from collabkit.models import registry

if TYPE_CHECKING:
    from collabkit.models.base import Recommender

__all__ = ["save_model", "load_model", "check_save_target"]

_NOT_SAVED = {"callback"}  # constructor arguments that are not configuration


def _item_meta_json(meta: pd.DataFrame | None) -> dict[str, list[Any]] | None:
    if meta is None:
        return None
    out: dict[str, list[Any]] = {}
    for col in meta.columns:
        s = meta[col]
        out[str(col)] = [None if pd.isna(x) else jsonable(x) for x in s.tolist()]
    return out


def save_model(model: Recommender, path: str | os.PathLike[str], *, arg: str = "path") -> str:
    """Save a fitted :class:`~collabkit.models.base.Recommender` to folder ``path``.

    ``path`` may be missing, an empty folder, or a folder collabkit saved a model in (also
    through a symlink); the save replaces that model atomically. Anything else (a file, a
    folder holding other things, the working directory) is refused before anything is written,
    see :func:`check_save_target`. ``arg`` names ``path`` in error messages (the CLI passes
    ``"--out"``).

    Raises
    ------
    ConfigError
        ``path`` is something a save must not replace.
    ModelBusyError
        Another process is saving to the same folder right now.
    ModelFileError
        The folder is not writable.
    """
    model.check_fitted()
    folder = check_save_target(path, arg=arg)
    tensors = {
        "base.user_bias": torch.as_tensor(model.user_bias_base_),
        "base.item_bias": torch.as_tensor(model.item_bias_base_),
        "seen.indptr": torch.as_tensor(model.seen_indptr_),
        "seen.indices": torch.as_tensor(model.seen_indices_),
        "seen.ratings": torch.as_tensor(model.seen_ratings_),
        **model._state_tensors(),
    }
    saved = getattr(model, "_save_params", None)  # kind "module": the module as JSON
    raw = saved() if callable(saved) else model.get_params()
    params = {k: jsonable(v) for k, v in raw.items() if k not in _NOT_SAVED}
    meta = {
        "kind": model.kind,
        "params": params,
        "global_mean": model.global_mean_,
        "rating_range": list(model.rating_range_),
        "user_vocab": model.user_vocab_.to_json(),
        "item_vocab": model.item_vocab_.to_json(),
        "item_meta": _item_meta_json(model.item_meta_),
        "data_fingerprint": model.data_fingerprint_,
        "n_train": model.n_train_,
        "extra": model._extra_state(),
    }
    write_model_dir(folder, meta, tensors, arg=arg)
    return os.fspath(path)


def load_model(path: str | os.PathLike[str], *, device: str | None = None) -> Any:
    """Load a model saved by :func:`save_model`; needs no training data.

    Safe while another process saves to the same folder: the result is the old or the new
    model, never a mix. The device is chosen at load time: ``device=None`` keeps the saved
    one when this machine has it and otherwise uses ``"auto"`` (CUDA when present, else the
    CPU), so a model trained on a GPU loads on a CPU-only machine.

    Raises
    ------
    ModelFileError
        The folder is missing, incomplete, corrupt, inconsistent or from a newer collabkit;
        the message names the file and the field at fault.
    """
    folder = Path(path)
    meta, tensors, weights = read_model_dir(folder)
    kind = meta.get("kind")
    cls = registry.find(kind) if isinstance(kind, str) else None
    if cls is None:
        known = registry.kinds()
        raise ModelFileError(f"{str(folder)!r} holds a model of kind {meta.get('kind')!r}, "
                             f"which this collabkit does not know ({known})")
    try:
        validate_model_dir(meta, tensors, weights)
        params = _runtime_params(meta["params"], device)
        extra = meta.get("extra", {})
        for member in extra.get("members", []) if isinstance(extra, dict) else []:
            member["params"] = _runtime_params(member["params"], device)
        model = cls(**params)
        model.user_vocab_ = Vocabulary.from_json(meta["user_vocab"])
        model.item_vocab_ = Vocabulary.from_json(meta["item_vocab"])
        model.global_mean_ = float(meta["global_mean"])
        lo, hi = meta["rating_range"]  # two numbers (checked by io)
        model.rating_range_ = (float(lo), float(hi))
        model.user_bias_base_ = tensors["base.user_bias"].numpy()
        model.item_bias_base_ = tensors["base.item_bias"].numpy()
        model.seen_indptr_ = tensors["seen.indptr"].numpy()
        model.seen_indices_ = tensors["seen.indices"].numpy()
        sr = tensors.get("seen.ratings")  # absent in files from before 0.1.0's release
        model.seen_ratings_ = None if sr is None else sr.numpy()
        im = meta.get("item_meta")
        model.item_meta_ = None if im is None else pd.DataFrame(
            im, index=pd.Index(model.item_vocab_.all_ids, name="item"))
        model.data_fingerprint_ = meta.get("data_fingerprint")
        model.n_train_ = meta.get("n_train")
        model._load_state(tensors, extra)
    except InvalidModelFile as e:
        raise ModelFileError(f"{str(folder / e.file)!r}: {e.message}; the file was edited or "
                             "is corrupt, save the model again") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, DataError) as e:
        raise ModelFileError(f"model folder {str(folder)!r} is damaged or inconsistent "
                             f"({_first_line(e)}); "
                             "save the model again") from None
    return model


def _usable_device(spec: Any) -> bool:
    """Whether torch device ``spec`` exists on this machine (``"auto"``/None always does)."""
    if spec is None or spec == "auto":
        return True
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        return False
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    if dev.type == "mps":
        return bool(torch.backends.mps.is_available())
    return False


def _runtime_params(saved: dict[str, Any], device: str | None) -> dict[str, Any]:
    """Constructor arguments from ``model.json``, with the device resolved for this machine."""
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    if "device" in params:
        if device is not None:
            params["device"] = device
        elif not _usable_device(params["device"]):
            params["device"] = "auto"  # saved on a GPU this machine lacks
    return params


def _first_line(e: Exception) -> str:
    """torch's multi-line load errors as one line: the first mismatch it reports."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    detail = next((x for x in lines if x.startswith(("size mismatch", "Missing", "Unexpected"))),
                  lines[0] if lines else type(e).__name__)
    return detail.rstrip(".")
