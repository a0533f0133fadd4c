"""collabkit similar MODEL TITLE (issue 12): items found by a forgiving title lookup."""

import json

import numpy as np
import pandas as pd
import pytest

import collabkit
from collabkit.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore::collabkit.errors.DataWarning")

TITLES = {1: "Silence of the Lambs, The (1991)", 2: "Star Wars (1977)", 3: "Toy Story (1995)",
          4: "Fargo (1996)"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    rng = np.random.default_rng(1)
    df = pd.DataFrame([(u, i, float(rng.integers(1, 6))) for u in range(20) for i in TITLES],
                      columns=["user", "item", "rating"])
    meta = pd.DataFrame({"title": list(TITLES.values())}, index=pd.Index(list(TITLES)))
    data = collabkit.load_ratings(df, item_meta=meta, rating_range=(1, 5))
    path = tmp_path_factory.mktemp("m") / "model"
    collabkit.BiasedMF(n_factors=2, epochs=1, random_state=0, device="cpu").fit(data) \
        .save(str(path))
    return path


def test_similar_by_title_on_the_cli(model_dir, capsys):  # issue 12
    code = main(["similar", str(model_dir), "silence of the lambs", "--json", "-n", "2"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["item"] == 1 and len(res["similar"]) == 2
    assert 1 not in {r["item"] for r in res["similar"]}


def test_similarity_flag_matches_the_library(model_dir, capsys):  # issue 12
    model = collabkit.load_model(str(model_dir))
    for how in ("ratings", "factors"):
        code = main(["similar", str(model_dir), "star wars", "--json", "--similarity", how,
                     "--min-ratings", "0"])
        res = json.loads(capsys.readouterr().out)
        lib = model.similar_items(2, min_ratings=0, similarity=how)
        assert code == 0 and [r["item"] for r in res["similar"]] == lib["item"].tolist()
        np.testing.assert_allclose([r["similarity"] for r in res["similar"]], lib["similarity"])


def test_unknown_title_is_one_line(model_dir, capsys):  # issue 12
    code = main(["similar", str(model_dir), "casablanca"])
    err = capsys.readouterr().err
    assert code != 0 and "no item id or title matches 'casablanca'" in err
    assert "Traceback" not in err
