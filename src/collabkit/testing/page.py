"""Driving the onboarding page in a real browser, for its test and for ``docs/screenshot.py``.

Needs ``uvicorn`` (the serve extra) and ``playwright`` (the dev extra), imported only when
called. The browser is the system's ``chromium`` (Debian's package): Playwright's own browser
download is never used.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["CHROMIUM_ARGS", "chromium_path", "serve_in_thread", "launch_chromium",
           "rate_questions"]

#: flags for a headless chromium that never talks to the network by itself
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """``/usr/bin/chromium`` (or whatever ``chromium`` is on PATH), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` under a real uvicorn on a free port of ``host``; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="collabkit-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def launch_chromium(playwright: Any, executable: str | None = None) -> Any:
    """The system chromium, headless, through Playwright."""
    path = executable or chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def rate_questions(page: Any, ratings: Sequence[int], skip: int = 0) -> list[str]:
    """Rate the first ``len(ratings)`` questions of the page with those stars, then skip the
    next ``skip``; the rated item ids. Waits for each rating to be saved."""
    cards = page.locator("#questions li.question")
    rated = []
    for j, stars in enumerate(ratings):
        card = cards.nth(j)
        card.locator(f"button.star[data-value='{stars}']").click()
        card.locator(".mine").filter(has_text="You rated it").wait_for()
        rated.append(str(card.get_attribute("data-item-id")))
    for j in range(len(ratings), len(ratings) + skip):
        card = cards.nth(j)
        card.locator("button.skip").click()
        card.locator(".mine").filter(has_text="Skipped").wait_for()
    return rated
