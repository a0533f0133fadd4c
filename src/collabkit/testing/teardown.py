"""Repeated multi-rank runs that each end through a normal interpreter shutdown (issue 15).

``python -m collabkit.testing.teardown RUNS SIZE`` imports torch once, then for each run
forks ``SIZE`` rank processes that join a gloo group, take a few DDP steps, leave through
:func:`collabkit.distributed.group.shutdown` and exit the way a ``torchrun`` rank does: by
returning to the top of the program (``SystemExit``), so the interpreter finalises and torch's
C++ objects are destroyed. That is where ``torchrun`` ranks aborted with SIGABRT ("terminate
called without an active exception") in 4 of 10 runs before the shutdown order was fixed.
Forking from a process that only imported torch saves one torch import per rank; a
multiprocessing child would leave through ``os._exit`` and skip the shutdown under test.

Prints one JSON object: every rank's exit status per run (0, or ``-SIGNAL``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  (DDP's first construction imports it, and sympy: ~1 s)
import torch.distributed as dist  # noqa: F401  (imported once, before the ranks fork)
from torch.nn.parallel import DistributedDataParallel

from collabkit.distributed.group import shutdown, start


def _rank(rank: int, size: int, init: str) -> None:
    torch.set_num_threads(1)
    start(torch.device("cpu"), init_method=init, rank=rank, size=size, timeout_s=60.0)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Embedding(50, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    for _ in range(3):
        loss = model(torch.randint(0, 50, (16,))).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    shutdown(model, opt)


def _status(raw: int) -> int:
    return -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)


def main(runs: int, size: int) -> dict[str, list[list[int]]]:
    exits: list[list[int]] = []
    for _ in range(runs):
        tmp = tempfile.mkdtemp(prefix="collabkit-teardown-")  # no context: ranks inherit it
        init = Path(tmp, "rendezvous").as_uri()
        pids = []
        for rank in range(size):
            pid = os.fork()
            if pid == 0:  # the rank: work, then leave like any program does
                try:
                    _rank(rank, size, init)
                except BaseException:
                    sys.exit(1)
                sys.exit(0)
            pids.append(pid)
        exits.append([_status(os.waitpid(pid, 0)[1]) for pid in pids])
        shutil.rmtree(tmp, ignore_errors=True)
    return {"exits": exits}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
