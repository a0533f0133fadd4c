"""Training on more than one process with ``torch.distributed`` (issue 15).

``group`` owns the process group's life (start from torchrun's environment or from a test's
spawn, the teardown order that does not abort, a per-rank view of the world). The tiers
(replicate, row-wise shards, ALS blocks) and the planner build on it.
"""
