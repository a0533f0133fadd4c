import numpy as np
import pytest

from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError, UnknownIdError


def test_from_values_sorted_and_dense():
    v = Vocabulary.from_values([10, 3, 10, 7])
    assert len(v) == 3
    assert v.all_ids.tolist() == [3, 7, 10]
    assert v.index([7, 10, 3]).tolist() == [1, 2, 0]
    assert v.ids([2, 0]).tolist() == [10, 3]


def test_unknown_maps_to_minus_one_and_strict_names_it():
    v = Vocabulary.from_values(["a", "b"])
    assert v.index(["b", "zz"]).tolist() == [1, -1]
    with pytest.raises(UnknownIdError, match="'zz'"):
        v.index_strict(["b", "zz"], what="user")


def test_issue8_number_and_string_name_the_same_id_both_ways():
    ints = Vocabulary.from_values([1, 2, 42])
    assert ints.index(["42", " 42 ", 42.0, np.int32(2), "1"]).tolist() == [2, 2, 2, 1, 0]
    assert ints.index(np.array(["42", "2"])).tolist() == [2, 1]  # a str array, not object
    assert ints.index(["042", "4 2", 42.5, "alice", None]).tolist() == [-1] * 5
    assert "2" in ints and 2 in ints and "7" not in ints
    strs = Vocabulary.from_values(["42", "7", "alice"])
    assert strs.index([42, np.int64(7), 7.0, " alice ", "alice"]).tolist() == [0, 1, 1, 2, 2]
    assert strs.index(np.array([7, 42])).tolist() == [1, 0]


def test_issue8_one_foreign_id_leaves_the_other_rows_matched():
    v = Vocabulary.from_values(np.arange(1, 1001))
    batch = [*range(1, 1001), "alice"]  # np.asarray would make every id a string
    idx = v.index(batch)
    assert idx[:-1].tolist() == list(range(1000)) and idx[-1] == -1
    big = np.array(["x"] * 3 + [str(i) for i in range(1, 1001)], dtype=object)
    assert (v.index(big)[3:] == np.arange(1000)).all() and (v.index(big)[:3] == -1).all()


def test_json_round_trip_keeps_types():
    for ids in ([5, 1, 9], ["x", "é", "a b"]):
        v = Vocabulary.from_values(ids)
        w = Vocabulary.from_json(v.to_json())
        assert w == v
        assert w.index(ids).tolist() == v.index(ids).tolist()


def test_duplicates_rejected():
    with pytest.raises(DataError, match="more than once"):
        Vocabulary([1, 2, 1])


def test_bad_json_record():
    with pytest.raises(DataError, match="kind"):
        Vocabulary.from_json({"kind": "float", "ids": [1.0]})


def test_scalar_lookup():
    v = Vocabulary.from_values(np.array([4, 2]))
    assert v.index(4).tolist() == [1]


def test_issue8_uint64_ids_beyond_int64_survive_json_exactly():
    v = Vocabulary(np.array([5, 2**64 - 1], dtype=np.uint64))
    w = Vocabulary.from_json(v.to_json())
    assert w.all_ids.tolist() == ["5", str(2**64 - 1)]
    assert w.index([2**64 - 1, 5]).tolist() == [1, 0]
