"""The book builds from a cold cache with every page executed, no warnings, and no asset from the network."""

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run(
        [str(JB), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return out / "_build" / "html", proc.stdout


@pytest.mark.slow
def test_book_builds_and_every_page_executes(built_book):
    html_dir, log = built_book
    pages = sorted(html_dir.glob("book/*.html"))
    assert pages, "no page was built"
    intro = (html_dir / "book" / "intro.html").read_text()
    # the title page's live check ran and printed its ✓ lines
    assert intro.count("✓ untrained") == 2


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
    proc = subprocess.run(
        [str(JB), "build", str(tmp_path), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "two is one" in proc.stdout + proc.stderr
