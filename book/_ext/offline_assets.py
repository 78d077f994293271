"""Sphinx extension: serve every asset a page needs from the built site, so the book works offline.

- MathJax 3 from the pinned PyPI package `django-static-mathjax`, into `_static/mathjax/`.
- The standalone ipywidgets renderer (`@jupyter-widgets/html-manager`, npm) into `_static/widgets/embed.js`:
  pages with a demo embed their widget state, and this script renders it and runs its `jslink`s in the
  browser. The standalone bundle renders the standard controls without require.js or a CDN.
- The Noto Sans SC web font (`@fontsource/noto-sans-sc`, npm; SIL OFL) into `_static/fonts/`: one woff2
  file per slice of Unicode, so a page downloads only the slices its Chinese text uses.
- `book/_static/selfsup.css`: the CJK font as the fallback of the theme's fonts, and the demos' styles.

The npm packages are installed by `make setup` (`npm ci` in book/_vendor, pinned by its package-lock.json).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1]
NODE_MODULES = BOOK / "_vendor" / "node_modules"
WIDGETS_JS = NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist" / "embed.js"
FONT_PACKAGE = NODE_MODULES / "@fontsource" / "noto-sans-sc"


def _mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax package; only its static files are used

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _check_vendored(app) -> None:  # noqa: ANN001, ARG001
    missing = [p for p in (WIDGETS_JS, FONT_PACKAGE / "400.css") if not p.exists()]
    if missing:
        raise RuntimeError(
            f"the book's vendored browser assets are missing ({', '.join(str(p) for p in missing)}); "
            "run `make setup` (it runs `npm ci` in book/_vendor; npm comes with Node.js)"
        )


def _cjk_ranges(unicode_range: str) -> str:
    """The parts of a CSS unicode-range at or above U+2E80 (CJK radicals, ideographs, fullwidth forms)."""
    kept = []
    for part in unicode_range.split(","):
        part = part.strip()
        end = part.split("-")[-1].upper().removeprefix("U+")
        if int(end.replace("?", "F"), 16) >= 0x2E80:
            kept.append(part)
    return ",".join(kept)


def font_css(source_css: str) -> str:
    """The fontsource CSS cut to its CJK slices, woff2 only, pointing at `noto-sans-sc/<file>`.

    Cut to CJK, the family can come first in the pages' font lists: Chinese characters take it, and
    everything else falls through to the theme's fonts (a family placed after `system-ui` is not reliably
    reached for a missing glyph: Chromium drew boxes for some Chinese text that way).
    """
    faces = []
    for face in re.findall(r"@font-face\s*{[^}]*}", source_css):
        ranges = _cjk_ranges(re.search(r"unicode-range:\s*([^;]+);", face).group(1))
        if not ranges:
            continue
        face = re.sub(r"unicode-range:\s*[^;]+;", f"unicode-range: {ranges};", face)
        face = re.sub(r",\s*url\(\./files/[^)]+\.woff\) format\('woff'\)", "", face)
        faces.append(face.replace("url(./files/", "url(noto-sans-sc/"))
    return "\n".join(faces) + "\n"


def _copy_assets(app, exception) -> None:  # noqa: ANN001
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for own in (BOOK / "_static").iterdir():  # copied every build (Sphinx keeps an existing static file)
        shutil.copy2(own, static / own.name)
    if not (static / "mathjax" / "tex-chtml.js").exists():
        shutil.copytree(_mathjax_source(), static / "mathjax", dirs_exist_ok=True)
    (static / "widgets").mkdir(parents=True, exist_ok=True)
    shutil.copy2(WIDGETS_JS, static / "widgets" / "embed.js")
    fonts = static / "fonts"
    if not (fonts / "noto-sans-sc.css").exists():
        css = font_css((FONT_PACKAGE / "400.css").read_text())
        (fonts / "noto-sans-sc").mkdir(parents=True, exist_ok=True)
        for name in re.findall(r"url\(noto-sans-sc/([^)]+)\)", css):
            shutil.copy2(FONT_PACKAGE / "files" / name, fonts / "noto-sans-sc" / name)
        shutil.copy2(FONT_PACKAGE / "LICENSE", fonts / "noto-sans-sc" / "LICENSE")
        (fonts / "noto-sans-sc.css").write_text(css)


def setup(app) -> dict:  # noqa: ANN001
    """Register the static folder, the stylesheets and the copy step."""
    app.connect("builder-inited", _check_vendored)
    app.connect("build-finished", _copy_assets)
    app.add_css_file("fonts/noto-sans-sc.css")
    app.add_css_file("selfsup.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
