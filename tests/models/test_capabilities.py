"""models.capabilities: what a model can do is declared on the model (issue 9)."""

from pathlib import Path

import numpy as np
import pytest

import collabkit
from collabkit.errors import NotSupportedError
from collabkit.models import registry
from collabkit.models.capabilities import EmbeddingModel, FactorModel, FactorTables
from collabkit.recommend.coldstart import recommend_new_user
from collabkit.recommend.foldin import fold_in_item, fold_in_user
from collabkit.testing import planted_low_rank

SRC = Path(collabkit.__file__).parent


@pytest.fixture(scope="module")
def data():
    return planted_low_rank(n_users=40, n_items=30, k=2, density=0.4, seed=1).data


def test_capabilities_by_kind():
    factor = {k for k in registry.kinds() if issubclass(registry.get(k), FactorModel)}
    embed = {k for k in registry.kinds() if issubclass(registry.get(k), EmbeddingModel)}
    assert factor == {"dot", "als", "svdpp", "bpmf", "hybrid"}
    assert embed == {"nn", "module"}


@pytest.mark.parametrize("kind", ["dot", "als", "svdpp", "bpmf", "hybrid"])
def test_factor_tables_reproduce_the_scores(kind, data):
    cls = registry.get(kind)
    params = {"random_state": 0}
    params.update({"epochs": 2} if "epochs" in cls._param_names() else {})
    params.update({"n_samples": 5, "burn_in": 2} if kind == "bpmf" else {})
    m = cls(**params).fit(data)
    t = m.factor_tables()
    assert isinstance(t, FactorTables)
    s = (t.user_factors @ t.item_factors.T + t.user_bias[:, None] + t.item_bias[None, :]
         + t.global_bias).double()
    if t.y_range is not None:
        lo, hi = t.y_range
        s = s.sigmoid() * (hi - lo) + lo
    elif t.clip is not None:
        s = s.clamp(*t.clip)
    expect = m.score_users(np.arange(len(m.user_vocab_))).double()
    np.testing.assert_allclose(s.detach().numpy(), expect.numpy(), atol=1e-4)


def test_models_without_the_capability_say_so(data):
    model = collabkit.BiasBaseline().fit(data)
    item = model.item_vocab_.ids([0])[0]
    with pytest.raises(NotSupportedError, match=r"fold-in .*kind 'bias'.* FactorModel"):
        fold_in_user(model, {item: 4.0})
    with pytest.raises(NotSupportedError, match=r"fold_in_item .*kind 'bias'"):
        fold_in_item(model, {0: 4.0})
    with pytest.raises(NotSupportedError, match=r"similar_items .*kind 'bias'"):
        model.similar_items(item)
    # cold start stops at the bias tier instead of failing
    items = model.item_vocab_.ids(np.arange(8)).tolist()
    assert recommend_new_user(model, dict.fromkeys(items, 4.0))["tier"].iloc[0] == "bias"


def test_embedding_model_with_features_refuses_fold_in(data):
    pytest.importorskip("collabkit.models.nn._estimator")
    import pandas as pd

    meta = pd.DataFrame({"genres": ["a|b"] * 30}, index=pd.Index(np.arange(30), name="item"))
    rich = collabkit.Interactions.from_dataframe(data.to_dataframe(), item_meta=meta)
    m = collabkit.MLPRecommender(use_features=True, epochs=1, layers=(8,),
                                 random_state=0).fit(rich)
    with pytest.raises(NotSupportedError, match="use_features=True"):
        m.fold_in({0: 4.0})


def test_no_kind_tests_or_attribute_guessing_outside_the_models():
    """issue 9 Done-when: recommend/ and interpret ask the model, never its kind string."""
    import re

    files = [*sorted((SRC / "recommend").glob("*.py")), *sorted((SRC / "interpret").glob("*.py"))]
    assert len(files) > 5
    bad = [f"{f.name}:{n}" for f in files
           for n, line in enumerate(f.read_text().splitlines(), 1)
           if re.search(r"kind ?==|getattr\(model", line)]
    assert bad == []
