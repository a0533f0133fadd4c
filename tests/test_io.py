"""Model files: no pickle, atomic writes, clear errors for damaged or newer folders."""

import json
import os

import numpy as np
import pytest

import collabkit
from collabkit.errors import ModelFileError
from collabkit.io import FORMAT_VERSION, load_model, save_model
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def model():
    return collabkit.BiasedMF(epochs=1, random_state=0).fit(
        planted_low_rank(n_users=30, n_items=20, seed=4).data)


def test_folder_holds_only_safetensors_and_json(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    assert sorted(os.listdir(path)) == ["model.json", "weights.safetensors"]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "dot"
    assert meta["params"]["n_factors"] == 50 and "callback" not in meta["params"]
    assert len(meta["user_vocab"]["ids"]) == 30 and meta["data_fingerprint"]


def test_overwrite_replaces_and_leaves_no_temporaries(model, tmp_path):
    save_model(model, tmp_path / "m")
    save_model(model, tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_failed_write_keeps_old_model_intact(model, tmp_path, monkeypatch):
    path = save_model(model, tmp_path / "m")
    before = (tmp_path / "m" / "weights.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("collabkit.io.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_missing_folder_and_files(model, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope")
    path = save_model(model, tmp_path / "m")
    os.remove(os.path.join(path, "weights.safetensors"))
    with pytest.raises(ModelFileError, match="missing weights.safetensors"):
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
    with open(os.path.join(path, "weights.safetensors"), "wb") as f:
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
