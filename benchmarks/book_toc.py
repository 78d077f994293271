"""The pages of the book, read from _toc.yml (shared by bench_book.py and the browser test)."""

from __future__ import annotations

from pathlib import Path


def toc_pages(toc: Path) -> list[str]:
    """The source files of a Jupyter Book's _toc.yml, root first (without suffix, as the TOC names them)."""
    import yaml

    def files(node: object) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in files(v)]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        return []

    data = yaml.safe_load(toc.read_text())
    return [data["root"], *files(data.get("parts", data))]
