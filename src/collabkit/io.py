"""Model files: one folder, ``model.json`` + a ``weights-<token>.safetensors``; never pickle.

A save never replaces anything but a collabkit model folder, and replaces one atomically: it
writes a new weights file, then swaps ``model.json`` (which names it) into place. Readers see
the old or the new complete model; a crash at any moment leaves one complete model; two
concurrent saves to one folder get a clear "busy" error. See :mod:`collabkit._modelfolder`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from collabkit._modelfolder import META, check_save_target, commit_save, weights_named_by
from collabkit._version import __version__
from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError, ModelFileError

__all__ = ["save_model", "load_model", "check_save_target", "FORMAT_VERSION"]

# 2: model.json names its weights file (``weights-<token>.safetensors``); 1: ``weights.safetensors``
FORMAT_VERSION = 2
_NOT_SAVED = {"callback"}  # constructor arguments that are not configuration
_LOAD_ATTEMPTS = 20  # a concurrent save can retire the weights file between two reads


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


def save_model(model: Any, path: str | os.PathLike[str], *, arg: str = "path") -> str:
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
    model._check_fitted()
    folder = check_save_target(path, arg=arg)
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
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    commit_save(folder, lambda tmp: save_file(contiguous, str(tmp)), meta, arg=arg)
    return os.fspath(path)


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
    try:
        with open(folder / META, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ModelFileError(f"model folder {str(folder)!r} is incomplete: missing {META}; "
                             "save the model again") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{str(folder / META)!r} is not valid JSON ({e}); "
                             "the file is corrupt, save the model again") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{str(folder / META)!r} is not a collabkit model description "
                             "(not a JSON object); save the model again")
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


def _read_consistent(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """``model.json`` and the tensors of the weights file it names, read as one snapshot."""
    tried: set[str] = set()
    for _ in range(_LOAD_ATTEMPTS):
        meta = _read_meta(folder)
        try:
            weights = weights_named_by(meta)
        except ValueError as e:
            raise ModelFileError(f"{str(folder / META)!r}: {e}; the file was edited or is "
                                 "corrupt, save the model again") from None
        try:
            return meta, load_file(str(folder / weights)), weights
        except Exception as e:  # safetensors has its own error type, also for a missing file
            if (folder / weights).exists():
                raise ModelFileError(f"{str(folder / weights)!r} cannot be read ({e}); "
                                     "the file is corrupt, save the model again") from None
        if weights in tried:  # named twice and absent both times: not a concurrent save
            raise ModelFileError(f"model folder {str(folder)!r} is incomplete: missing "
                                 f"{weights}; save the model again")
        tried.add(weights)  # retired by a save that committed meanwhile: read model.json again
        time.sleep(0.001 * len(tried))
    raise ModelFileError(f"model folder {str(folder)!r} was replaced {_LOAD_ATTEMPTS} times "
                         "while it was being read; try again")


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
    from collabkit.models import registry

    folder = Path(path)
    meta, tensors, weights = _read_consistent(folder)
    kind = meta.get("kind")
    cls = registry.find(kind) if isinstance(kind, str) else None
    if cls is None:
        known = registry.kinds()
        raise ModelFileError(f"{str(folder)!r} holds a model of kind {meta.get('kind')!r}, "
                             f"which this collabkit does not know ({known})")
    try:
        _validate(meta, tensors, weights)
        params = _runtime_params(meta["params"], device)
        extra = meta.get("extra", {})
        for member in extra.get("members", []) if isinstance(extra, dict) else []:
            member["params"] = _runtime_params(member["params"], device)
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
        model._load_state(tensors, extra)
    except _Invalid as e:
        raise ModelFileError(f"{str(folder / e.file)!r}: {e.message}; the file was edited or "
                             "is corrupt, save the model again") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, DataError) as e:
        raise ModelFileError(f"model folder {str(folder)!r} is damaged or inconsistent "
                             f"({_first_line(e)}); save the model again") from None
    return model


class _Invalid(Exception):
    def __init__(self, file: str, message: str) -> None:
        super().__init__(message)
        self.file, self.message = file, message


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


def _finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _validate(meta: dict[str, Any], tensors: dict[str, torch.Tensor], weights: str) -> None:
    """Check what was read before it is used: every score depends on these fields."""
    rr = meta.get("rating_range")
    if not (isinstance(rr, list) and len(rr) == 2 and all(map(_finite_number, rr))
            and rr[0] < rr[1]):
        raise _Invalid(META, f"field rating_range is {rr!r}; expected [low, high] with "
                             "finite low < high")
    if not _finite_number(meta.get("global_mean")):
        raise _Invalid(META, f"field global_mean is {meta.get('global_mean')!r}; expected a "
                             "finite number")
    if not isinstance(meta.get("params"), dict):
        raise _Invalid(META, "field params is not a JSON object")
    for j, member in enumerate((meta.get("extra") or {}).get("members", [])):
        mrr = member.get("rating_range") if isinstance(member, dict) else None
        if not (isinstance(mrr, list) and len(mrr) == 2 and all(map(_finite_number, mrr))
                and mrr[0] < mrr[1]):
            raise _Invalid(META, f"field extra.members[{j}].rating_range is {mrr!r}; expected "
                                 "[low, high] with finite low < high")
    sizes = {}
    for side in ("user", "item"):
        ids = (meta.get(f"{side}_vocab") or {}).get("ids")
        if not isinstance(ids, list):
            raise _Invalid(META, f"field {side}_vocab has no list of ids")
        sizes[side] = len(ids)
    missing = [k for k in ("base.user_bias", "base.item_bias", "seen.indptr", "seen.indices")
               if k not in tensors]
    if missing:
        raise _Invalid(weights, f"tensor {missing[0]} is missing")
    for side in ("user", "item"):  # numpy, not torch: no thread pool for a few checks
        bias = tensors[f"base.{side}_bias"].numpy()
        if bias.shape != (sizes[side],):
            raise _Invalid(weights, f"tensor base.{side}_bias has shape {bias.shape} but "
                                    f"{META} field {side}_vocab has {sizes[side]} ids")
        if not np.isfinite(bias).all():
            raise _Invalid(weights, f"tensor base.{side}_bias holds non-finite values")
    indptr, indices = tensors["seen.indptr"].numpy(), tensors["seen.indices"].numpy()
    n_seen = indices.shape[0] if indices.ndim == 1 else -1
    if (indptr.ndim != 1 or indptr.shape[0] != sizes["user"] + 1 or indptr[0] != 0
            or indptr[-1] != n_seen or (indptr[1:] < indptr[:-1]).any()):
        raise _Invalid(weights, f"tensors seen.indptr/seen.indices do not describe the rated "
                                f"items of the {sizes['user']} users in {META}")
    if n_seen and (indices.min() < 0 or indices.max() >= sizes["item"]):
        raise _Invalid(weights, f"tensor seen.indices refers to items outside the "
                                f"{sizes['item']} of {META} field item_vocab")
    sr = tensors.get("seen.ratings")
    if sr is not None and tuple(sr.shape) != (n_seen,):
        raise _Invalid(weights, f"tensor seen.ratings has shape {tuple(sr.shape)}, expected "
                                f"({n_seen},) like seen.indices")
