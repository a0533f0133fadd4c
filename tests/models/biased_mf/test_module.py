import torch

from collabkit.models.biased_mf._module import DotProductBias, sigmoid_range


def test_embedding_lookup_equals_one_hot_matmul():
    """The chapter's point: an embedding is a one-hot row times the weight matrix."""
    m = DotProductBias(7, 5, n_factors=4, init_std=1.0)
    users = torch.tensor([0, 3, 6, 3])
    one_hot = torch.nn.functional.one_hot(users, num_classes=7).float()
    torch.testing.assert_close(one_hot @ m.user_factors.weight, m.user_factors(users))


def test_forward_is_dot_plus_biases_in_range():
    m = DotProductBias(3, 2, n_factors=2, y_range=None)
    with torch.no_grad():
        m.user_factors.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]]))
        m.item_factors.weight.copy_(torch.tensor([[0.5, 0.5], [2.0, 0.0]]))
        m.user_bias.weight.copy_(torch.tensor([[0.1], [0.2], [0.3]]))
        m.item_bias.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    out = m(torch.tensor([0, 2]), torch.tensor([0, 1]))
    # user 0 · item 0 = 1.5, + 0.1 + 1.0; user 2 · item 1 = 6, + 0.3 - 1.0
    torch.testing.assert_close(out, torch.tensor([2.6, 5.3]))
    m.y_range = (0.0, 5.5)
    ranged = m(torch.tensor([0, 2]), torch.tensor([0, 1]))
    torch.testing.assert_close(ranged, sigmoid_range(torch.tensor([2.6, 5.3]), 0.0, 5.5))
    assert bool(((ranged > 0) & (ranged < 5.5)).all())


def test_batch_of_one_keeps_its_dimension():
    m = DotProductBias(3, 3, n_factors=2)
    assert m(torch.tensor([1]), torch.tensor([2])).shape == (1,)
