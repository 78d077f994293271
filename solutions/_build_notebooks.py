"""Write the nbgrader source notebooks solutions/<aid>/<aid>.ipynb from the readable sources in solutions/_src/.

A source file `_src/<aid>.nbsrc` is a list of cells, each opened by a header line:

    #%% md <id>                   a read-only markdown cell
    #%% code <id>                 a read-only code cell (set-up, demos)
    #%% solution <fn>             the graded function <fn>: cell id and grade_id "<fn>-solution"
    #%% test <id> points=<n>      an autograded test cell worth n points; <id> starts with "<fn>-test"

Everything up to the next header is the cell's source (blank lines around it are dropped). Cell ids are the
given ids, so nbgrader's generated release is the same byte for byte on every run.

    .venv/bin/python solutions/_build_notebooks.py            # write every notebook
    .venv/bin/python solutions/_build_notebooks.py --check    # exit 1 if a notebook differs from its source
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "_src"
HEADER = re.compile(r"^#%% (md|code|solution|test) ([A-Za-z0-9_-]+)(?: points=(\d+))?\s*$")


def _meta(kind: str, grade_id: str, points: int | None) -> dict:
    base = {"grade": False, "grade_id": grade_id, "locked": True, "schema_version": 3, "solution": False, "task": False}
    if kind == "solution":
        base.update(locked=False, solution=True)
    elif kind == "test":
        base.update(grade=True, points=points)
    return {"nbgrader": base}


def parse(text: str) -> list[dict]:
    """The cells of a source file as dicts: kind, id, points, source."""
    cells: list[dict] = []
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            kind, name, points = m.group(1), m.group(2), m.group(3)
            if kind == "test" and points is None:
                raise ValueError(f"test cell {name!r} needs points=<n>")
            cid = f"{name}-solution" if kind == "solution" else name
            cells.append({"kind": kind, "id": cid, "points": int(points) if points else None, "lines": []})
        elif line.startswith("#%%"):
            raise ValueError(f"bad cell header: {line!r}")
        elif cells:
            cells[-1]["lines"].append(line)
        elif line.strip():
            raise ValueError(f"text before the first cell header: {line!r}")
    ids = [c["id"] for c in cells]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate cell ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    for c in cells:
        c["source"] = "\n".join(c.pop("lines")).strip("\n")
    return cells


def build(aid: str) -> str:
    """The notebook of assignment `aid` as the text written to solutions/<aid>/<aid>.ipynb."""
    cells = []
    for c in parse((SRC / f"{aid}.nbsrc").read_text(encoding="utf-8")):
        meta = _meta(c["kind"], c["id"], c["points"])
        if c["kind"] == "md":
            cell = nbformat.v4.new_markdown_cell(c["source"], metadata=meta)
        else:
            cell = nbformat.v4.new_code_cell(c["source"], metadata=meta)
        cell["id"] = c["id"]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    nb["nbformat_minor"] = 5
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def assignments() -> list[str]:
    """The assignment ids that have a source file."""
    return sorted(p.stem for p in SRC.glob("*.nbsrc"))


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) every notebook; returns the exit status."""
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")] or assignments()
    stale = []
    for aid in names:
        out = HERE / aid / f"{aid}.ipynb"
        text = build(aid)
        if check:
            if not out.is_file() or out.read_text(encoding="utf-8") != text:
                stale.append(aid)
        else:
            out.parent.mkdir(exist_ok=True)
            out.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run solutions/_build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
