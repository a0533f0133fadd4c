"""Regression: the one-cycle loop on a handful of steps (OneCycleLR divided by zero at 4)."""

import pytest
import torch

from collabkit.models.biased_mf._module import DotProductBias
from collabkit.train.loop import fit_one_cycle


@pytest.mark.parametrize("epochs", [1, 2, 4, 5])
def test_few_steps_train(epochs):
    users, items = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 0, 2, 2])
    y = torch.tensor([4.0, 3.0, 5.0, 2.0])
    model = DotProductBias(3, 3, 2)
    res = fit_one_cycle(model, (users, items), y, epochs=epochs, lr_max=1e-2, wd=0.0,
                        batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(res.history) == epochs
