"""The CLI's progress bar: what it shows around the last epoch."""

from __future__ import annotations

import io

from rich.console import Console

from collabkit.cli import output as out
from collabkit.train.loop import EpochStats


def _bar(monkeypatch, then):
    buf = io.StringIO()
    monkeypatch.setattr(out, "stderr", Console(file=buf, width=200, force_terminal=False))
    return out.EpochProgress(2, enabled=True, then=then), buf


def test_bar_names_the_work_after_the_last_epoch(monkeypatch):
    bar, buf = _bar(monkeypatch, "closed-form passes")
    with bar:
        bar(EpochStats(1, 0.81, 0.93, 0.01, 0.1))
        assert "passes" not in bar._progress.tasks[0].fields["info"]
        bar(EpochStats(2, 0.64, 0.90, 0.001, 0.1))
        assert bar._progress.tasks[0].fields["info"].endswith("closed-form passes...")
    assert "closed-form passes done" in buf.getvalue()
    assert "valid RMSE 0.9000" in buf.getvalue()


def test_bar_without_after_work_is_unchanged(monkeypatch):
    bar, buf = _bar(monkeypatch, None)
    with bar:
        bar(EpochStats(2, 0.64, None, 0.001, 0.1))
    assert "loss 0.6400" in buf.getvalue() and "passes" not in buf.getvalue()
