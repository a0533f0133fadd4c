"""Optimizers on plain tensors (no ``nn.Parameter``, no autograd graph)."""

from __future__ import annotations

import math

import torch

__all__ = ["PackedAdam"]


class PackedAdam:
    """Adam on one dense table, with the step counter and moments it owns.

    Uses torch's fused CPU/GPU kernel (``torch._fused_adam_``, one pass over the table) when
    this torch has it, else the same update from plain tensor ops.
    """

    def __init__(self, W: torch.Tensor, betas: tuple[float, float], eps: float) -> None:
        self.W = W
        self.m = torch.zeros_like(W)
        self.v = torch.zeros_like(W)
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.step_t = torch.zeros((), dtype=torch.float32, device=W.device)
        self.fused = hasattr(torch, "_fused_adam_") and W.device.type in ("cpu", "cuda")

    def step(self, G: torch.Tensor, lr: float) -> None:
        self.t += 1
        if self.fused:
            self.step_t += 1
            torch._fused_adam_([self.W], [G], [self.m], [self.v], [], [self.step_t], lr=lr,
                               beta1=self.b1, beta2=self.b2, weight_decay=0.0, eps=self.eps,
                               amsgrad=False, maximize=False)
            return
        self.manual_step(G, lr)

    def manual_step(self, G: torch.Tensor, lr: float) -> None:
        """The update from plain ops (also the reference the fused kernel is tested against)."""
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        self.m.lerp_(G, 1.0 - self.b1)
        self.v.mul_(self.b2).addcmul_(G, G, value=1.0 - self.b2)
        denom = self.v.sqrt().div_(math.sqrt(bc2)).add_(self.eps)
        self.W.addcdiv_(self.m, denom, value=-lr / bc1)
