"""HTML feedback for each graded submission, with no hidden-test source in it.

nbgrader's generate_feedback renders the autograded notebook, whose test cells hold the hidden tests again
(autograde restored them), and a failed hidden test's traceback quotes its lines (nbgrader issue #917).
`HideHiddenTests` runs first: it replaces each hidden block by a note and cuts the traceback of a cell that
had one down to its last line (the error and its message). Every page is then checked against the hidden
lines of the source; a page that still shows one is deleted and the step fails, so it is never handed out.
A submission that could not be run gets a short page with its status instead.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat import NotebookNode
from nbgrader.apps import NbGraderAPI
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from traitlets import List, Unicode

from selfsup.grading import gradebook, release, result
from selfsup.grading.course import Course
from selfsup.grading.result import STATUSES, GradeResult

HIDDEN_NOTE = "# (hidden tests: they ran when your work was graded, and are not shown)"


def _delimiters(parent: object | None = None) -> tuple[str, str]:
    clear = ClearHiddenTests(parent=parent)
    return clear.begin_test_delimeter, clear.end_test_delimeter


def hidden_blocks(source: str, begin: str, end: str) -> tuple[str, list[str]]:
    """(the source with each hidden block replaced by `HIDDEN_NOTE`, the lines of the hidden blocks)."""
    kept, hidden, inside = [], [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
            kept.append(line[: len(line) - len(line.lstrip())] + HIDDEN_NOTE)
        elif end in line and inside:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            kept.append(line)
    return "\n".join(kept), hidden


class HideHiddenTests(NbGraderPreprocessor):
    """Replace hidden test blocks by a note, shorten their cells' tracebacks, and put grading notes on top."""

    notes = List(Unicode(), help="lines shown in a note at the top of the feedback").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        """Hide the hidden tests of every cell (see the class docstring)."""
        begin, end = _delimiters(self)
        for cell in nb.cells:
            if cell.cell_type != "code" or begin not in cell.source:
                continue
            cell.source, _ = hidden_blocks(cell.source, begin, end)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    # The frames quote the failing (hidden) line; the error and its message teach enough.
                    output.traceback = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        if self.notes:
            text = "**Grading notes**\n\n" + "\n".join(f"- {note}" for note in self.notes)
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(text))
        return nb, resources


def hidden_lines(course: Course, assignment: str) -> set[str]:
    """The stripped lines of the source's hidden blocks that the student version does not show anyway."""
    begin, end = _delimiters()
    source = nbformat.read(course.source_notebook(assignment), as_version=4)
    lines = {line.strip() for cell in source.cells for line in hidden_blocks(cell.source, begin, end)[1]}
    template = release.ensure_synced(course, assignment)
    # A hidden line that the student version shows anyway, even inside a longer line, is no secret.
    visible = "\n".join(cell.source for cell in nbformat.read(template, as_version=4).cells)
    return {line for line in lines if line and not line.startswith("#") and line not in visible}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(page: str) -> str:
    """The text a browser shows for an HTML page (tags, styles and scripts removed, entities decoded)."""
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(parser.parts))


def leaks(page: str, lines: set[str]) -> list[str]:
    """The hidden lines a page shows: whole lines of its text, or inside a longer line (tracebacks)."""
    text = page_text(page)
    shown = {line.strip() for line in text.splitlines()}
    return sorted(line for line in lines if line in shown or (len(line) >= 12 and line in text))


def _status_page(record: GradeResult) -> str:
    items = "".join(f"<li>{html.escape(note)}</li>" for note in record.notes)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(record.assignment)}</title></head>"
        f"<body><h1>{html.escape(record.assignment)}: {record.score:g} / {record.max_score:g}</h1>"
        f"<p>{html.escape(STATUSES.get(record.status, record.status))}</p><ul>{items}</ul></body></html>\n"
    )


def feedback(course: Course, assignments: list[str] | None = None, students: list[str] | None = None) -> list[Path]:
    """Write the feedback page of every graded submission (of the given assignments and students).

    Returns:
        The HTML files, `feedback/<student>/<aid>/<aid>.html`.

    Raises:
        ValueError: nothing has been graded yet for the selection.
        RuntimeError: a page would show hidden-test source (it is deleted first).
    """
    chosen = course.select(assignments)
    records = [r for r in result.load_all(course, chosen) if not students or r.student in students]
    if not records:
        raise ValueError(f"no graded submissions of {', '.join(chosen) or 'any assignment'}: run autograde first")
    secrets = {a: hidden_lines(course, a) for a in {r.assignment for r in records}}
    pages = []
    for record in records:
        page = course.feedback / record.student / record.assignment / f"{record.assignment}.html"
        executed = course.autograded / record.student / record.assignment / f"{record.assignment}.ipynb"
        if executed.is_file():
            notes = [f"status: {record.status}", *record.notes] if record.status != "ok" or record.notes else []
            config = course.nbgrader_config(
                GenerateFeedback={"preprocessors": [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]},
                HideHiddenTests={"notes": notes},
            )
            with gradebook.quiet():
                outcome = NbGraderAPI(config=config).generate_feedback(record.assignment, record.student, force=True)
            if not outcome["success"] or not page.is_file():
                raise release.nbgrader_error(f"write the feedback of {record.student} on {record.assignment}", outcome)
        else:
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(_status_page(record), encoding="utf-8")
        shown = leaks(page.read_text(encoding="utf-8"), secrets[record.assignment])
        if shown:
            page.unlink()
            raise RuntimeError(f"the feedback of {record.student} on {record.assignment} showed hidden tests {shown}")
        pages.append(page)
    return pages
