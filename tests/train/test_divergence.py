"""Issue 8: a divergent learning rate ends in ModelFitError with a remedy, never in torch's
linear algebra (BiasedMF's closed-form passes met factors of 1e6 and failed)."""

from __future__ import annotations

import numpy as np
import pytest

import collabkit
from collabkit.errors import ModelFitError
from collabkit.train.loop import check_not_diverged, remedy


def test_limit_is_the_largest_of_four_variances_twice_the_start_and_one():
    r = np.array([1.0, 5.0])  # variance 4, half-range 2
    check_not_diverged(16.0, 3, r, "x")  # 4 * variance
    with pytest.raises(ModelFitError, match=r"loss is 16\.01 after epoch 3.*Do this\."):
        check_not_diverged(16.01, 3, r, "Do this.")
    check_not_diverged(26.0, 1, r, "x", start_loss=13.0)  # a slow start is not divergence
    with pytest.raises(ModelFitError):
        check_not_diverged(26.1, 1, r, "x", start_loss=13.0)
    check_not_diverged(1.0, 1, np.array([3.0, 3.0]), "x")  # constant ratings: the floor of 1
    with pytest.raises(ModelFitError):
        check_not_diverged(float("nan"), 1, r, "x")


def test_remedy_names_the_values():
    assert remedy(1e6, 0.1) == ("Lower the learning rate (lr=1e+06) or raise the weight decay "
                                "(wd=0.1).")


@pytest.fixture(scope="module")
def small() -> collabkit.Interactions:
    return collabkit.load_dataset("ml-latest-small", download=False, progress=False)


def test_biasedmf_with_absurd_lr_raises_fit_error(small):
    """The loss stays finite (sigmoid saturates, about 11) while factors reach 1e6."""
    with pytest.raises(ModelFitError, match=r"diverged.*lr=1e\+06"):
        collabkit.BiasedMF(lr=1e6, random_state=0).fit(small)


def test_svdpp_with_absurd_lr_raises_fit_error(small):
    """SVD++ used to finish and save a model worse than the global mean (test RMSE 2.5)."""
    with pytest.raises(ModelFitError, match=r"diverged.*reg="):
        collabkit.SVDpp(lr=1.0, epochs=2, random_state=0).fit(small)


@pytest.mark.parametrize("kind", ["nn", "hybrid"])
def test_other_gradient_models_with_absurd_lr_raise_fit_error(small, kind):
    with pytest.raises(ModelFitError, match="lr="):
        collabkit.fit(small, kind, lr=1e6, epochs=1, random_state=0)


def test_a_failing_closed_form_pass_is_a_fit_error(monkeypatch):
    """Belt and braces: whatever slips past the loss check, the pass never leaks LinAlgError."""
    import torch

    import collabkit.models.biased_mf._estimator as mf
    from collabkit.testing import planted_low_rank

    def singular(*args, **kwargs):
        raise torch.linalg.LinAlgError("torch.linalg.solve: The solver failed because the "
                                       "input matrix is singular.")

    monkeypatch.setattr(mf, "population_pass", singular)
    data = planted_low_rank(n_users=30, n_items=20, seed=1).data
    with pytest.raises(ModelFitError, match=r"closed-form pass.*singular.*lr="):
        collabkit.BiasedMF(epochs=1, random_state=0).fit(data)
