"""The model folder on disk: what a save may replace, the writer lock, atomic file commits.

A model folder holds ``model.json`` (the commit record: it names the weights file) and one or
two ``weights-<token>.safetensors`` files, plus collabkit's lock file ``.collabkit.lock``. The
folder itself is never renamed or deleted: a save writes a new weights file, then atomically
replaces ``model.json``; that ``os.replace`` is the commit point. A reader therefore sees the
old or the new complete model, and a process killed at any moment leaves one complete model.

Only collabkit's own files are ever deleted: its temporary files (``.collabkit-tmp-<token>``) and
weights files that are neither the current nor the immediately previous one (a reader may
still be opening the previous one).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from collabkit.errors import ConfigError, ModelBusyError, ModelFileError

try:  # POSIX; flock locks are released by the kernel when the holder dies, even on kill -9
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["META", "LEGACY_WEIGHTS", "LOCK", "check_save_target", "is_model_meta", "commit_save"]

META = "model.json"
LEGACY_WEIGHTS = "weights.safetensors"  # the single weights file of folders from before 0.2
LOCK = ".collabkit.lock"
TMP_PREFIX = ".collabkit-tmp-"
TMP_RE = re.compile(r"\.collabkit-tmp-[0-9a-f]{32}(\.json)?")  # a save's temporary folder / file
WEIGHTS_RE = re.compile(r"weights(-[0-9a-f]{32})?\.safetensors")
_MODEL_KEYS = ("format_version", "collabkit_version", "kind")


def is_model_meta(obj: Any) -> bool:
    """Whether ``obj`` (parsed JSON) is the ``model.json`` of a collabkit model."""
    return isinstance(obj, dict) and all(k in obj for k in _MODEL_KEYS)


def _own_leftover(name: str) -> bool:
    """Files collabkit writes in a model folder other than ``model.json``."""
    return name == LOCK or any(r.fullmatch(name) for r in (TMP_RE, WEIGHTS_RE))


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _refusal(folder: Path) -> str | None:
    """Why a save may not write into existing folder ``folder``, or None when it may."""
    try:
        names = os.listdir(folder)
    except OSError as e:
        return f"is a folder collabkit cannot list ({e.strerror})"
    if META in names:
        if is_model_meta(_read_json(folder / META)):
            return None
        return (f"holds a {META} that is not a collabkit model's, so it is not a collabkit "
                "model folder and collabkit will not write into it")
    foreign = sorted(n for n in names if not _own_leftover(n))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return (f"is a folder that is not empty and is not a collabkit model folder (it holds "
                f"{shown}); collabkit replaces only a folder it saved a model in")
    return None


def check_save_target(path: str | os.PathLike[str], *, arg: str = "path") -> Path:
    """The real folder a save to ``path`` writes into; raise if a save must not go there.

    A save may go to a missing path, an empty folder, or a folder collabkit saved a model in
    (recognised by its ``model.json``), also through a symlink. It refuses a file, a non-empty
    folder that is not a collabkit model folder, the working directory, and a place it cannot
    write to. Nothing is created or changed; call it before a long training run.

    Parameters
    ----------
    path
        The folder to save to.
    arg
        How the caller's interface names ``path`` in messages: ``"path"`` in Python,
        ``"--out"`` on the command line.

    Raises
    ------
    ConfigError
        ``path`` names something a save must not replace.
    ModelFileError
        The folder (or the folder it would be created in) is not writable.
    """
    given = os.fspath(path)
    if not given:
        raise ConfigError(f"{arg} is empty; give the folder to save the model in")
    real = Path(os.path.realpath(given))
    shown = repr(given) if str(real) == os.path.abspath(given) else f"{given!r} (-> {str(real)!r})"
    what_to_do = f"give {arg} a new or empty folder, or one collabkit saved a model in"
    if real == Path(os.path.realpath(os.getcwd())):
        raise ConfigError(f"{arg} {shown} is the working directory, which a model save would "
                          f"fill with model files; {what_to_do}, e.g. {arg} models/my-model")
    if real.exists() and not real.is_dir():
        raise ConfigError(f"{arg} {shown} is an existing file, and collabkit will not replace "
                          f"it with a model folder; {what_to_do}")
    if real.is_dir():
        why = _refusal(real)
        if why is not None:
            raise ConfigError(f"{arg} {shown} {why}; {what_to_do}, e.g. {arg} {given}/model")
        if not os.access(real, os.W_OK | os.X_OK):
            kind = "model folder" if (real / META).exists() else "folder"
            raise ModelFileError(f"{arg} {shown} is a {kind} this user cannot write to; "
                                 f"make it writable or choose another folder for {arg}")
        return real
    ancestor = real.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{arg} {shown} cannot be created: {str(ancestor)!r} is a file; "
                          f"{what_to_do}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ModelFileError(f"{arg} {shown} cannot be created: this user cannot write to "
                             f"{str(ancestor)!r}; choose a writable place for {arg}")
    return real


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (non-blocking); raise ModelBusyError if taken."""
    if fcntl is None:  # pragma: no cover - no flock: saves are atomic but not mutually excluded
        yield
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            who = f"another process (pid {holder})" if holder.isdigit() else "another process"
            raise ModelBusyError(f"model folder {str(folder)!r} is being saved by {who}; try "
                                 "again when that save finishes") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync(path: Path, directory: bool = False) -> None:
    if directory and not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def weights_named_by(meta: dict[str, Any]) -> str:
    """The weights file a parsed ``model.json`` refers to (older folders: the legacy name)."""
    name = meta.get("weights", LEGACY_WEIGHTS)
    if not isinstance(name, str) or WEIGHTS_RE.fullmatch(name) is None:
        raise ValueError(f"field 'weights' is {name!r}, not a collabkit weights file name")
    return name


