"""Launching a job and ending it (issue 15): ``--nproc N`` on this machine, the rank side of
``torchrun``, rank 0's one save, and the one error that crosses ranks.

``collabkit train --nproc N ...`` starts ``N`` copies of ``python -m collabkit train ...``
(without ``--nproc``) through torch's own elastic launcher, the engine of ``torchrun
--standalone``: each child finds ``RANK``, ``WORLD_SIZE`` and the rendezvous in its
environment, exactly as under ``torchrun``. When a rank fails, the launcher stops the others
and this process raises one :class:`~collabkit.errors.DistributedError` naming the rank and
its own message (which the failed rank wrote to torchelastic's error file instead of
printing it), so the CLI prints one line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import uuid
from typing import Any

import torch.distributed as dist

from collabkit.distributed.group import World
from collabkit.errors import DistributedError

__all__ = ["LAUNCHED_ENV", "in_job", "launched_child", "launch_local", "write_error",
           "save_on_rank0", "strip_flag"]

#: set in the children of ``--nproc``: they report errors to the launcher, not the terminal
LAUNCHED_ENV = "COLLABKIT_LAUNCHED"


def in_job() -> bool:
    """True in a rank of a job of 2 or more (torchrun's or ``--nproc``'s environment)."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def launched_child() -> bool:
    """True in a rank started by ``--nproc`` (its errors go to the launcher)."""
    return os.environ.get(LAUNCHED_ENV) == "1"


def write_error(message: str) -> bool:
    """Leave ``message`` in torchelastic's error file of this rank, when it has one (under
    ``torchrun`` and ``--nproc``): the launcher reports it. Returns whether it did."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return False
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"message": message, "timestamp": int(time.time())}, fh)
    return True


def strip_flag(args: list[str], flag: str) -> list[str]:
    """``args`` without ``flag VALUE`` / ``flag=VALUE`` (the children must not launch again)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def launch_local(nproc: int, args: list[str], *, flag: str = "--nproc") -> None:
    """Run ``python -m collabkit ARGS`` as ``nproc`` ranks on this machine and wait.

    Raises
    ------
    DistributedError
        When any rank fails: names the first rank that failed and its message (or the
        signal that killed it); the other ranks were stopped and nothing was saved.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default for several ranks
    os.environ[LAUNCHED_ENV] = "1"
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its failure report is the traceback we replace
    try:
        elastic_launch(config, sys.executable)("-m", "collabkit", *args)
    except ChildFailedError as e:
        rank, failure = _root_cause(e.failures, e.get_first_failure())
        raise DistributedError(_failure_message(rank, nproc, failure, flag),
                               exit_code=failure.exitcode if failure.exitcode > 0 else None
                               ) from None
    finally:
        quiet.setLevel(level)
        os.environ.pop(LAUNCHED_ENV, None)


def _root_cause(failures: dict[int, Any], first: tuple[int, Any]) -> tuple[int, Any]:
    """The failure to report: a rank killed by a signal (other than the SIGTERM with which
    the launcher stops the rest) before the errors of the ranks that lost their peer because
    of it (gloo's "connection closed" as an exit code, or a C++ ``terminate`` as SIGABRT),
    else the first one."""
    killed = sorted((-f.exitcode == signal.SIGABRT, r) for r, f in failures.items()
                    if f.exitcode < 0 and -f.exitcode != signal.SIGTERM)
    return (killed[0][1], failures[killed[0][1]]) if killed else first


def _failure_message(rank: int, nproc: int, failure: Any, flag: str) -> str:
    msg = failure.message
    if isinstance(msg, dict):  # torchelastic's own @record format
        msg = msg.get("message", "")
    where = f"rank {rank} of {nproc} ({flag} {nproc})"
    if failure.exitcode < 0:
        return (f"{where} was killed by {failure.signal_name()}; the other ranks were stopped "
                "and no model was saved")
    if msg and not str(msg).startswith("To enable traceback"):
        return f"{where}: {msg}"
    return (f"{where} exited with code {failure.exitcode}; the other ranks were stopped and "
            "no model was saved")


def save_on_rank0(model: Any, path: str, w: World, *, arg: str = "path") -> str:
    """Save ``model`` once: every rank waits at a barrier (all finished training), rank 0
    saves atomically (:func:`~collabkit.models.persist.save_model`), a second barrier lets
    no rank leave before the folder is complete. Returns the folder's path on every rank."""
    from collabkit.models.persist import save_model

    if w.distributed:
        dist.barrier()
    out = save_model(model, path, arg=arg) if w.is_main else os.fspath(path)
    if w.distributed:
        dist.barrier()
    return out
