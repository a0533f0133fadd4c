"""``collabkit serve`` refuses bad arguments with one line naming the flag (issue 10)."""

from __future__ import annotations

from collabkit.cli.main import main


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_missing_model_folder(capsys, tmp_path) -> None:
    code, err = run(capsys, "serve", tmp_path / "nope", "--db", tmp_path / "db.sqlite3")
    assert code == 6
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err


def test_bad_workers_and_port(capsys, small_model_dir, tmp_path) -> None:
    code, err = run(capsys, "serve", small_model_dir, "--workers", "0")
    assert code == 2 and "--workers must be at least 1" in err
    code, err = run(capsys, "serve", small_model_dir, "--port", "70000")
    assert code == 2 and "--port" in err
    code, err = run(capsys, "serve", small_model_dir, "--cache-size", "-1")
    assert code == 2 and "--cache-size must be 0 (off) or more" in err
    code, err = run(capsys, "serve", small_model_dir, "--min-personal", "0", "--db",
                    tmp_path / "db.sqlite3")
    assert code == 2 and "--min-personal must be at least 1, got 0" in err  # issue 11


def test_db_that_is_a_folder_or_not_sqlite(capsys, small_model_dir, tmp_path) -> None:
    code, err = run(capsys, "serve", small_model_dir, "--db", tmp_path)
    assert code == 2 and "--db" in err and "is a folder" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    code, err = run(capsys, "serve", small_model_dir, "--db", notes)
    assert code == 2 and "not a usable SQLite database" in err
    assert notes.read_text() == "not a database\n" * 50


def test_short_app_key_is_refused(capsys, small_model_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COLLABKIT_API_KEY", "short")
    code, err = run(capsys, "serve", small_model_dir, "--db", tmp_path / "db.sqlite3")
    assert code == 2 and "COLLABKIT_API_KEY is shorter than 16 characters" in err
    assert "short" not in err.replace("shorter", "")
