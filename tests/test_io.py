"""Model files: no pickle, atomic writes, clear errors for damaged or newer folders."""

import json
import os
import re

import numpy as np
import pytest
import torch

import collabkit
from collabkit.errors import ModelFileError
from collabkit.io import FORMAT_VERSION
from collabkit.models.persist import load_model, save_model
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def model():
    return collabkit.BiasedMF(epochs=1, random_state=0).fit(
        planted_low_rank(n_users=30, n_items=20, seed=4).data)


def _weights(folder):
    return (folder / json.loads((folder / "model.json").read_text())["weights"])


def test_folder_holds_only_safetensors_and_json(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    names = sorted(os.listdir(path))
    assert names[:2] == [".collabkit.lock", "model.json"] and len(names) == 3
    assert re.fullmatch(r"weights-[0-9a-f]{32}\.safetensors", names[2])
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "dot"
    assert meta["weights"] == names[2]
    assert meta["params"]["n_factors"] == 50 and "callback" not in meta["params"]
    assert len(meta["user_vocab"]["ids"]) == 30 and meta["data_fingerprint"]


def test_overwrite_replaces_and_leaves_no_temporaries(model, tmp_path):
    for _ in range(4):
        save_model(model, tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == ["m"]
    names = sorted(os.listdir(tmp_path / "m"))
    # the lock, model.json, the current weights and the previous ones (for a slow reader)
    assert len(names) == 4 and not any(n.startswith(".collabkit-tmp") for n in names)


def test_failed_write_keeps_old_model_intact(model, tmp_path, monkeypatch):
    path = save_model(model, tmp_path / "m")
    before = {n: (tmp_path / "m" / n).read_bytes() for n in os.listdir(path)}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("collabkit.io.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert {n: (tmp_path / "m" / n).read_bytes() for n in os.listdir(path)} == before
    assert sorted(os.listdir(tmp_path)) == ["m"]
    load_model(path)


def test_missing_folder_and_files(model, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope")
    path = save_model(model, tmp_path / "m")
    weights = _weights(tmp_path / "m")
    os.remove(weights)
    with pytest.raises(ModelFileError, match=f"incomplete: missing {weights.name}"):
        load_model(path)
    os.remove(tmp_path / "m" / "model.json")
    with pytest.raises(ModelFileError, match="incomplete: missing model.json"):
        load_model(path)


def test_newer_format_refused(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    meta_path = os.path.join(path, "model.json")
    meta = json.load(open(meta_path))
    meta["format_version"] = FORMAT_VERSION + 1
    meta["collabkit_version"] = "99.0"
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(ModelFileError, match="collabkit 99.0.*Upgrade collabkit"):
        load_model(path)


def test_corrupt_files(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    with open(_weights(tmp_path / "m"), "wb") as f:
        f.write(b"not a tensor file")
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(path)
    path = save_model(model, tmp_path / "m2")
    with open(os.path.join(path, "model.json"), "w") as f:
        f.write("{ truncated")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)


def test_round_trip_identical(model, tmp_path):
    back = load_model(save_model(model, tmp_path / "m"))
    users = model.user_vocab_.all_ids
    items = np.resize(model.item_vocab_.all_ids, users.size)
    np.testing.assert_array_equal(back.predict_ratings(users, items)[0],
                                  model.predict_ratings(users, items)[0])
    assert back.history_ == model.history_


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "model.json").read_text())
    meta.update(changes)
    (folder / "model.json").write_text(json.dumps(meta))
    return meta


def test_reversed_rating_range_is_refused(model, tmp_path):  # issue 8: accepted, changed scores
    path = save_model(model, tmp_path / "m")
    _edit_meta(tmp_path / "m", rating_range=[5.0, 1.0])
    with pytest.raises(ModelFileError, match=r"model.json': field rating_range is \[5.0, 1.0\]; "
                       "expected \\[low, high\\] with finite low < high"):
        load_model(path)
    _edit_meta(tmp_path / "m", rating_range=[1.0, "Infinity"])
    with pytest.raises(ModelFileError, match="field rating_range"):
        load_model(path)


def test_inconsistent_fields_are_named(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    _edit_meta(tmp_path / "m", user_vocab={"kind": "int", "ids": meta["user_vocab"]["ids"][:-1]})
    with pytest.raises(ModelFileError, match=r"weights-.*safetensors': tensor base.user_bias has "
                       r"shape \(30,\) but model.json field user_vocab has 29 ids"):
        load_model(path)
    _edit_meta(tmp_path / "m", user_vocab=meta["user_vocab"], global_mean=None)
    with pytest.raises(ModelFileError, match="field global_mean is None"):
        load_model(path)
    _edit_meta(tmp_path / "m", global_mean=meta["global_mean"], weights="../../etc/passwd")
    with pytest.raises(ModelFileError, match="field 'weights' is '../../etc/passwd'"):
        load_model(path)


def test_folder_from_format_1_still_loads_and_is_replaced(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    folder = tmp_path / "m"
    weights = _weights(folder)
    os.rename(weights, folder / "weights.safetensors")  # the layout of collabkit 0.1
    meta = json.loads((folder / "model.json").read_text())
    del meta["weights"]
    meta["format_version"] = 1
    (folder / "model.json").write_text(json.dumps(meta))
    os.remove(folder / ".collabkit.lock")
    users = model.user_vocab_.all_ids
    items = np.resize(model.item_vocab_.all_ids, users.size)
    np.testing.assert_array_equal(load_model(path).predict_ratings(users, items)[0],
                                  model.predict_ratings(users, items)[0])
    save_model(model, path)
    assert (folder / "weights.safetensors").exists()  # kept while a reader may still open it
    save_model(model, path)
    assert not (folder / "weights.safetensors").exists()
    load_model(path)


def test_model_saved_on_cuda_loads_where_there_is_none(model, tmp_path):  # issue 9
    path = save_model(model, tmp_path / "m")
    assert _edit_meta(tmp_path / "m")["params"]["device"] == "auto"
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["params"]["device"] = "cuda"
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    back = load_model(path)
    assert back.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
    users = model.user_vocab_.all_ids
    items = np.resize(model.item_vocab_.all_ids, users.size)
    np.testing.assert_allclose(back.predict_ratings(users, items)[0],
                               model.predict_ratings(users, items)[0], rtol=1e-5)
    assert load_model(path, device="cpu").device_.type == "cpu"  # or chosen explicitly


def test_unknown_or_malformed_kind_is_named(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    for kind in ("word2vec", ["dot"]):
        _edit_meta(tmp_path / "m", kind=kind)
        with pytest.raises(ModelFileError, match="holds a model of kind .*which this collabkit "
                           "does not know"):
            load_model(path)
