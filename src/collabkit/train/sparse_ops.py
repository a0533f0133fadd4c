"""Sparse helpers shared by the models (BayesianMF's sums, SVDpp's implicit term)."""

from __future__ import annotations

import warnings

import torch

__all__ = ["csr_matrix"]


def csr_matrix(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int,
               n_cols: int) -> torch.Tensor:
    """A CSR matrix from coordinates (duplicates are not expected)."""
    order = torch.argsort(rows * n_cols + cols)
    crow = torch.cat([torch.zeros(1, dtype=torch.int64),
                      torch.bincount(rows, minlength=n_rows).cumsum(0)])
    with warnings.catch_warnings(), torch.sparse.check_sparse_tensor_invariants(False):
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols[order], vals[order], size=(n_rows, n_cols))
