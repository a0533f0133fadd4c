"""seeds: named child streams from numpy.random.SeedSequence."""

import numpy as np

from collabkit.seeds import derive_seed, resolve_seed


def test_derive_seed_is_stable_and_names_differ():
    assert derive_seed(0, "shuffle") == derive_seed(0, "shuffle")
    names = ["shuffle", "init", "carve", "torch-global", "member:dot", "member:bpmf"]
    seeds = {derive_seed(s, n) for s in range(50) for n in names}
    assert len(seeds) == 50 * len(names)  # no two streams share a seed


def test_derived_seeds_do_not_overlap_seed_plus_m():
    """issue 9: 'seed + m' member seeds collided with 'seed_ + 1' shuffles."""
    derived = {derive_seed(s, "shuffle") for s in range(100)}
    assert not derived & set(range(200))


def test_derive_seed_accepts_negative_and_huge_seeds():
    for s in (-1, 2**63 - 1, 2**70):
        v = derive_seed(s, "x")
        assert 0 <= v < 2**63


def test_resolve_seed():
    assert resolve_seed(7) == 7
    a, b = resolve_seed(None), resolve_seed(None)
    assert isinstance(a, int) and a != b and np.random.default_rng(a) is not None
