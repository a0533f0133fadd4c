"""Issue 8: read_ratings names the real problem of a file (no rating column, not text)."""

from __future__ import annotations

import pytest

from collabkit.data.read import read_ratings
from collabkit.errors import DataError, FieldError


def test_two_columns_is_a_missing_rating_column(tmp_path):
    path = tmp_path / "clicks.tsv"
    path.write_text("10\t20\n11\t21\n12\t22\n")
    with pytest.raises(FieldError, match=r"no rating column: every line has only 2 fields "
                                         r"\('\\t'-separated"):
        read_ratings(path)


@pytest.mark.parametrize("head, what", [
    (b"PAR1\x15\x04", "Parquet file: give it a .parquet name"),
    (b"\x1f\x8b\x08\x00", "gzip-compressed"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x7fELF\x02\x01\x01\x00", "NUL byte at byte offset 7"),
])
def test_binary_data_says_what_it_looks_like(tmp_path, head, what):
    path = tmp_path / "ratings.csv"
    path.write_bytes(head + b"\x00\x01\x02" * 50)
    with pytest.raises(DataError, match="not a text table") as info:
        read_ratings(path)
    assert what in str(info.value) and "latin-1" not in str(info.value)


def test_utf16_text_is_not_mistaken_for_binary(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("u,i,r\n1,2,3\n2,2,4\n".encode("utf-16-le"))  # no byte-order mark
    assert read_ratings(path, encoding="utf-16-le")["rating"].tolist() == [3.0, 4.0]
