"""The book builds with every page executed, no warnings, and no asset from the network.

The build itself is the session fixture `built_book` (tests/conftest.py), shared with tests/test_browser.py.
"""

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import toc_pages

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")


class _Assets(HTMLParser):
    """Collect the URLs a page loads by itself (scripts, styles, images, fonts), not the links a reader clicks."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "audio", "video", "source") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") not in ("canonical",):
            self.urls.append(a["href"])


def remote_assets(html: str) -> list[str]:
    """The assets of a page that would come from another host."""
    p = _Assets()
    p.feed(html)
    return [u for u in p.urls if u.startswith(("http://", "https://", "//"))]


def test_remote_asset_finder_catches_a_cdn_script():
    page = '<script src="https://cdn.example.org/x.js"></script><link rel="stylesheet" href="_static/a.css">'
    assert remote_assets(page) == ["https://cdn.example.org/x.js"]


@pytest.mark.slow
def test_book_builds_and_every_page_executes(built_book):
    html_dir, log = built_book
    pages = sorted(html_dir.glob("book/*.html"))
    assert pages, "no page was built"
    intro = (html_dir / "book" / "intro.html").read_text()
    # the title page's live check ran and printed its ✓ lines
    assert intro.count("✓ untrained") == 2
    missing = [p for p in toc_pages(ROOT / "_toc.yml") if not (html_dir / p).is_file()]
    assert not missing, f"pages of _toc.yml that were not built: {missing}"
    for chapter in ("ch1-bert", "ch2-four-uses"):
        text = (html_dir / "book" / f"{chapter}.html").read_text()
        assert text.count("✓ ") >= 3, f"{chapter}: its live checks did not print their ✓ lines"
    # A figure with a character its font lacks draws a box; matplotlib says so in the cell's output.
    tofu = [p.name for p in pages if "missing from font" in p.read_text()]
    assert not tofu, f"figures with glyphs missing from their fonts: {tofu}"


@pytest.mark.slow
def test_book_loads_nothing_from_the_network(built_book):
    html_dir, _ = built_book
    offenders = {p.name: remote_assets(p.read_text()) for p in html_dir.rglob("*.html")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"pages load assets from the network: {offenders}"
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.slow
def test_a_broken_expectation_fails_the_build(tmp_path):
    """The book's promise: a claim that does not hold in this build stops the build."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    header = (ROOT / "book" / "intro.md").read_text().split("---")[1]
    cell = "```{code-cell} ipython3\nfrom selfsup.experiments import expect\nexpect('two is one', 2 == 1)\n```\n"
    (tmp_path / "book" / "page.md").write_text(f"---{header}---\n\n# A page\n\n{cell}")
    (tmp_path / "book" / "_ext").mkdir()
    (tmp_path / "book" / "_ext" / "offline_assets.py").write_text((ROOT / "book/_ext/offline_assets.py").read_text())
    for shared in ("_vendor", "_static", "references.bib"):  # what the config and the extension read
        (tmp_path / "book" / shared).symlink_to(ROOT / "book" / shared)
    proc = subprocess.run(
        [str(JB), "build", str(tmp_path), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "two is one" in proc.stdout + proc.stderr
