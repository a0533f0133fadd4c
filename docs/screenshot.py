"""Regenerate docs/onboarding.png: the onboarding page after five ratings and one skip.

    .venv/bin/python docs/screenshot.py [--out docs/onboarding.png]

Trains BiasedMF on the bundled ml-latest-small (about half a minute on 2 cores), serves it on
127.0.0.1 with a throwaway feedback database, and drives Debian's chromium through Playwright
(the dev extra; no `playwright install`): rate the first five questions 5, 4, 5, 3, 4 stars,
skip the sixth, wait for the ten personal recommendations, save a full-page screenshot.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import collabkit
from collabkit.serve import ServeConfig, create_app
from collabkit.testing.page import launch_chromium, rate_questions, serve_in_thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("onboarding.png")))
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    data = collabkit.load_dataset("ml-latest-small", download=False, progress=False)
    model = collabkit.BiasedMF(random_state=0).fit(data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(str(Path(tmp) / "model"))
        app = create_app(ServeConfig(model=folder, db=Path(tmp) / "fb.sqlite3",
                                     access_log=False))
        with serve_in_thread(app) as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(url + "/")
            expect(page.locator("body[data-ready='yes']")).to_have_count(1, timeout=20_000)
            rate_questions(page, [5, 4, 5, 3, 4], skip=1)
            expect(page.locator("#recs li.rec[data-tier='personal']")).to_have_count(10)
            page.mouse.move(0, 0)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
