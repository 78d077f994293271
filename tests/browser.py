"""Headless Chromium on a built book, served from loopback with every other host unreachable.

Used by tests/test_browser.py; also runnable by hand to take screenshots of a build:

    .venv/bin/python tests/browser.py _build/html [page.html ...]

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`); selenium is given the
driver's path, so its driver manager never tries to download one.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import book_toc  # noqa: E402  (benchmarks/book_toc.py: the one reader of _toc.yml)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL_HINT = (
    "the browser test needs Debian's Chromium and its driver: `sudo apt-get update && "
    "sudo apt-get install -y --no-install-recommends chromium chromium-driver` (`make setup` does it when run as root)"
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingTCPServer):
    # Chromium keeps idle (preconnected) sockets open; closing the server must not wait for their threads.
    daemon_threads = True
    block_on_close = False


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve a folder on 127.0.0.1 (a free port) for the duration; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with _Server(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[object]:
    """A headless Chromium (selenium driver) that can reach 127.0.0.1 and nothing else, logging every request."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        raise RuntimeError(INSTALL_HINT)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        # Every host name but loopback fails to resolve, so a request for a CDN asset fails and is logged.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: object) -> list[str]:
    """The URLs the page asked for since the last call (from the DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# What the page reports about itself once loaded (run in the browser).
PAGE_REPORT_JS = """
const visible = e => e.getClientRects().length > 0;
const imgs = [...document.querySelectorAll('article img')];
const math = [...document.querySelectorAll('.math')];
const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
return {
  math: math.length,
  math_untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
  math_errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
  images: imgs.length,
  broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
  widget_views: views.length,
  views_drawn: views.filter(v => v.parentElement.querySelector('.jupyter-widgets')).length,
  widgets: [...document.querySelectorAll('.jupyter-widgets')].filter(visible).length,
  widget_errors: document.querySelectorAll('.jupyter-widgets-error, .widget-error').length,
};
"""

# Opens every collapsed <details> (hidden cell inputs: a reader can open them), then marks every visible
# element whose own text has Chinese characters with data-cjk-probe=<i>; returns, per probe, the text and how
# many CJK characters it holds (what one CJK font should have drawn).
MARK_CJK_JS = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const cjk = /[\\u3400-\\u9fff\\uf900-\\ufaff]/g;
const probes = [];
for (const el of document.body.querySelectorAll('*')) {
  if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEXTAREA'].includes(el.tagName)) continue;
  if (!el.checkVisibility({visibilityProperty: true})) continue;
  const own = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join('');
  const n = (own.match(cjk) || []).length;
  if (n) { el.setAttribute('data-cjk-probe', probes.length); probes.push({text: own.trim().slice(0, 40), cjk: n}); }
}
return probes;
"""

# The demos on a page: each top-level widget with a control (a dropdown's <select>, a slider's handle). The
# controls get data-demo-control=<i> (for selenium), their widgets data-demo-skip (left out of what a demo shows).
MARK_DEMOS_JS = """
const roots = [...document.querySelectorAll('.jupyter-widgets')]
  .filter(e => !e.parentElement.closest('.jupyter-widgets'));
const controls = [];
roots.forEach((root, r) => {
  root.setAttribute('data-demo-root', r);
  for (const c of root.querySelectorAll('select, .noUi-handle')) {
    (c.closest('.lm-Widget') || c).setAttribute('data-demo-skip', '');
    c.setAttribute('data-demo-control', controls.length);
    const kind = c.tagName === 'SELECT' ? 'dropdown' : 'slider';
    const options = kind === 'dropdown' ? c.options.length : Number(c.getAttribute('aria-valuemax')) + 1;
    controls.push({root: r, kind: kind, options: options});
  }
});
return controls;
"""

# What a demo shows now: the text and image sources of its visible parts, its controls left out.
DEMO_SHOWS_JS = """
const walk = el => {
  if (el.nodeType === Node.TEXT_NODE) return el.textContent.trim();
  if (el.nodeType !== Node.ELEMENT_NODE || el.hasAttribute('data-demo-skip') || !el.getClientRects().length) return '';
  if (el.tagName === 'IMG') return `[img ${el.src.length}:${el.src.slice(-40)}]`;
  return [...el.childNodes].map(walk).filter(Boolean).join(' ');
};
return walk(document.querySelector(`[data-demo-root="${arguments[0]}"]`));
"""


def wait_until_settled(driver: object, timeout: float = 20.0) -> None:
    """Wait for fonts, MathJax typesetting and widget rendering to finish."""
    import time

    deadline = time.time() + timeout
    driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(true));")
    while time.time() < deadline:
        pending = driver.execute_script(
            "const mj = window.MathJax;"
            "const untypeset = [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'));"
            "const views = [...document.querySelectorAll("
            "  'script[type=\"application/vnd.jupyter.widget-view+json\"]')];"
            "const undrawn = views.filter(v => !v.parentElement.querySelector('.jupyter-widgets')).length;"
            "return untypeset.length > 0 || undrawn > 0"
            "  || (mj && mj.startup && !mj.startup.document);"
        )
        if not pending:
            return
        time.sleep(0.25)


