"""The one one-cycle definition (train/schedule.py) behind both training loops (issue 9)."""

from __future__ import annotations

import pytest
import torch

from collabkit.train.schedule import AUTOGRAD, PACKED, one_cycle_lr, torch_one_cycle


def test_packed_schedule_ends_and_peaks_where_documented() -> None:
    total = 101
    assert one_cycle_lr(0, total, 1.0) == pytest.approx(1 / PACKED.div)
    assert one_cycle_lr(25, total, 1.0) == pytest.approx(1.0)
    assert one_cycle_lr(total - 1, total, 1.0) == pytest.approx(1 / PACKED.final_div)


def test_torch_schedule_uses_the_same_settings_counted_from_lr_max() -> None:
    """The autograd loop's torch OneCycleLR: lr_max/25 first, lr_max/1e5 last (4e3 * 25)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = torch_one_cycle(opt, 1.0, 40, AUTOGRAD)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(39):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[0] == pytest.approx(1 / AUTOGRAD.div)
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1 / AUTOGRAD.final_div)
    assert AUTOGRAD.final_div == pytest.approx(1e5)
