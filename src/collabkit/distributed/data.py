"""Data per rank: each rank reads only its part of a partitioned Parquet dataset (issue 15).

:func:`write_partitioned` writes a ratings DataFrame as a hive-partitioned Parquet dataset
(``part=0/``, ``part=1/``, ...) with pyarrow datasets, split by a hash or by ranges of the
user id. :func:`read_rank_part` gives rank ``r`` of ``N`` the parts ``p`` with
``p % N == r`` and opens only their files (the partition filter prunes the others). The
vocabularies are built once, on rank 0, from a scan of the two id columns only, and sent
to the other ranks as JSON bytes by broadcast (no pickle); every rank then indexes its rows
with the same vocabularies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import torch

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.distributed.group import world
from collabkit.distributed.shards import all_reduce_, broadcast_
from collabkit.errors import ConfigError, DataError

__all__ = ["write_partitioned", "read_rank_part", "RankPart", "share_vocabularies"]

PART = "part"


def _parts_of(users: pd.Series, n_parts: int, by: Literal["hash", "range"]) -> np.ndarray:
    if by == "hash":  # pandas' stable hash of the raw id (the same on every machine)
        return (pd.util.hash_pandas_object(users, index=False).to_numpy()
                % np.uint64(n_parts)).astype(np.int64)
    uniq = np.sort(users.unique())
    cuts = uniq[np.linspace(0, len(uniq), n_parts + 1).astype(int)[1:-1]]
    return np.searchsorted(cuts, users.to_numpy(), side="right").astype(np.int64)


def write_partitioned(df: pd.DataFrame, path: str | os.PathLike[str], n_parts: int, *,
                      user_col: str = "user", by: Literal["hash", "range"] = "hash") -> Path:
    """Write ``df`` as a Parquet dataset in ``n_parts`` hive partitions of the user id.

    ``by="hash"`` spreads users evenly whatever their ids; ``"range"`` keeps users of
    neighbouring ids together (part ``p`` holds the ``p``-th slice of the sorted ids).
    ``path`` must not exist yet: nothing is overwritten.
    """
    if not isinstance(n_parts, int) or n_parts < 1:
        raise ConfigError(f"n_parts must be a positive integer, got {n_parts!r}")
    if by not in ("hash", "range"):
        raise ConfigError(f"by must be 'hash' or 'range', got {by!r}")
    if user_col not in df.columns:
        raise DataError(f"column {user_col!r} not found; columns are {list(df.columns)}. "
                        "Name it with user_col=")
    out = Path(path)
    if out.exists():
        raise ConfigError(f"{str(out)!r} already exists; write_partitioned writes a new "
                          "folder and replaces nothing. Choose another path or remove it.")
    table = pa.Table.from_pandas(df.assign(**{PART: _parts_of(df[user_col], n_parts, by)}),
                                 preserve_index=False)
    ds.write_dataset(table, out, format="parquet", partitioning=[PART],
                     partitioning_flavor="hive")
    return out


@dataclass
class RankPart:
    """What one rank read: its rows, the files it opened and the parts they belong to."""

    frame: pd.DataFrame
    files: list[str] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)


def _dataset(path: str | os.PathLike[str]) -> ds.Dataset:
    if not Path(path).is_dir():
        raise DataError(f"{str(path)!r} is not a folder holding a partitioned Parquet dataset; "
                        "write one with collabkit.distributed.data.write_partitioned")
    return ds.dataset(path, format="parquet", partitioning="hive")


def read_rank_part(path: str | os.PathLike[str], rank: int | None = None,
                   size: int | None = None) -> RankPart:
    """The rows of parts ``p % size == rank`` (defaults: this process's place), reading only
    their files."""
    w = world()
    rank, size = (w.rank if rank is None else rank), (w.size if size is None else size)
    dataset = _dataset(path)
    if PART not in dataset.schema.names:
        raise DataError(f"{str(path)!r} has no {PART!r} partitions; write it with "
                        "write_partitioned")
    # listing the fragments reads no data; only this rank's are opened below
    fragments = [(int(ds.get_partition_keys(f.partition_expression)[PART]), f)
                 for f in dataset.get_fragments()]
    mine = [(p, f) for p, f in fragments if p % size == rank]
    tables = [f.to_table(schema=dataset.schema) for _, f in mine]
    frame = (pa.concat_tables(tables) if tables else dataset.schema.empty_table()).to_pandas()
    return RankPart(frame.drop(columns=[PART]), [f.path for _, f in mine],
                    sorted({p for p, _ in mine}))


def _broadcast_json(obj: object) -> object:
    """``obj`` from rank 0 on every rank, sent as JSON bytes."""
    if world().size == 1:
        return obj
    payload = json.dumps(obj).encode() if world().is_main else b""
    n = broadcast_(torch.tensor([len(payload)], dtype=torch.int64))
    buf = torch.zeros(int(n.item()), dtype=torch.uint8)
    if world().is_main:
        buf[:] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    return json.loads(bytes(broadcast_(buf).numpy()).decode())


def share_vocabularies(path: str | os.PathLike[str], *, user_col: str = "user",
                       item_col: str = "item") -> tuple[Vocabulary, Vocabulary]:
    """User and item vocabularies built on rank 0 from the id columns alone, on every rank."""
    obj: object = None
    if world().is_main:
        ids = _dataset(path).to_table(columns=[user_col, item_col]).to_pandas()
        obj = [Vocabulary.from_values(ids[user_col].to_numpy()).to_json(),
               Vocabulary.from_values(ids[item_col].to_numpy()).to_json()]
    got = _broadcast_json(obj)
    assert isinstance(got, list)
    return Vocabulary.from_json(got[0]), Vocabulary.from_json(got[1])


def load_rank_part(path: str | os.PathLike[str], *, user_col: str = "user",
                   item_col: str = "item", rating_col: str = "rating"
                   ) -> tuple[Interactions, RankPart]:
    """This rank's rows as :class:`Interactions` indexed by the shared vocabularies."""
    users, items = share_vocabularies(path, user_col=user_col, item_col=item_col)
    part = read_rank_part(path)
    df = part.frame
    r = df[rating_col].to_numpy(dtype=np.float32)
    lo_hi = torch.tensor([-float(r.min()) if len(r) else -np.inf,
                          float(r.max()) if len(r) else -np.inf], dtype=torch.float64)
    lo_hi = all_reduce_(lo_hi, torch.distributed.ReduceOp.MAX)
    data = Interactions(users=users.index(df[user_col].to_numpy()),
                        items=items.index(df[item_col].to_numpy()), ratings=r,
                        user_vocab=users, item_vocab=items,
                        rating_range=(-float(lo_hi[0]), float(lo_hi[1])))
    return data, part
