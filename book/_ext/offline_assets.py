"""Sphinx extension: serve every asset a page needs from the built site, so the book works offline.

MathJax normally comes from a CDN. Here it comes from the pinned PyPI package `django-static-mathjax`
(plain MathJax 3 files), copied into `_static/mathjax/` after the build.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax package; only its static files are used

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _copy_mathjax(app, exception) -> None:  # noqa: ANN001
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    if not (target / "tex-chtml.js").exists():
        shutil.copytree(_mathjax_source(), target, dirs_exist_ok=True)


def setup(app) -> dict:  # noqa: ANN001
    """Register the copy step."""
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
