"""The model-folder format: ``model.json`` + a ``weights-<token>.safetensors``; never pickle.

A save never replaces anything but a collabkit model folder, and replaces one atomically: it
writes a new weights file, then swaps ``model.json`` (which names it) into place. Readers see
the old or the new complete model; a crash at any moment leaves one complete model; two
concurrent saves to one folder get a clear "busy" error. See :mod:`collabkit._modelfolder`.

This is the format layer only (write/read a folder, the version gate, safetensors + JSON,
validation of what was read); it imports no model. :mod:`collabkit.models.persist` maps a
model to and from that state (``save_model``/``load_model``).
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
import torch
from safetensors.torch import load_file, save_file

from collabkit._modelfolder import META, check_save_target, commit_save, weights_named_by
from collabkit._version import __version__
from collabkit.errors import ModelFileError

__all__ = ["FORMAT_VERSION", "InvalidModelFile", "check_save_target", "jsonable",
           "read_model_dir", "validate_model_dir", "write_model_dir"]

# 2: model.json names its weights file (``weights-<token>.safetensors``); 1: ``weights.safetensors``
FORMAT_VERSION = 2
_LOAD_ATTEMPTS = 20  # a concurrent save can retire the weights file between two reads


def jsonable(v: Any) -> Any:
    """``v`` as a JSON value: tuples as lists, numpy scalars as Python, inf/nan as text."""
    if isinstance(v, tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def write_model_dir(folder: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor], *,
                    arg: str = "path") -> None:
    """Commit ``meta`` (plus the format fields) and ``tensors`` to the checked ``folder``.

    ``folder`` comes from :func:`check_save_target`; the save is atomic and guarded against
    concurrent saves (:func:`collabkit._modelfolder.commit_save`). Tensors are written with
    safetensors from contiguous CPU copies; ``meta`` must already be JSON (see
    :func:`jsonable`).
    """
    meta = {"format_version": FORMAT_VERSION, "collabkit_version": __version__, **meta}
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    commit_save(folder, lambda tmp: save_file(contiguous, str(tmp)), meta, arg=arg)


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


def read_model_dir(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
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


class InvalidModelFile(Exception):
    """A field or tensor of a model folder fails a check; ``file`` names the file at fault."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(message)
        self.file, self.message = file, message


_Invalid = InvalidModelFile


def _finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def validate_model_dir(meta: dict[str, Any], tensors: dict[str, torch.Tensor],
                       weights: str) -> None:
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
