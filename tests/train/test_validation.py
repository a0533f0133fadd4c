"""One validation carve (train/validation.py) on hand-checkable data (issue 9)."""

from __future__ import annotations

import numpy as np

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.train.validation import carve_validation


def _vocabs() -> tuple[Vocabulary, Vocabulary]:
    return Vocabulary(np.array([10, 11, 12])), Vocabulary(np.array(["a", "b"]))


def _arrays(n: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.arange(n) % 3
    i = np.arange(n) % 2
    return u, i, np.arange(n, dtype=np.float32)


def test_valid_frac_holds_out_the_first_draws_of_one_permutation_in_row_order() -> None:
    u, i, r = _arrays()
    uv, iv = _vocabs()
    carve = carve_validation(u, i, r, user_vocab=uv, item_vocab=iv, valid=None,
                             valid_frac=0.3, rng=np.random.default_rng(7))
    perm = np.random.default_rng(7).permutation(10)
    assert carve.valid_rows is not None
    np.testing.assert_array_equal(carve.valid_rows, np.sort(perm[:3]))
    np.testing.assert_array_equal(carve.train_rows, np.sort(perm[3:]))
    assert carve.valid is not None and carve.n_valid == 3
    np.testing.assert_array_equal(carve.valid[2], r[np.sort(perm[:3])])
    # the old mask form of mf.py selected the same rows
    keep = np.ones(10, dtype=bool)
    keep[perm[:3]] = False
    np.testing.assert_array_equal(np.flatnonzero(keep), carve.train_rows)


def test_a_given_valid_set_keeps_every_training_row_and_drops_unknown_ids() -> None:
    u, i, r = _arrays()
    uv, iv = _vocabs()
    valid = Interactions(users=np.array([0, 1, 0]), items=np.array([0, 0, 1]),
                         ratings=np.array([1.0, 2.0, 3.0], dtype=np.float32),
                         user_vocab=Vocabulary(np.array([11, 99])),
                         item_vocab=Vocabulary(np.array(["b", "a"])))
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    carve = carve_validation(u, i, r, user_vocab=uv, item_vocab=iv, valid=valid,
                             valid_frac=0.5, rng=rng)
    assert rng.bit_generator.state == before  # nothing drawn
    np.testing.assert_array_equal(carve.train_rows, np.arange(10))
    assert carve.valid is not None
    vu, vi, vr = carve.valid
    # user 99 is unknown: its row is not monitored; 11 -> 1, "b" -> 1, "a" -> 0
    np.testing.assert_array_equal(vu, [1, 1])
    np.testing.assert_array_equal(vi, [1, 0])
    np.testing.assert_array_equal(vr, np.array([1.0, 3.0], dtype=np.float32))
    np.testing.assert_array_equal(carve.valid_known, [True, False, True])


def test_no_validation_at_all() -> None:
    u, i, r = _arrays()
    uv, iv = _vocabs()
    carve = carve_validation(u, i, r, user_vocab=uv, item_vocab=iv, valid=None,
                             valid_frac=0.0, rng=np.random.default_rng(0))
    assert carve.valid is None and carve.n_valid == 0
    np.testing.assert_array_equal(carve.train_rows, np.arange(10))
