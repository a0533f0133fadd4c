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
    assert "loss 0.640 valid 0.810 RMSE 0.900" in buf.getvalue()  # issue 12: MSE beside RMSE


def test_bar_without_after_work_is_unchanged(monkeypatch):
    bar, buf = _bar(monkeypatch, None)
    with bar:
        bar(EpochStats(2, 0.64, None, 0.001, 0.1))
    assert "loss 0.6400" in buf.getvalue() and "passes" not in buf.getvalue()


# issue 8: CLI errors give CLI advice; the library keeps naming Python arguments
def test_cli_message_turns_python_arguments_into_flags():
    msg = out.cli_message
    assert msg("pass timestamp_col=False to ignore timestamps") == (
        "pass --no-timestamp to ignore timestamps")
    assert msg("It looks ';'-separated: pass sep=';' (or sep=None to detect the separator).") == (
        "It looks ';'-separated: pass --sep ';' (or no --sep to detect the separator).")
    assert msg("name the columns with user_col=, item_col=, rating_col=.") == (
        "name the columns with --user-col, --item-col, --rating-col.")
    assert msg('pass encoding="latin-1" (or') == "pass --encoding latin-1 (or"
    assert msg("outside rating_range=(1, 5). Fix the data, or widen rating_range.") == (
        "outside --rating-range 1,5. Fix the data, or widen --rating-range.")
    assert msg("Check the path, or pass a DataFrame.") == "Check the path."
    assert msg("Lower the learning rate (lr=1e+06) or raise the weight decay (wd=0.1).") == (
        "Lower the learning rate (--lr 1e+06) or raise the weight decay (--wd 0.1).")
    assert msg("raise the regularisation (reg=0.1)") == "raise the regularisation (--param reg=0.1)"
    assert msg("fewer n_factors; header=True if") == "fewer --factors; --header if"


def test_issue13_a_model_parameter_opening_a_message_is_named_as_its_param_flag():
    msg = out.cli_message
    assert msg("alpha must be a number >= 0, got -1") == (
        "--param alpha must be a number >= 0, got -1")
    assert msg("materialize must be True, False or 'auto', got 'x'") == (
        "--param materialize must be True, False or 'auto', got 'x'")
    assert msg("n_factors must be a positive integer, got 0") == (
        "--factors must be a positive integer, got 0")
    assert msg("trials must be a whole number >= 1") == "trials must be a whole number >= 1"
    assert msg("recency must be a number of interactions > 0, or None; got 0") == (
        "--param recency must be a number of interactions > 0, or None; got 0")
    assert msg("no timestamps; pass data with a timestamp column, or leave recency=None") == (
        "no timestamps; pass data with a timestamp column, or leave out --param recency")
    assert msg("every trial of 'itemknn' failed; the first: shrink must be >= 0") == (
        "every trial of 'itemknn' failed; the first: --param shrink must be >= 0")


def test_issue9_cli_message_leaves_text_in_cli_words_alone():
    text = "e.g. --param n_factors=40; it takes --param random_state, --param batch_size"
    assert out.cli_message(text) == text


def test_cli_message_leaves_ordinary_words_alone():
    text = "the separator is odd; a header line; 3 epochs; encoding problems"
    assert out.cli_message(text) == text
