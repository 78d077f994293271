"""Pick, read and repair one student's notebook before nbgrader grades it.

nbgrader overwrites the source of read-only cells (the tests) from its gradebook, but it neither restores a
deleted test cell in place nor undoes a change of order, and it stops at a file that is not a notebook. Here,
against the release the student started from (the template):

- the notebook is the one named `<aid>.ipynb`, or the only notebook handed in (said in the notes);
- a file that is not JSON, not a notebook, or of an nbformat other than 3 or 4 raises `SubmissionError`;
  nbformat 3 is converted;
- the cells are put back in the template's order: every test and read-only cell comes from the template
  (edited ones are restored, deleted ones are back), the student's solution and free cells are kept, and
  cells the student added stay after the cell they followed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SUPPORTED_NBFORMATS = (3, 4)


class SubmissionError(Exception):
    """A submission that cannot be graded at all; `status` is a short code, the message says why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def pick_notebook(folder: Path, assignment: str) -> tuple[Path, list[str]]:
    """The notebook to grade in a student's folder, and a note when it had another name.

    Raises:
        SubmissionError: no folder, no notebook, or several notebooks none of which has the expected name.
    """
    expected = f"{assignment}.ipynb"
    if not folder.is_dir():
        raise SubmissionError("missing", f"nothing was handed in (no folder {folder})")
    if (folder / expected).is_file():
        return folder / expected, []
    found = sorted(
        p
        for p in folder.rglob("*.ipynb")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    names = [str(p.relative_to(folder)) for p in found]
    if len(found) == 1:
        return found[0], [f"the notebook was named {names[0]!r}, not {expected!r}: graded it as {expected}"]
    if not found:
        handed_in = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        raise SubmissionError(
            "no-notebook",
            f"no notebook among the files handed in ({', '.join(handed_in) or 'none'}); expected {expected}",
        )
    raise SubmissionError(
        "no-notebook",
        f"{len(found)} notebooks ({', '.join(names)}) and none named {expected}: cannot tell which to grade",
    )


def read_notebook(path: Path) -> tuple[NotebookNode, list[str]]:
    """Read a submitted file as an nbformat-4 notebook; returns it with notes on what was converted.

    Raises:
        SubmissionError: (status "unreadable") the file is not UTF-8 JSON, not a notebook, or of an unsupported
            nbformat.
    """
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SubmissionError("unreadable", f"{name} is not a text file (not UTF-8 at byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SubmissionError(
            "unreadable",
            f"{name} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); was it edited outside Jupyter?",
        ) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise SubmissionError("unreadable", f"{name} is JSON but not a Jupyter notebook (it has no 'nbformat' field)")
    major = data["nbformat"]
    if major not in SUPPORTED_NBFORMATS:
        raise SubmissionError(
            "unreadable",
            f"{name} is in nbformat {major!r}; this course reads nbformat 4 (and converts 3): save it from Jupyter",
        )
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validator.normalize(nb)  # drops what the schema forbids, fills what it requires
    except Exception as e:  # noqa: BLE001 (any reader failure means the same to a student)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SubmissionError("unreadable", f"{name} is not a readable notebook: {first}") from None
    notes = [f"converted {name} from nbformat {major} to 4"] if major != 4 else []
    return nb, notes


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _fixed(cell: NotebookNode) -> bool:
    """A cell the student may not change: a test (graded, not a solution) or a read-only cell."""
    meta = _nbgrader(cell)
    return bool(meta.get("locked") or (meta.get("grade") and not meta.get("solution")))


def _label(cell: NotebookNode) -> str:
    return _nbgrader(cell).get("grade_id") or cell.get("id") or "?"


def restore_structure(nb: NotebookNode, template: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The student's notebook rebuilt on the template's cells; returns it with notes on what was restored."""
    by_grade_id = {_nbgrader(c)["grade_id"]: i for i, c in enumerate(template.cells) if _nbgrader(c).get("grade_id")}
    by_id = {c.get("id"): i for i, c in enumerate(template.cells) if c.get("id")}
    matched: dict[int, NotebookNode] = {}
    extras: dict[int, list[NotebookNode]] = {}  # template index the extra cells follow (-1: the top)
    order: list[int] = []
    anchor = -1
    for cell in nb.cells:
        grade_id = _nbgrader(cell).get("grade_id")
        index = by_grade_id.get(grade_id) if grade_id else None
        if index is None and cell.get("id") in by_id and not _nbgrader(template.cells[by_id[cell["id"]]]):
            index = by_id[cell["id"]]  # a free template cell matched by its cell id
        if index is None or index in matched:
            extra = copy.deepcopy(cell)
            extra.get("metadata", {}).pop("nbgrader", None)  # a copy of a graded cell is not graded twice
            extras.setdefault(anchor, []).append(extra)
            continue
        matched[index] = cell
        order.append(index)
        anchor = index

    cells, edited, deleted, missing_solutions = list(extras.get(-1, [])), [], [], []
    for i, tcell in enumerate(template.cells):
        student = matched.get(i)
        if _fixed(tcell) or (student is None and not _nbgrader(tcell).get("solution")):
            if student is None:
                deleted.append(_label(tcell))
            elif student.get("source", "").strip() != tcell.source.strip() or student.cell_type != tcell.cell_type:
                edited.append(_label(tcell))
            cells.append(copy.deepcopy(tcell))
        elif student is None:
            missing_solutions.append(_label(tcell))
        else:
            cell = copy.deepcopy(student)
            if _nbgrader(tcell):
                cell.setdefault("metadata", {})["nbgrader"] = copy.deepcopy(_nbgrader(tcell))
            cells.append(cell)
        cells.extend(extras.get(i, []))

    seen: set[str] = set()
    for n, cell in enumerate(cells):  # ids must stay unique once extra cells join
        if cell.get("id") in seen or not cell.get("id"):
            cell["id"] = f"cell-{n}"
        seen.add(cell["id"])
    restored = copy.deepcopy(nb)
    restored.cells = cells
    restored.nbformat, restored.nbformat_minor = 4, max(5, template.get("nbformat_minor", 5))
    if "kernelspec" in template.metadata:
        restored.metadata["kernelspec"] = copy.deepcopy(template.metadata["kernelspec"])

    notes = []
    if edited:
        notes.append(f"restored edited read-only cells: {', '.join(edited)}")
    if deleted:
        notes.append(f"restored deleted cells: {', '.join(deleted)}")
    if missing_solutions:
        notes.append(f"no answer cell {', '.join(missing_solutions)} (deleted?)")
    if order != sorted(order):
        notes.append("put the cells back in the release's order")
    return restored, notes


def prepare(folder: Path, assignment: str, template: Path, dest: Path) -> list[str]:
    """Pick, read and restore a student's notebook from `folder`, and write it to `dest` for nbgrader.

    Returns:
        Notes on everything that was changed, for the student's status line.

    Raises:
        SubmissionError: the submission cannot be graded (missing, no notebook, unreadable).
    """
    path, notes = pick_notebook(folder, assignment)
    nb, read_notes = read_notebook(path)
    restored, restore_notes = restore_structure(nb, nbformat.read(template, as_version=4))
    try:
        nbformat.validate(restored)
    except nbformat.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise SubmissionError(
            "unreadable", f"{path.name} could not be repaired into a valid notebook: {first}"
        ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(restored, dest)
    return notes + read_notes + restore_notes
