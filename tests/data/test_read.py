"""read_ratings: every supported format, and a clear error for every kind of bad input."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.data import read_ratings
from collabkit.errors import ConfigError, DataError, DataWarning, FieldError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def assert_ratings(frame: pd.DataFrame, *, timestamp: bool = True) -> None:
    expected = ["user", "item", "rating"] + (["timestamp"] if timestamp else [])
    assert list(frame.columns) == expected
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    assert frame["rating"].dtype == np.float64
    if timestamp:
        assert frame["timestamp"].dtype == np.int64


# ---------------------------------------------------------------------------------------------
# good input


def test_csv_with_header(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,10,4.5,100\n2,10,3,200\n")
    frame = read_ratings(path)
    assert_ratings(frame)
    assert frame["user"].dtype == np.int64 and frame["item"].dtype == np.int64
    assert frame.to_dict("list") == {
        "user": [1, 2], "item": [10, 10], "rating": [4.5, 3.0], "timestamp": [100, 200],
    }  # fmt: skip


def test_headerless_whitespace_like_u_data(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186  302 3    891717742\n")
    frame = read_ratings(path)
    assert_ratings(frame)
    assert frame["user"].tolist() == [196, 186]
    assert frame["timestamp"].tolist() == [881250949, 891717742]


def test_tsv_with_named_columns_in_any_order(tmp_path: Path) -> None:
    path = write(tmp_path / "r.tsv", "stars\twho\twhat\n5\tann\tx\n1\tbob\ty\n")
    frame = read_ratings(path, user_col="who", item_col="what", rating_col="stars")
    assert_ratings(frame, timestamp=False)
    assert frame.to_dict("list") == {"user": ["ann", "bob"], "item": ["x", "y"], "rating": [5, 1]}


def test_columns_by_position_and_timestamp_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "x,9,1,2.5,77\nx,8,2,4,78\n")
    frame = read_ratings(path, user_col=1, item_col=2, rating_col=3, timestamp_col=False)
    assert frame.to_dict("list") == {"user": [9, 8], "item": [1, 2], "rating": [2.5, 4.0]}


def test_timestamp_by_position(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1,2,3,note,1000\n")
    assert read_ratings(path, timestamp_col=4)["timestamp"].tolist() == [1000]


@pytest.mark.parametrize("sep", [";", "|", "::", "\t", ","])
def test_separator_is_detected(tmp_path: Path, sep: str) -> None:
    path = write(tmp_path / "r.txt", f"1{sep}5{sep}2{sep}10\n2{sep}6{sep}3.5{sep}11\n")
    frame = read_ratings(path)
    assert frame.to_dict("list") == {
        "user": [1, 2], "item": [5, 6], "rating": [2.0, 3.5], "timestamp": [10, 11],
    }  # fmt: skip


def test_double_colon_dat_with_colons_in_ids_falls_back(tmp_path: Path) -> None:
    path = write(tmp_path / "r.dat", "a:1::b::4\na:2::c::5\n")
    frame = read_ratings(path, sep="::")
    assert frame["user"].tolist() == ["a:1", "a:2"] and frame["rating"].tolist() == [4.0, 5.0]


def test_string_ids_stay_strings_and_int_ids_become_int64(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\nu1,42,4\nu2,43,5\n")
    frame = read_ratings(path)
    assert frame["user"].tolist() == ["u1", "u2"]
    assert pd.api.types.is_string_dtype(frame["user"].dtype)
    assert frame["item"].dtype == np.int64


def test_ids_with_leading_zeros_stay_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "007,1,4\n7,1,5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # "007" and "7" are different users
        frame = read_ratings(path)
    assert frame["user"].tolist() == ["007", "7"]


def test_non_integer_id_after_the_sample_switches_to_strings(tmp_path: Path) -> None:
    lines = [f"{i},{i % 7},3" for i in range(2000)] + ["x9,1,4"]
    frame = read_ratings(write(tmp_path / "r.csv", "\n".join(lines) + "\n"))
    assert frame["user"].iloc[-1] == "x9" and frame["user"].iloc[0] == "0"
    assert len(frame) == 2001


def test_header_detection(tmp_path: Path) -> None:
    with_header = write(tmp_path / "a.csv", "u,i,r\n1,2,3\n")
    without = write(tmp_path / "b.csv", "1,2,3\n4,5,1\n")
    assert len(read_ratings(with_header)) == 1
    assert len(read_ratings(without)) == 2
    assert read_ratings(without, header=True)["user"].tolist() == [4]


def test_iso_dates_become_unix_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r,t\n1,2,3,1970-01-02T00:00:00Z\n1,3,4,1970-01-01\n")
    assert read_ratings(path)["timestamp"].tolist() == [86400, 0]


def test_crlf_bom_and_quotes(tmp_path: Path) -> None:
    text = '\ufeffuser,item,rating\r\n"1","a, b",4\r\n2,c,5\r\n'
    frame = read_ratings(write(tmp_path / "r.csv", text))
    assert frame.to_dict("list") == {"user": [1, 2], "item": ["a, b", "c"], "rating": [4.0, 5.0]}


def test_latin1_with_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\nJosé,Amélie,5\n", encoding="latin-1")
    frame = read_ratings(path, encoding="latin-1")
    assert frame["user"].tolist() == ["José"] and frame["item"].tolist() == ["Amélie"]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet(tmp_path: Path, suffix: str) -> None:
    source = pd.DataFrame(
        {"u": [1, 2], "i": ["a", "b"], "r": [4.0, 2.5], "t": [5, 6], "extra": ["x", "y"]}
    )
    path = tmp_path / f"r{suffix}"
    source.to_parquet(path)
    frame = read_ratings(path)
    assert_ratings(frame)
    assert frame.to_dict("list") == {"user": [1, 2], "item": ["a", "b"], "rating": [4.0, 2.5],
                                     "timestamp": [5, 6]}  # fmt: skip


def test_dataframe_keeps_id_types_and_resets_index() -> None:
    source = pd.DataFrame({"r": [3, 4], "u": ["1", "2"], "i": [7, 8]}, index=[10, 20])
    frame = read_ratings(source, user_col="u", item_col="i", rating_col="r")
    assert_ratings(frame, timestamp=False)
    assert frame["user"].tolist() == ["1", "2"]  # strings stay strings, even digit-like
    assert frame["item"].dtype == np.int64
    assert frame["rating"].tolist() == [3.0, 4.0]


def test_dataframe_datetime_timestamps() -> None:
    source = pd.DataFrame(
        {"u": [1], "i": [2], "r": [3.0], "t": pd.to_datetime(["1970-01-01 00:01"])}
    )
    assert read_ratings(source)["timestamp"].tolist() == [60]


def test_rating_range_accepts_bounds(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1,1,1\n1,2,5\n")
    assert read_ratings(path, rating_range=(1, 5))["rating"].tolist() == [1.0, 5.0]


def test_never_writes(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1,1,1\n1,1,2\n")
    before = sorted(os.listdir(tmp_path)), path.stat().st_mtime_ns
    with pytest.warns(DataWarning):
        read_ratings(path)
    assert (sorted(os.listdir(tmp_path)), path.stat().st_mtime_ns) == before


# ---------------------------------------------------------------------------------------------
# duplicates


def test_duplicates_keep_last_and_warn_at_caller(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\n1,1,1\n1,2,2\n2,1,3\n1,1,4\n1,2,5\n")
    with pytest.warns(DataWarning) as record:
        frame = read_ratings(path)
    assert frame.to_dict("list") == {"user": [2, 1, 1], "item": [1, 1, 2], "rating": [3, 4, 5]}
    message = str(record[0].message)
    assert "2 duplicate" in message
    assert "user 1, item 1 on line 2 and line 5" in message
    assert str(path) in message
    assert record[0].filename == __file__


def test_duplicates_with_string_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "a,x,1\nb,x,2\na,x,3\n")
    with pytest.warns(DataWarning, match="user 'a', item 'x' on line 1 and line 3"):
        frame = read_ratings(path)
    assert frame["rating"].tolist() == [2.0, 3.0]


# ---------------------------------------------------------------------------------------------
# bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_ratings(tmp_path / "nope.csv")


def test_missing_named_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,score\n1,2,3\n")
    with pytest.raises(FieldError) as info:
        read_ratings(path, rating_col="rating")
    message = str(info.value)
    assert str(path) in message and "'rating'" in message
    assert "['user', 'item', 'score']" in message


def test_column_position_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="rating_col=5 is out of range"):
        read_ratings(write(tmp_path / "r.csv", "1,2,3\n"), rating_col=5)


def test_column_name_without_header(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="no header"):
        read_ratings(write(tmp_path / "r.csv", "1,2,3\n"), header=False, user_col="user")


def test_two_columns_only(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="no rating column.*2 column"):
        read_ratings(write(tmp_path / "r.csv", "user,item\n1,2\n"), sep=",")


def test_missing_column_in_dataframe_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"u": [1], "i": [2], "r": [3.0]})
    with pytest.raises(FieldError, match=r"\['u', 'i', 'r'\]"):
        read_ratings(frame, rating_col="rating")
    frame.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(FieldError, match=r"r\.parquet.*\['u', 'i', 'r'\]"):
        read_ratings(tmp_path / "r.parquet", rating_col="rating")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "r.csv", text)
    with pytest.raises(DataError, match="empty") as info:
        read_ratings(path)
    assert str(path) in str(info.value)


def test_header_but_no_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="header line but no rating lines"):
        read_ratings(write(tmp_path / "r.csv", "user,item,rating\n"))


def test_empty_dataframe() -> None:
    with pytest.raises(DataError, match="no rows"):
        read_ratings(pd.DataFrame({"u": [], "i": [], "r": []}))


def test_wrong_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1;2;3.5;100\n2;3;4;101\n")
    with pytest.raises(DataError) as info:
        read_ratings(path, sep=",")
    message = str(info.value)
    assert str(path) in message and "only 1 column" in message and "sep=';'" in message


def test_undetectable_separator(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot detect the separator"):
        read_ratings(write(tmp_path / "r.txt", "1/2/3\n4/5/6\n"))


def test_wrong_encoding_in_first_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\nann,x,1\nJosé,y,2\n", encoding="latin-1")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "column 4" in message
    assert "byte offset 28" in message  # 17 + 8 + len("Jos") and 'encoding="latin-1"' in message


def test_wrong_encoding_far_into_the_file(tmp_path: Path) -> None:
    lines = [f"user{i},item{i % 50},{i % 5 + 1}" for i in range(8000)] + ["Zoë,x,3"]
    path = write(tmp_path / "r.csv", "\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(DataError, match=r'line 8001, column 3 .*encoding="latin-1"'):
        read_ratings(path)


def test_unknown_encoding(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a known text encoding"):
        read_ratings(write(tmp_path / "r.csv", "1,2,3\n"), encoding="klingon")


def test_non_numeric_rating(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\n1,2,4\n1,3,great\n1,4,5\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    message = str(info.value)
    assert f"{path}, line 3: rating 'great' is not a number" in message


def test_non_numeric_rating_whitespace_file(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", "1 2 4 10\n1 3 x 11\n")
    with pytest.raises(DataError, match="line 2: rating 'x' is not a number"):
        read_ratings(path)


@pytest.mark.parametrize("value", ["", "NaN", "nan", "NA"])
def test_missing_rating(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "r.csv", f"u,i,r\n1,2,4\n1,3,{value}\n")
    with pytest.raises(DataError, match=r"line 3: the rating is missing \(empty or NaN\)"):
        read_ratings(path)


@pytest.mark.parametrize("value", ["inf", "-inf"])
def test_infinite_rating(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "r.csv", f"1,2,4\n1,3,{value}\n")
    with pytest.raises(DataError, match=rf"line 2: rating {value} is not finite"):
        read_ratings(path)


def test_rating_outside_range(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\n1,2,4\n1,3,7\n1,4,0\n")
    with pytest.raises(DataError) as info:
        read_ratings(path, rating_range=(1, 5))
    message = str(info.value)
    assert "line 3: rating 7 is outside rating_range=(1, 5)" in message
    assert "1 more like it" in message


@pytest.mark.parametrize(("line", "role"), [(",2,4", "user"), ("1,,4", "item"), (" ,2,4", "user")])
def test_missing_id(tmp_path: Path, line: str, role: str) -> None:
    path = write(tmp_path / "r.csv", f"u,i,r\n1,2,4\n{line}\n")
    with pytest.raises(DataError, match=rf"line 3: the {role} id is missing"):
        read_ratings(path)


def test_missing_id_in_string_column(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\nann,x,4\n,y,4\n")
    with pytest.raises(DataError, match=r"line 3: the user id is missing"):
        read_ratings(path)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\n\n1,2,4\n\n\n1,3,bad\n")
    with pytest.raises(DataError, match="line 6: rating 'bad'"):
        read_ratings(path)


def test_malformed_line(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "u,i,r\n1,2,4\n1,3,4,5,6\n")
    with pytest.raises(DataError, match=r"line 3: 5 fields where earlier lines have 3"):
        read_ratings(path)


def test_bad_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "1,2,4,100\n1,3,4,yesterday\n")
    with pytest.raises(DataError, match="line 2: timestamp 'yesterday'"):
        read_ratings(path)


def test_dataframe_errors_name_rows() -> None:
    frame = pd.DataFrame({"u": [1, 2, None], "i": [1, 2, 3], "r": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="DataFrame, row 2: the user id is missing"):
        read_ratings(frame)
    frame = pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": ["4", "five"]})
    with pytest.raises(DataError, match="row 1: rating 'five' is not a number"):
        read_ratings(frame)


@pytest.mark.parametrize(
    "kwargs",
    [{"rating_range": (5, 1)}, {"user_col": 0, "item_col": 0}, {"user_col": True}],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        read_ratings(write(tmp_path / "r.csv", "1,2,3\n"), **kwargs)  # type: ignore[arg-type]


def test_issue8_far_rating_warned_with_line_and_hint(tmp_path):
    path = tmp_path / "r.csv"
    rows = [f"{u},{i},{(u + i) % 5 + 1}" for u in range(1, 6) for i in range(1, 6)]
    rows[6] = "2,2,1e9"  # line 8 with the header
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match=r"r.csv, line 8: rating 1e\+09 is far outside the "
                      r"other ratings \(half of them lie between 2 and 4\).*rating_range="):
        frame = read_ratings(path)
    assert frame["rating"].max() == 1e9  # accepted, but said
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        with pytest.raises(DataError, match="outside rating_range"):
            read_ratings(path, rating_range=(1, 5))
        assert read_ratings(path, rating_range=(0, 1e9))["rating"].max() == 1e9


def test_issue8_star_scales_are_never_far():
    rng = np.random.default_rng(0)
    for scale in (np.arange(1, 6), np.arange(1, 11) / 2, np.array([1.0, 1.0, 1.0, 1.0, 10.0])):
        df = pd.DataFrame({"user": np.arange(200), "item": 1,
                           "rating": rng.choice(scale, 200)})
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)
            read_ratings(df)


@pytest.mark.parametrize("kind", ["dataframe", "parquet"])
def test_issue8_ids_at_or_above_2_63_stay_exact(kind, tmp_path):
    big = np.array([2**63, 2**64 - 1, 7], dtype=np.uint64)
    df = pd.DataFrame({"user": big, "item": np.array([1, 2, 3], dtype=np.uint64),
                       "rating": [4.0, 3.0, 5.0]})
    source = df
    if kind == "parquet":
        source = tmp_path / "r.parquet"
        df.to_parquet(source)
    frame = read_ratings(source)
    assert frame["user"].tolist() == [str(2**63), str(2**64 - 1), "7"]  # never negative
    assert frame["item"].tolist() == [1, 2, 3] and frame["item"].dtype == np.int64
    objects = pd.DataFrame({"user": [2**63, 1], "item": [1, 2], "rating": [1.0, 2.0]},
                           dtype=object)
    assert read_ratings(objects)["user"].tolist() == [str(2**63), "1"]
