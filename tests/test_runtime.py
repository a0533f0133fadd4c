"""runtime: the one threads helper and the device resolver."""

import torch

from collabkit.runtime import resolve_device, threads


def test_threads_sets_and_restores_the_setting():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads(None):
        assert torch.get_num_threads() == before


def test_threads_restores_after_an_error():
    before = torch.get_num_threads()
    try:
        with threads(1):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expect = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expect and resolve_device(None).type == expect


def test_old_random_module_still_imports():
    from collabkit.random import numpy_rng, resolve_device, resolve_seed, torch_generator

    assert resolve_seed(3) == 3 and numpy_rng(0).integers(10) == numpy_rng(0).integers(10)
    assert torch_generator(0).initial_seed() == 0 and callable(resolve_device)
