"""The onboarding page in a real browser (issue 11): Playwright driving the system chromium
against a real uvicorn on 127.0.0.1. Set ``COLLABKIT_SCREENSHOT=PATH`` to also save the page
after five ratings (``docs/screenshot.py`` makes the README's, on a bigger model)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collabkit.testing.page import chromium_path, launch_chromium, rate_questions, serve_in_thread

if chromium_path() is None:  # one skip line for the whole module
    pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def xss_model_dir(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small model with a catalog title that is an HTML injection attempt."""
    import collabkit

    model = collabkit.load_model(small_model_dir)
    meta = model.item_meta_
    row = int(model.item_vocab_.index([1])[0])  # Toy Story (1995), one of the most rated
    meta.loc[meta.index[row], "title"] = f"Toy Story {XSS} (1995)"
    return Path(model.save(str(tmp_path_factory.mktemp("page") / "model")))


@pytest.fixture(scope="module")
def served(xss_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    from collabkit.serve import ServeConfig, create_app

    db = tmp_path_factory.mktemp("pagedb") / "fb.sqlite3"
    app = create_app(ServeConfig(model=xss_model_dir, db=db, access_log=False,
                                 served_log_interval=0.1))
    with serve_in_thread(app) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


def _db_rows(db: Path, table: str, user: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?",
                                (user,)).fetchone()[0])
    finally:
        conn.close()


def test_page_headers_and_files(served: tuple[str, Path]) -> None:
    import httpx

    url, _ = served
    r = httpx.get(url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "default-src 'none'" in csp and "unsafe" not in csp
    assert "<script src=\"/static/app.js\"" in r.text and "<style" not in r.text
    assert httpx.get(url + "/static/app.js").headers["content-type"].startswith(
        "text/javascript")
    assert httpx.get(url + "/static/app.css").headers["content-type"].startswith("text/css")
    assert httpx.get(url + "/static/../app.py").status_code == 404
    assert httpx.get(url + "/static/store.py").status_code == 404
    js = httpx.get(url + "/static/app.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js


def test_new_visitor_rates_gets_personal_recommendations_reloads_and_forgets(
        served: tuple[str, Path], browser: Any) -> None:
    expect = sync_api.expect
    url, db = served
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.text} {m.location}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    expect(page.locator("body[data-ready='yes']")).to_have_count(1, timeout=10_000)
    expect(page.locator("#questions li.question")).to_have_count(12)
    assert page.locator("#questions li.question .meta").first.text_content()  # year, genres
    user = page.evaluate("JSON.parse(localStorage.getItem('collabkit.visitor')).user_id")

    rated = rate_questions(page, [5, 4, 5, 2], skip=0)
    skipped_card = page.locator("#questions li.question").nth(4)
    skipped = skipped_card.get_attribute("data-item-id")
    skipped_card.locator("button.skip").click()
    last = page.locator("#questions li.question").nth(5)
    last.locator("button.star[data-value='4']").click()
    # the fifth rating makes the tier personal: ten personal recommendations within 2 s
    recs = page.locator("#recs li.rec[data-tier='personal']")
    expect(recs).to_have_count(10, timeout=2_000)
    rated.append(str(last.get_attribute("data-item-id")))
    rec_ids = [recs.nth(j).get_attribute("data-item-id") for j in range(10)]
    assert not set(rec_ids) & set(rated) and skipped not in rated
    assert all(t == "personal" for t in recs.locator(".tier").all_text_contents())
    reasons = recs.locator(".reason").all_text_contents()
    assert len(reasons) == 10 and all(reasons)
    assert any(r.startswith("because you rated ") for r in reasons), reasons
    if os.environ.get("COLLABKIT_SCREENSHOT"):
        page.screenshot(path=os.environ["COLLABKIT_SCREENSHOT"], full_page=True)
    assert _db_rows(db, "feedback", user) == 5

    # a reload keeps the visitor and their five ratings
    page.reload()
    expect(page.locator("body[data-ready='yes']")).to_have_count(1, timeout=10_000)
    assert page.evaluate(
        "JSON.parse(localStorage.getItem('collabkit.visitor')).user_id") == user
    expect(page.locator("#rated li.rated-item")).to_have_count(5)
    assert sorted(page.locator("#rated li.rated-item").evaluate_all(
        "els => els.map(e => e.dataset.itemId)")) == sorted(rated)
    expect(page.locator("#recs li.rec[data-tier='personal']")).to_have_count(10)

    # a title with HTML in it is text, everywhere it shows; no dialog opens
    page.fill("#search-q", "onerror")
    page.press("#search-q", "Enter")
    hit = page.locator("#search-results li.question .title")
    expect(hit).to_have_count(1)
    assert XSS in str(hit.text_content())
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []

    # forget me deletes the rows on the server
    deadline = time.monotonic() + 10
    while _db_rows(db, "served", user) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # the served-list log is written in the background
    assert _db_rows(db, "served", user) > 0
    page.click("#forget")
    expect(page.locator("#forget-confirm")).to_be_visible()
    page.click("#forget-yes")
    expect(page.locator("#status")).to_contain_text("Deleted 5 ratings")
    assert _db_rows(db, "feedback", user) == 0
    assert _db_rows(db, "requests", user) == 0 and _db_rows(db, "visitors", user) == 0
    assert _db_rows(db, "served", user) == 0
    expect(page.locator("#rated li.rated-item")).to_have_count(0)
    assert page.evaluate(
        "JSON.parse(localStorage.getItem('collabkit.visitor')).user_id") != user
    assert problems == [] and dialogs == []
    page.close()


def test_page_is_keyboard_usable_at_phone_width(served: tuple[str, Path], browser: Any
                                                ) -> None:
    expect = sync_api.expect
    url, _ = served
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(url + "/")
    expect(page.locator("body[data-ready='yes']")).to_have_count(1, timeout=10_000)
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # every button has an accessible name; the star groups are labelled
    unnamed = page.locator("button").evaluate_all(
        "bs => bs.filter(b => !(b.getAttribute('aria-label') || b.textContent.trim()))"
        ".length")
    assert unnamed == 0
    group = page.locator("#questions li.question").first.locator("[role='group']")
    assert str(group.get_attribute("aria-label")).startswith("Your rating of ")
    # rate with the keyboard only: focus a star, press Enter
    star = page.locator("#questions li.question").first.locator("button.star[data-value='3']")
    star.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#questions li.question").first.locator(".mine")).to_contain_text(
        "You rated it 3 stars")
    expect(page.locator("#recs-hint")).to_contain_text("Rate 2 more films")
    # the genre start, by keyboard: open it, tick Comedy, submit
    page.locator("#genre-box summary").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Comedy", exact=True).focus()
    page.keyboard.press("Space")
    page.locator("#genre-go").focus()
    page.keyboard.press("Enter")
    recs = page.locator("#recs li.rec[data-tier='genre']")
    expect(recs).to_have_count(10)
    assert set(recs.locator(".reason").all_text_contents()) == {"because you like Comedy"}
    page.reload()  # the chosen genres are kept with the visitor
    expect(page.locator("#recs li.rec[data-tier='genre']")).to_have_count(10)
    page.close()
