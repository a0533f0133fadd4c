"""Model files: one folder, ``weights.safetensors`` + ``model.json``; never pickle.

The folder is written under a temporary name beside the target and renamed into place, so a
crash or a full disk never leaves half a model where a model used to be.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from collabkit._version import __version__
from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError, ModelFileError

__all__ = ["save_model", "load_model", "FORMAT_VERSION"]

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
META = "model.json"
_NOT_SAVED = {"callback"}  # constructor arguments that are not configuration


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _item_meta_json(meta: pd.DataFrame | None) -> dict[str, list[Any]] | None:
    if meta is None:
        return None
    out: dict[str, list[Any]] = {}
    for col in meta.columns:
        s = meta[col]
        out[str(col)] = [None if pd.isna(x) else _jsonable(x) for x in s.tolist()]
    return out


def save_model(model: Any, path: str | os.PathLike[str]) -> str:
    """Save a fitted :class:`~collabkit.models.base.Recommender` to folder ``path``."""
    model._check_fitted()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "base.user_bias": torch.as_tensor(model.user_bias_base_),
        "base.item_bias": torch.as_tensor(model.item_bias_base_),
        "seen.indptr": torch.as_tensor(model.seen_indptr_),
        "seen.indices": torch.as_tensor(model.seen_indices_),
        "seen.ratings": torch.as_tensor(model.seen_ratings_),
        **model._state_tensors(),
    }
    params = {k: _jsonable(v) for k, v in model.get_params().items() if k not in _NOT_SAVED}
    meta = {
        "format_version": FORMAT_VERSION,
        "collabkit_version": __version__,
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
        with open(tmp / META, "w", encoding="utf-8") as f:
            json.dump(meta, f, allow_nan=False)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(target)


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be a model folder (missing, a symlink loop, ...), or None."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if os.path.islink(folder):
            return f"is a symbolic link to {os.readlink(folder)!r}, which does not exist"
        return ("does not exist; train one with `collabkit train --out DIR` or "
                "model.save(DIR)")
    except OSError as e:
        if e.errno == errno.ELOOP:
            return ("is a symbolic link loop (a link that points back to itself); point it "
                    "at the model folder")
        return f"cannot be read ({e.strerror})"
    return None if stat.S_ISDIR(st.st_mode) else "is a file, not a model folder"


def _read_meta(folder: Path) -> dict[str, Any]:
    problem = _folder_problem(folder)
    if problem is not None:
        raise ModelFileError(f"model folder {str(folder)!r} {problem}")
    missing = [n for n in (META, WEIGHTS) if not (folder / n).is_file()]
    if missing:
        raise ModelFileError(f"model folder {str(folder)!r} is incomplete: missing "
                             f"{', '.join(missing)}; save the model again")
    try:
        with open(folder / META, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{str(folder / META)!r} is not valid JSON ({e}); "
                             "the file is corrupt, save the model again") from None
    fmt = meta.get("format_version")
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        raise ModelFileError(
            f"{str(folder)!r} was saved by collabkit {meta.get('collabkit_version', '?')} in "
            f"model format {fmt!r}; this collabkit ({__version__}) reads format "
            f"{FORMAT_VERSION} and older. Upgrade collabkit to load it.")
    return meta


def _first_line(e: Exception) -> str:
    """torch's multi-line load errors as one line: the first mismatch it reports."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    detail = next((x for x in lines if x.startswith(("size mismatch", "Missing", "Unexpected"))),
                  lines[0] if lines else type(e).__name__)
    return detail.rstrip(".")


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a model saved by :func:`save_model`; needs no training data."""
    from collabkit.models.base import Recommender

    folder = Path(path)
    meta = _read_meta(folder)
    cls = Recommender._registry.get(meta.get("kind", ""))
    if cls is None:
        known = sorted(Recommender._registry)
        raise ModelFileError(f"{str(folder)!r} holds a model of kind {meta.get('kind')!r}, "
                             f"which this collabkit does not know ({known})")
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as e:  # safetensors raises its own error type for a corrupt header
        raise ModelFileError(f"{str(folder / WEIGHTS)!r} cannot be read ({e}); "
                             "the file is corrupt, save the model again") from None
    try:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        model = cls(**params)
        model.user_vocab_ = Vocabulary.from_json(meta["user_vocab"])
        model.item_vocab_ = Vocabulary.from_json(meta["item_vocab"])
        model.global_mean_ = float(meta["global_mean"])
        model.rating_range_ = tuple(float(x) for x in meta["rating_range"])
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
        model._load_state(tensors, meta.get("extra", {}))
    except (KeyError, TypeError, ValueError, RuntimeError, DataError) as e:
        raise ModelFileError(f"model folder {str(folder)!r} is damaged or inconsistent "
                             f"({_first_line(e)}); save the model again") from None
    return model
