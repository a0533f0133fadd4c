"""Model files: no pickle, atomic writes, clear errors for damaged or newer folders."""

import json
import os
import re

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
