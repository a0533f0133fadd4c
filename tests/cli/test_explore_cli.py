"""inspect / similar / explain / plot / lr-find / onboard / recommend --rate from a saved model."""

import json

import pytest

from collabkit.cli.main import main

pytestmark = pytest.mark.needs_data("ml-100k")  # every test here uses a model trained on u1


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "u1"
    assert main(["train", "--dataset", "ml-100k", "--split", "u1", "--out", str(path),
                 "--quiet"]) == 0
    return path


def run_json(capsys, *args):
    code = main([str(a) for a in args] + ["--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return json.loads(cap.out)


def test_inspect_writes_readable_pngs(model_dir, tmp_path, capsys):
    res = run_json(capsys, "inspect", model_dir, "--pca-png", tmp_path / "pca.png",
                   "--curves-png", tmp_path / "curves.png")
    ends = {r["end"] for r in res["item_biases"]}
    assert len(ends) == 2 and len(res["item_biases"]) == 20
    assert len(res["pca"]["explained_variance_ratio"]) == 3
    for key in ("pca_png", "curves_png"):
        assert open(res[key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_similar_star_wars_finds_its_sequels(model_dir, capsys):
    res = run_json(capsys, "similar", model_dir, 50, "-n", 10)  # 50 = Star Wars (1977)
    titles = [r["title"] for r in res["similar"]]
    assert any("Return of the Jedi" in t or "Empire Strikes Back" in t for t in titles)


def test_explain_terms_add_up(model_dir, capsys):
    res = run_json(capsys, "explain", model_dir, 1, 50)
    total = res["global_bias"] + res["user_bias"] + res["item_bias"] + res["dot"]
    assert total == pytest.approx(res["raw"], abs=1e-4)
    assert 1 <= res["prediction"] <= 5.5


def test_new_user_by_ratings_and_genres(model_dir, capsys):
    rates = [f"--rate={i}=5" for i in (50, 172, 181, 174, 173, 195)]
    res = run_json(capsys, "recommend", model_dir, *rates, "-n", 5)
    recs = res["recommendations"]
    assert {r["tier"] for r in recs} == {"personal"} and len(recs) == 5
    assert not {50, 172, 181, 174, 173, 195} & {r["item"] for r in recs}
    res = run_json(capsys, "recommend", model_dir, "--genres", "Sci-Fi", "-n", 5)
    assert len(res["recommendations"]) == 5
    res = run_json(capsys, "onboard", model_dir, "-n", 5)
    assert len({r["item"] for r in res["items"]}) == 5


def test_plot_and_lr_find(model_dir, tmp_path, capsys):
    res = run_json(capsys, "plot", model_dir, "--png", tmp_path / "c.png")
    assert open(res["png"], "rb").read(4) == b"\x89PNG"
    res = run_json(capsys, "lr-find", "--dataset", "ml-100k", "--model", model_dir, "--png",
                   tmp_path / "lr.png")
    assert 1e-6 < res["suggestion"] < 1 and open(res["png"], "rb").read(4) == b"\x89PNG"
