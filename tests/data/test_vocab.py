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


def test_int_ids_not_confused_with_strings():
    v = Vocabulary.from_values([1, 2, 3])
    assert v.index(["1"]).tolist() == [-1]
    assert 2 in v and "2" not in v


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