def commit_save(folder: Path, write_weights: Callable[[Path], None], meta: dict[str, Any],
                arg: str = "path") -> None:
    """Write a model into ``folder`` (created if missing) under the lock, atomically.

    ``write_weights(tmp_path)`` writes the safetensors file; ``meta`` gets its ``weights`` key
    here. Afterwards collabkit's own stale files in the folder are deleted, nothing else.
    """
    folder.mkdir(parents=True, exist_ok=True)  # honours the umask: 0755 under umask 022
    with writer_lock(folder):
        why = _refusal(folder)  # re-checked under the lock: something may have moved in
        if why is not None:
            raise ConfigError(f"{arg} {str(folder)!r} {why}; give {arg} a new or empty folder")
        old = _read_json(folder / META)
        previous = None
        if is_model_meta(old):
            with contextlib.suppress(ValueError):
                previous = weights_named_by(old)
        token = uuid.uuid4().hex
        weights = f"weights-{token}.safetensors"
        # safetensors writes through its own hidden temporary file with mode 0600: let it do
        # so inside a temporary folder of ours, then give the file the mode the umask implies
        tmp_dir, tmp_m = folder / f"{TMP_PREFIX}{token}", folder / f"{TMP_PREFIX}{token}.json"
        committed = False
        try:
            os.mkdir(tmp_dir)
            tmp_w = tmp_dir / LEGACY_WEIGHTS
            write_weights(tmp_w)
            os.chmod(tmp_w, stat.S_IMODE(os.stat(tmp_dir).st_mode) & 0o666)
            _fsync(tmp_w)
            os.replace(tmp_w, folder / weights)
            _fsync(folder, directory=True)
            with open(tmp_m, "w", encoding="utf-8") as f:
                json.dump({**meta, "weights": weights}, f, allow_nan=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_m, folder / META)  # the commit point
            committed = True
            _fsync(folder, directory=True)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            for leftover in (tmp_m,) if committed else (tmp_m, folder / weights):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        clean_leftovers(folder, keep={weights, previous})


def clean_leftovers(folder: Path, keep: set[str | None]) -> list[str]:
    """Delete collabkit's temporary files and weights files not in ``keep``; return names.

    Call with the writer lock held: then no temporary file belongs to a running save.
    """
    removed = []
    for name in os.listdir(folder):
        path = folder / name
        try:
            if TMP_RE.fullmatch(name) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif TMP_RE.fullmatch(name) or (WEIGHTS_RE.fullmatch(name) and name not in keep):
                path.unlink()  # a folder of that name is not ours: unlink refuses it
            else:
                continue
        except OSError:
            continue
        removed.append(name)
    return removed
