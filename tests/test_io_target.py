"""Issue 8, data loss: what a save may replace (only a collabkit model folder), the writer
lock, leftovers and permissions."""

import json
import os
import stat
import threading

import pytest

import collabkit
from collabkit._modelfolder import writer_lock
from collabkit.errors import ConfigError, ModelBusyError, ModelFileError
from collabkit.io import check_save_target
from collabkit.models.persist import load_model, save_model
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def model():
    return collabkit.BiasedMF(n_factors=4, epochs=1, random_state=0).fit(
        planted_low_rank(n_users=30, n_items=20, seed=4).data)


def _tree(root):
    """Every path under ``root`` with its bytes (files) or None (folders)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root)] = None
        for n in files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


@pytest.fixture
def project(tmp_path):
    """The folder from the issue: data, notes and a runs/ folder with another model."""
    p = tmp_path / "p"
    (p / "data").mkdir(parents=True)
    (p / "data" / "ratings.csv").write_text("user,item,rating\n1,1,5\n")
    (p / "notes.tex").write_text("x\n")
    return p


def test_project_folder_is_refused_and_untouched(model, project):  # issue 8: rmtree of ~/p
    save_model(model, project / "runs" / "other")
    before = _tree(project)
    with pytest.raises(ConfigError, match=r"path '.*/p' is a folder that is not empty and is "
                       r"not a collabkit model folder \(it holds data, notes.tex, runs\)"):
        save_model(model, project)
    assert _tree(project) == before


def test_working_directory_is_refused(model, tmp_path, monkeypatch):  # issue 8: --out .
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="'.' is the working directory"):
        save_model(model, ".")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)  # even an empty working directory
    with pytest.raises(ConfigError, match="working directory"):
        save_model(model, os.getcwd())
    assert os.listdir(empty) == [] and (tmp_path / "keep.txt").read_text() == "mine"


def test_existing_file_is_refused_not_moved(model, tmp_path):  # issue 8: file -> .NAME.old
    f = tmp_path / "notes.tex"
    f.write_text("thesis")
    for _ in range(2):
        with pytest.raises(ConfigError, match="'.*notes.tex' is an existing file"):
            save_model(model, f)
    assert sorted(os.listdir(tmp_path)) == ["notes.tex"] and f.read_text() == "thesis"
    with pytest.raises(ConfigError, match="notes.tex' is a file"):
        save_model(model, f / "model")  # a file in the middle of the path


def test_foreign_model_json_is_refused(model, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text('{"layers": 3}')
    with pytest.raises(ConfigError, match="not a collabkit model's"):
        save_model(model, tmp_path / "m")
    assert os.listdir(tmp_path / "m") == ["model.json"]


def test_new_empty_and_model_folders_are_accepted(model, tmp_path):
    (tmp_path / "empty").mkdir()
    save_model(model, tmp_path / "empty")
    save_model(model, tmp_path / "a" / "b" / "new")  # parents are created
    load_model(tmp_path / "empty"), load_model(tmp_path / "a" / "b" / "new")


def test_save_keeps_a_users_own_files_in_a_model_folder(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    (tmp_path / "m" / "README.txt").write_text("trained on the May data")
    (tmp_path / "m" / "plots").mkdir()
    for _ in range(3):
        save_model(model, path)
    assert (tmp_path / "m" / "README.txt").read_text() == "trained on the May data"
    assert (tmp_path / "m" / "plots").is_dir()


def test_symlink_to_model_folder_saves_repeatedly(model, tmp_path):  # issue 8
    real = tmp_path / "real"
    save_model(model, real)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    for _ in range(3):
        assert save_model(model, tmp_path / "link") == str(tmp_path / "link")
        load_model(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and sorted(os.listdir(tmp_path)) == ["link", "real"]
    (tmp_path / "to-file").symlink_to(tmp_path / "real" / "model.json")
    with pytest.raises(ConfigError, match=r"'.*to-file' \(-> '.*model.json'\) is an existing file"):
        save_model(model, tmp_path / "to-file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_read_only_folder_is_refused_before_writing(model, tmp_path):  # issue 8
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ModelFileError, match="cannot write to"):
            check_save_target(ro / "m")
    finally:
        ro.chmod(0o755)


def test_unwritable_place_is_refused(model, tmp_path, monkeypatch):  # issue 8: read-only --out
    save_model(model, tmp_path / "m")
    real_access = os.access  # what a read-only mount or folder reports for writes
    monkeypatch.setattr(os, "access", lambda p, mode: not mode & os.W_OK and real_access(p, mode))
    with pytest.raises(ModelFileError, match="'.*m' is a model folder this user cannot write"):
        check_save_target(tmp_path / "m")
    with pytest.raises(ModelFileError, match="cannot be created: this user cannot write to"):
        check_save_target(tmp_path / "new", arg="--out")


def test_check_names_the_interface_argument(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match=r"^--out '.*f' is an existing file.*give --out a new"):
        check_save_target(tmp_path / "f", arg="--out")


def test_concurrent_writer_gets_a_clear_busy_error(model, tmp_path):  # issue 8
    path = save_model(model, tmp_path / "m")
    with writer_lock(tmp_path / "m"):
        with pytest.raises(ModelBusyError, match=f"being saved by another process "
                           f"\\(pid {os.getpid()}\\); try again"):
            save_model(model, path)
    save_model(model, path)  # released with the holder


def test_writer_threads_get_busy_or_succeed_never_oserror(model, tmp_path):  # issue 8
    save_model(model, tmp_path / "m")
    errors = []

    def write():
        for _ in range(15):
            try:
                save_model(model, tmp_path / "m")
            except ModelBusyError:
                pass
            except Exception as e:  # the raw OSError of the issue
                errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    load_model(tmp_path / "m")


def test_crash_before_commit_keeps_old_model_and_next_save_cleans_up(model, tmp_path,
                                                                     monkeypatch):  # issue 8
    path = save_model(model, tmp_path / "m")
    old_meta = (tmp_path / "m" / "model.json").read_text()
    real_replace = os.replace

    def die_at_commit(src, dst):
        if str(dst).endswith("model.json"):
            raise KeyboardInterrupt  # stands in for a kill between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_at_commit)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path)
    monkeypatch.undo()
    assert (tmp_path / "m" / "model.json").read_text() == old_meta
    load_model(path)
    # leftovers of a save killed with SIGKILL (no cleanup ran): a temp folder and file, an
    # orphaned weights file; the next save removes them and nothing else
    (tmp_path / "m" / (".collabkit-tmp-" + "a" * 32)).mkdir()
    (tmp_path / "m" / (".collabkit-tmp-" + "a" * 32) / "weights.safetensors").write_text("x")
    (tmp_path / "m" / (".collabkit-tmp-" + "b" * 32 + ".json")).write_text("{")
    (tmp_path / "m" / ("weights-" + "c" * 32 + ".safetensors")).write_text("x")
    (tmp_path / "m" / ".collabkit-tmp-mine").write_text("not a name collabkit makes")
    save_model(model, path)
    names = sorted(os.listdir(tmp_path / "m"))
    assert [n for n in names if not n.startswith("weights-")] == [
        ".collabkit-tmp-mine", ".collabkit.lock", "model.json"]
    assert len([n for n in names if n.startswith("weights-")]) == 2  # current + previous


def test_saved_files_get_the_usual_permissions(model, tmp_path):  # issue 8: 0700/0600
    old = os.umask(0o022)
    try:
        save_model(model, tmp_path / "new" / "m")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "new") == 0o755 and mode(tmp_path / "new" / "m") == 0o755
    for name in os.listdir(tmp_path / "new" / "m"):
        assert mode(tmp_path / "new" / "m" / name) == 0o644, name
    meta = json.loads((tmp_path / "new" / "m" / "model.json").read_text())
    assert mode(tmp_path / "new" / "m" / meta["weights"]) == 0o644
