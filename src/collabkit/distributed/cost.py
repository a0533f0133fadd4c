r"""The planner: per-rank memory and bytes moved for every tier, the tier to use, and a clear
refusal when a run cannot fit (issue 15).

Arithmetic, not measurement (the formulas of ``../shared/research/distributed.md`` §3), for
a biased factor model with ``k`` factors in float32. With :math:`U, I` users and items,
:math:`n` ratings, :math:`N` ranks, a global batch :math:`B` and :math:`r = 4(k+1)` bytes per
table row (factors and bias):

* tables :math:`T = (U + I)\,r`; ratings in memory :math:`D = 20\,n` (two int64 indices and
  a float32 rating per row, as :class:`~collabkit.data.interactions.Interactions` holds them);
* ``one-device``: :math:`T(2 + s) + D` (weights, dense gradient, optimizer state :math:`s`:
  2 for AdamW, 1 for Adagrad, 0 for SGD); moves nothing;
* ``replicate`` (DDP, dense): the same on every rank (each holds every row). Each step
  all-reduces every gradient: a payload of :math:`T`, :math:`2T(N-1)/N` on the wire (ring);
* ``replicate-sparse``: :math:`T(1 + s) + D` plus the step's rows. Each rank all-gathers its
  :math:`B/N` rows of each table (values and an int64 index per row, factors and bias apart):
  a payload of :math:`2(B/N)(4k + 8 + 4 + 8)` and every rank *receives* :math:`N` times that,
  whatever :math:`N` is;
* ``rowwise``: :math:`(T(2 + s) + D)/N`. Per step each rank sends ids and receives rows for
  its lookups owned elsewhere, then sends their gradients back: :math:`(B/N)\,l\,(8 + 2r)
  (N-1)/N`, with :math:`l = 1` lookup per rating when the ratings are split by user range
  (part 2: only item rows cross ranks), 2 otherwise. With the item counts known, the
  expected *distinct* items of a rank's batch part replace :math:`(B/N)\,l` (each is fetched
  once per step; :mod:`~collabkit.distributed.rowwise_cost`).

At 1B ratings (:math:`U = 10^8, I = 10^7, k = 64`) the tables are 26 GB + 2.6 GB.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from collabkit.errors import ConfigError

__all__ = ["Problem", "Estimate", "TIERS", "estimate", "estimates", "choose", "check_fits",
           "default_memory_per_rank", "parse_bytes", "human"]

#: every tier the planner knows, in order of preference at equal fit
TIERS = ("one-device", "replicate", "replicate-sparse", "rowwise")
_STATE = {"adamw": 2, "adam": 2, "adagrad": 1, "sgd": 0}
_BYTES_PER_RATING = 20


@dataclass(frozen=True)
class Problem:
    """The size of a run: ratings, users, items, factors, ranks, global batch, optimizer."""

    n_ratings: int
    n_users: int
    n_items: int
    k: int
    world: int = 1
    batch_size: int = 1024
    optimizer: str = "adamw"
    user_aligned: bool = True
    #: expected distinct items in one rank's part of a batch, when the item counts are known
    #: (:func:`~collabkit.distributed.rowwise_cost.distinct_items_per_step`): the row-wise
    #: tier fetches each once per step, so this replaces one lookup per rating
    distinct_items_per_step: float | None = None

    @property
    def row_bytes(self) -> int:
        return 4 * (self.k + 1)

    @property
    def table_bytes(self) -> int:
        return (self.n_users + self.n_items) * self.row_bytes

    @property
    def data_bytes(self) -> int:
        return self.n_ratings * _BYTES_PER_RATING

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.n_ratings / self.batch_size))


@dataclass(frozen=True)
class Estimate:
    """One tier's prediction: bytes per rank in memory, bytes each rank contributes to the
    collectives per step (``payload_per_step``, what an instrumented collective counts), bytes
    on the wire per rank per step and per epoch (``wire_*``)."""

    tier: str
    world: int
    memory_per_rank: int
    payload_per_step: int
    wire_per_step: int
    wire_per_epoch: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _state(p: Problem, sparse: bool) -> int:
    opt = p.optimizer if not sparse or p.optimizer in ("sgd", "adagrad") else "adagrad"
    return _STATE.get(opt, 2)


def estimate(tier: str, p: Problem) -> Estimate:
    """The prediction for ``tier`` (one of :data:`TIERS`) on problem ``p``."""
    T, D, n, b = p.table_bytes, p.data_bytes, max(1, p.world), p.batch_size
    steps, local = p.steps_per_epoch, math.ceil(p.batch_size / max(1, p.world))
    if tier == "one-device":
        mem, pay, wire = T * (2 + _state(p, False)) + D, 0, 0
        note = "everything on one device; nothing moves"
        n = 1
    elif tier == "replicate":
        mem = T * (2 + _state(p, False)) + D
        pay = T
        wire = 0 if n == 1 else 2 * T * (n - 1) // n
        note = "a table-sized all-reduce every step"
    elif tier == "replicate-sparse":
        per_row = 2 * ((4 * p.k + 8) + (4 + 8))  # user and item: factor row, bias row, ids
        mem = T * (1 + _state(p, True)) + D + b * per_row
        pay = local * per_row
        wire = 0 if n == 1 else (n - 1) * pay  # every rank receives every other rank's rows
        note = "touched rows only, all-gathered (gloo; SGD or Adagrad, not AdamW)"
    elif tier == "rowwise":
        mem = (T * (2 + _state(p, False)) + D) // n
        lookups = 1 if p.user_aligned else 2
        rows = (p.distinct_items_per_step if p.user_aligned and p.distinct_items_per_step
                is not None else local * lookups)
        pay = 0 if n == 1 else int(rows * (8 + 2 * p.row_bytes) * (n - 1) / n)
        wire = pay
        note = "rows live on their owner rank; ids and rows cross by all-to-all"
    else:
        raise ConfigError(f"unknown tier {tier!r}; the planner knows {', '.join(TIERS)}")
    return Estimate(tier, n, int(mem), int(pay), int(wire), int(wire * steps), note)


def estimates(p: Problem) -> list[Estimate]:
    """Every tier's prediction (``one-device`` at world 1, the others at ``p.world``)."""
    return [estimate(t, p) for t in TIERS]


