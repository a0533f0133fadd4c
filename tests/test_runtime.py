"""runtime: the one threads helper and the device resolver."""

import torch

from collabkit.runtime import load_device, resolve_device, threads


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


def test_load_device_falls_back_when_the_saved_device_is_absent():
    assert load_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert load_device("cuda") == torch.device("cpu")
        assert load_device("cuda:1") == torch.device("cpu")


def test_a_model_saved_with_device_cuda_loads_here(tmp_path):
    """issue 9: loading a model saved with device="cuda" on a CPU-only machine raised a bare
    AssertionError (the CLI said "internal error"). The device is resolved at load."""
    import numpy as np

    import collabkit
    from collabkit.testing import planted_low_rank

    data = planted_low_rank(n_users=30, n_items=20, k=2, density=0.4, seed=0).data
    users, items = data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)
    for model in (collabkit.BiasedMF(epochs=1, device="cpu", random_state=0),
                  collabkit.BiasedALS(epochs=1, device="cpu", random_state=0)):
        model.fit(data).set_params(device="cuda")  # as if trained on a GPU machine
        back = collabkit.load_model(model.save(str(tmp_path / model.kind)))
        assert back.device_ == load_device("cuda")
        np.testing.assert_allclose(back.predict_ratings(users, items)[0],
                                   model.predict_ratings(users, items)[0], rtol=1e-6)
