"""How long the onboarding page takes to show ten personal recommendations after the fifth
rating, in a real headless chromium against a real uvicorn (issue 11's "within 2 s").

    .venv/bin/python benchmarks/page_latency.py [--visitors 10]

BiasedMF on the bundled ml-latest-small (trained here, ~10 s). Each visitor is a fresh
browser context: rate four questions, then time from the fifth click until ten personal
recommendations are in the page (Python's clock around Playwright: an upper bound that
includes the driver's round trips). Prints the median and the maximum.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import collabkit
from collabkit.serve import ServeConfig, create_app
from collabkit.testing.page import launch_chromium, rate_questions, serve_in_thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visitors", type=int, default=10)
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    data = collabkit.load_dataset("ml-latest-small", download=False, progress=False)
    model = collabkit.BiasedMF(random_state=0).fit(data)
    took = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(str(Path(tmp) / "model"))
        app = create_app(ServeConfig(model=folder, db=Path(tmp) / "fb.sqlite3",
                                     access_log=False, visitor_burst=1000))
        with serve_in_thread(app) as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            for _ in range(args.visitors):
                context = browser.new_context()
                page = context.new_page()
                page.goto(url + "/")
                expect(page.locator("body[data-ready='yes']")).to_have_count(1, timeout=20_000)
                rate_questions(page, [5, 4, 5, 2])
                t0 = time.perf_counter()
                page.locator("#questions li.question").nth(4).locator(
                    "button.star[data-value='4']").click()
                expect(page.locator("#recs li.rec[data-tier='personal']")).to_have_count(
                    10, timeout=20_000)
                took.append(time.perf_counter() - t0)
                context.close()
            browser.close()
    ms = sorted(1000 * t for t in took)
    print(f"{len(ms)} visitors: fifth rating -> 10 personal recommendations on screen: "
          f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    main()