def choose(p: Problem, memory_per_rank: int) -> Estimate:
    """The tier to use: of those whose memory per rank fits ``memory_per_rank``, the one that
    moves the fewest bytes per epoch (one device first when ``p.world`` is 1)."""
    fits = [e for e in estimates(p) if e.memory_per_rank <= memory_per_rank
            and (e.tier != "one-device" or p.world == 1)]
    if not fits:
        raise ConfigError(_no_fit(p, memory_per_rank))
    return min(fits, key=lambda e: (e.wire_per_epoch, TIERS.index(e.tier)))


def check_fits(tier: str, p: Problem, memory_per_rank: int, *,
               flag: str = "--memory-per-rank") -> Estimate:
    """``tier``'s estimate, or a :class:`ConfigError` naming the tier that would fit."""
    est = estimate(tier, p)
    if est.memory_per_rank <= memory_per_rank:
        return est
    fits = [e for e in estimates(p) if e.memory_per_rank <= memory_per_rank
            and e.tier != tier and (e.tier != "one-device" or p.world == 1)]
    head = (f"the {tier} tier needs {human(est.memory_per_rank)} per rank at {p.world} "
            f"rank(s), over {flag} {human(memory_per_rank)}")
    if fits:
        best = min(fits, key=lambda e: (e.wire_per_epoch, TIERS.index(e.tier)))
        raise ConfigError(f"{head}; the {best.tier} tier would fit "
                          f"({human(best.memory_per_rank)} per rank): use --tier {best.tier}")
    raise ConfigError(f"{head}; {_no_fit(p, memory_per_rank)}")


def _no_fit(p: Problem, budget: int) -> str:
    one = estimate("rowwise", Problem(**{**asdict(p), "world": 1})).memory_per_rank
    need = max(1, math.ceil(one / max(1, budget)))
    return (f"no tier fits {human(budget)} per rank at {p.world} rank(s); the rowwise tier "
            f"would fit with {need} or more ranks (--nproc, or more machines)")


def default_memory_per_rank(local_ranks: int = 1) -> int:
    """This machine's memory shared by its ``local_ranks`` ranks: the GPU's when CUDA is
    present, else the physical memory."""
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(0).total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total // max(1, local_ranks))


_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
          "GB": 10**9, "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
          "TIB": 2**40}


def parse_bytes(text: str, *, flag: str = "--memory-per-rank") -> int:
    """``"16G"`` or ``"16GB"`` (10^9), ``"16GiB"`` (2^30), ``"512M"``, ``"2e9"`` -> bytes;
    anything else is refused naming ``flag``."""
    s = text.strip().upper()
    num = s.rstrip("KMGTIB")
    unit = s[len(num):]
    try:
        value = float(num) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ConfigError(f"{flag} must be a size like 16G, 512M or 2000000000, got "
                          f"{text!r}") from None
    if not value > 0:
        raise ConfigError(f"{flag} must be positive, got {text!r}")
    return int(value)


def human(n: float) -> str:
    """Bytes as ``"1.2 GB"`` (powers of 1000, as the research note writes them)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n} B"  # pragma: no cover