def toc_pages(toc: Path) -> list[str]:
    """Every page of a Jupyter Book's _toc.yml (its root first) as the path of its built HTML file."""
    return [f"{Path(f).with_suffix('')}.html" for f in book_toc.toc_pages(toc)]


def outside_requests(urls: list[str], base: str) -> list[str]:
    """The requested URLs that are neither on the local server nor inline (data:, blob:)."""
    return [u for u in urls if not u.startswith((base + "/", "data:", "blob:", "about:blank"))]


def cjk_fonts(driver: object) -> list[dict]:
    """For each visible element with Chinese text of its own: its CJK character count and the fonts Chromium
    drew its text with (DevTools CSS.getPlatformFontsForNode); `web_font_glyphs` counts the glyphs drawn by the
    book's Noto Sans SC web font. (document.fonts.check passes even when Chinese shows as empty boxes.)"""
    probes = driver.execute_script(MARK_CJK_JS)
    if not probes:
        return []
    driver.execute_cdp_cmd("DOM.enable", {})
    driver.execute_cdp_cmd("CSS.enable", {})
    root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    for i, probe in enumerate(probes):
        node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": f'[data-cjk-probe="{i}"]'})
        fonts = driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
        probe["fonts"] = {f["familyName"] + (" (web)" if f["isCustomFont"] else ""): f["glyphCount"] for f in fonts}
        probe["web_font_glyphs"] = sum(
            f["glyphCount"] for f in fonts if f["isCustomFont"] and f["familyName"].startswith("Noto Sans SC")
        )
    driver.execute_cdp_cmd("CSS.disable", {})
    driver.execute_cdp_cmd("DOM.disable", {})
    return probes


def demo_changes(driver: object, timeout: float = 2.0) -> list[dict]:
    """Move every demo control on the page to another option and record what its demo showed before and after.

    A dropdown gets another option selected (as a reader's click would); a slider's handle gets an arrow key.
    One dict per control: its kind, its number of options, `before`, `after` and `changed`.
    """
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    controls = driver.execute_script(MARK_DEMOS_JS)
    for i, control in enumerate(controls):
        element = driver.find_element(By.CSS_SELECTOR, f'[data-demo-control="{i}"]')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        before = driver.execute_script(DEMO_SHOWS_JS, control["root"])
        if control["kind"] == "dropdown":
            select = Select(element)
            now = [o.get_attribute("index") for o in select.options].index(
                select.first_selected_option.get_attribute("index")
            )
            select.select_by_index((now + 1) % control["options"])
        else:
            at_end = float(element.get_attribute("aria-valuenow")) >= control["options"] - 1
            element.send_keys(Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT)
        deadline = time.time() + timeout
        after = before
        while after == before and time.time() < deadline:
            time.sleep(0.1)
            after = driver.execute_script(DEMO_SHOWS_JS, control["root"])
        control.update(before=before, after=after, changed=after != before)
    return controls


def search_results(driver: object, base: str, query: str, timeout: float = 20.0) -> list[str]:
    """The links (hrefs) Sphinx's search page lists for a query, once its search has finished."""
    import time
    from urllib.parse import quote

    driver.get(f"{base}/search.html?q={quote(query)}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        links = driver.execute_script(
            "const r = document.querySelector('#search-results');"
            "const summary = r && r.querySelector('.search-summary');"
            "if (!summary || !summary.textContent) return null;"
            "return [...r.querySelectorAll('ul.search li a')].map(a => a.getAttribute('href'));"
        )
        if links is not None:
            return links
        time.sleep(0.2)
    raise TimeoutError(f"the search page did not finish searching for {query!r} in {timeout:.0f} s")


def screenshot(driver: object, path: Path) -> None:
    """A PNG of the whole page, at most 16000 px tall: the window is grown so that its viewport holds the
    document (the window's frame is measured, not guessed), then the viewport is saved."""
    width = driver.get_window_size()["width"]
    for _ in range(3):  # growing the window can reflow the page; settle on its height
        inner, height = driver.execute_script(
            "return [window.innerHeight, Math.min(document.documentElement.scrollHeight, 16000)]"
        )
        if inner >= height:
            break
        frame = driver.get_window_size()["height"] - inner
        driver.set_window_size(width, height + frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))


if __name__ == "__main__":
    root = Path(sys.argv[1])
    pages = sys.argv[2:] or [str(p.relative_to(root)) for p in sorted(root.glob("book/*.html"))]
    with serve(root) as base, chromium() as driver:
        for page in pages:
            driver.get(f"{base}/{page}")
            wait_until_settled(driver)
            report = driver.execute_script(PAGE_REPORT_JS)
            report["cjk"] = [(p["text"], p["cjk"], p["fonts"]) for p in cjk_fonts(driver)]
            report["outside"] = outside_requests(requested_urls(driver), base)
            print(page, json.dumps(report, ensure_ascii=False))
            screenshot(driver, root.parent / "screenshots" / (Path(page).stem + ".png"))
            driver.set_window_size(1280, 1000)
