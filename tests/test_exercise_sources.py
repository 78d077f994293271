"""The nbgrader sources in solutions/: structure, metadata, mutants, and the statistical tolerances of the tests.

These checks run the notebooks' cells in-process (no kernel, no nbgrader), so they are quick:
- every cell has a stable id; nbgrader metadata is consistent; points add up to the total the intro states;
- the notebooks are what solutions/_build_notebooks.py writes from solutions/_src/;
- every graded function has a solution cell, visible and hidden tests, and at least two mutants in
  tests/exercise_mutants/<aid>.py that name only existing solution cells and fail that function's tests;
- the statistical checks (`_stat_*` functions in the test cells) pass for the solution under many seeds,
  so a correct answer is not failed by bad luck.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").is_file())
N_SEEDS = 200
# Cells too slow to run in this suite (training), by id prefix; the autograding tests (test_exercises.py) run
# them. Ungraded demonstration cells ("demo...") are skipped too: no test depends on them.
SLOW_PREFIXES = ("finetune", "demo")


def is_slow(cell_id: str) -> bool:
    return cell_id.startswith(SLOW_PREFIXES)


sys.path.insert(0, str(SOLUTIONS))
import _build_notebooks  # noqa: E402

sys.path.pop(0)


def load(aid: str) -> nbformat.NotebookNode:
    return nbformat.read(SOLUTIONS / aid / f"{aid}.ipynb", as_version=4)


def graded_functions(nb: nbformat.NotebookNode) -> list[str]:
    return [c.id.removesuffix("-solution") for c in nb.cells if c.id.endswith("-solution")]


def mutants(aid: str) -> dict[str, list[tuple[str, str]]]:
    """MUTANTS from tests/exercise_mutants/<aid>.py (the file name is not a module name, so load it by path)."""
    path = ROOT / "tests" / "exercise_mutants" / f"{aid}.py"
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location(f"exercise_mutants_{aid.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def run_cells(
    nb: nbformat.NotebookNode, replace: dict[str, str] | None = None, stop_after: str | None = None
) -> tuple[dict, dict[str, BaseException]]:
    """Execute the code cells in order in one namespace (output swallowed); return it and each failing cell's error."""
    replace = replace or {}
    ns: dict = {"__name__": "__main__"}
    errors: dict[str, BaseException] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or is_slow(cell.id):
            continue
        src = replace.get(cell.id, cell.source)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(src, f"<{cell.id}>", "exec"), ns)
        except Exception as err:  # noqa: BLE001 - a failing cell is what is being recorded
            errors[cell.id] = err
        if cell.id == stop_after:
            break
    return ns, errors


@functools.cache
def solution_run(aid: str) -> tuple[dict, dict[str, BaseException]]:
    """The solution notebook run once per session: its namespace and failing cells."""
    return run_cells(load(aid))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_there_are_assignments():
    assert ASSIGNMENTS, "no solutions/<aid>/<aid>.ipynb found"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_notebook_is_what_the_builder_writes(aid):
    text = (SOLUTIONS / aid / f"{aid}.ipynb").read_text(encoding="utf-8")
    assert text == _build_notebooks.build(aid), f"run .venv/bin/python solutions/_build_notebooks.py {aid}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_cells_metadata_and_points(aid):
    nb = load(aid)
    ids = [c.id for c in nb.cells]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids) and len(ids) == len(set(ids))
    grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    assert len(grade_ids) == len(set(grade_ids)) and grade_ids == ids
    functions = graded_functions(nb)
    assert 3 <= len(functions) <= 6, f"{aid} has {len(functions)} graded functions"
    total = 0
    for cell in nb.cells:
        meta = cell.metadata["nbgrader"]
        assert meta["schema_version"] == 3
        if meta["solution"]:
            assert cell.cell_type == "code" and cell.id.endswith("-solution") and not meta["grade"]
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            assert '"""' in cell.source, f"{cell.id}: a graded function needs a docstring"
        if meta["grade"]:
            assert cell.cell_type == "code" and meta["locked"] and meta["points"] > 0
            assert any(cell.id.startswith(f"{f}-test") for f in functions), f"{cell.id} tests no graded function"
            total += meta["points"]
    for f in functions:
        tests = [c for c in nb.cells if c.id.startswith(f"{f}-test")]
        assert any("BEGIN HIDDEN TESTS" not in c.source for c in tests), f"{f} has no visible tests"
        assert any("### BEGIN HIDDEN TESTS" in c.source for c in tests), f"{f} has no hidden tests"
        assert all(c.metadata["nbgrader"]["grade"] for c in tests)
    stated = re.search(r"worth \*\*(\d+) points\*\*", nb.cells[0].source)
    assert stated, "the introduction must state 'worth **N points**'"
    assert int(stated.group(1)) == total, f"the intro says {stated.group(1)} points, the test cells add up to {total}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_mutants_name_solution_cells(aid):
    nb = load(aid)
    found = mutants(aid)
    solution_ids = {c.id for c in nb.cells if c.id.endswith("-solution")}
    assert set(found) <= solution_ids, f"mutants for unknown cells: {set(found) - solution_ids}"
    for f in graded_functions(nb):
        assert len(found.get(f"{f}-solution", [])) >= 2, f"{f} needs at least two mutants"
    for cell_id, items in found.items():
        for desc, src in items:
            assert isinstance(desc, str) and desc and isinstance(src, str)
            assert "### BEGIN SOLUTION" not in src
            name = cell_id.removesuffix("-solution")
            assert re.search(rf"^(def|class) {name}\b", src, flags=re.M), f"{desc}: must define {name}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_solution_passes_every_test_cell(aid):
    _, errors = solution_run(aid)
    assert not errors, {k: repr(v) for k, v in errors.items()}


def _mutant_cases():
    for aid in ASSIGNMENTS:
        for cell_id, items in mutants(aid).items():
            for desc, src in items:
                if not is_slow(cell_id):
                    yield pytest.param(aid, cell_id, src, id=f"{aid}:{cell_id}:{desc[:40]}")


@pytest.mark.parametrize(("aid", "cell_id", "src"), list(_mutant_cases()))
def test_mutant_fails_its_tests(aid, cell_id, src):
    nb = load(aid)
    name = cell_id.removesuffix("-solution")
    tests = [c.id for c in nb.cells if c.id.startswith(f"{name}-test")]
    _, errors = run_cells(nb, {cell_id: src}, stop_after=tests[-1])
    assert cell_id not in errors, f"the mutant itself does not run: {errors.get(cell_id)!r}"
    assert set(tests) & set(errors), f"the mutant passes every test of {name}"


_ALWAYS_EQUAL = """
class _AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


def {name}(*args, **kwargs):
    return _AlwaysEqual()
"""


def _graded_cases():
    for aid in ASSIGNMENTS:
        for fn in graded_functions(load(aid)):
            if not is_slow(f"{fn}-solution"):
                yield pytest.param(aid, fn, id=f"{aid}:{fn}")


@pytest.mark.parametrize(("aid", "fn"), list(_graded_cases()))
def test_an_answer_equal_to_everything_scores_nothing(aid, fn):
    nb = load(aid)
    tests = [c.id for c in nb.cells if c.id.startswith(f"{fn}-test")]
    _, errors = run_cells(nb, {f"{fn}-solution": _ALWAYS_EQUAL.format(name=fn)}, stop_after=tests[-1])
    assert set(tests) <= set(errors), (
        f"test cells of {fn} that an always-equal object passes: {set(tests) - set(errors)}"
    )


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_hidden_lines_do_not_appear_in_the_release(aid):
    """A hidden test line that is also part of visible text would be flagged (and shown) in feedback pages."""
    release = ROOT / "exercises" / aid / f"{aid}.ipynb"
    if not release.is_file():
        pytest.skip(f"{release} not generated yet")
    hidden = set()
    for cell in load(aid).cells:
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, flags=re.S):
            hidden |= {line.strip() for line in block.split("\n")}
    cells = nbformat.read(release, as_version=4).cells
    visible = {line.strip() for c in cells for line in c.source.split("\n")}
    text = "\n".join(c.source for c in cells)
    shown = [x for x in hidden - visible if x and not x.startswith("#") and len(x) >= 12 and x in text]
    assert not shown, f"hidden lines inside visible ones: {shown}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_blank_release_fails_every_test_cell(aid):
    """The student version with nothing filled in scores nothing (its test cells run as autograding restores them)."""
    release = ROOT / "exercises" / aid / f"{aid}.ipynb"
    if not release.is_file():
        pytest.skip(f"{release} not generated yet")
    blank = nbformat.read(release, as_version=4)
    source = {c.id: c.source for c in load(aid).cells}
    tests = [c.id for c in blank.cells if c.metadata.get("nbgrader", {}).get("grade") and not is_slow(c.id)]
    _, errors = run_cells(blank, {cid: source[cid] for cid in tests})
    assert set(tests) <= set(errors), f"test cells that pass on the blank release: {sorted(set(tests) - set(errors))}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_statistical_checks_pass_for_many_seeds(aid):
    ns, errors = solution_run(aid)
    assert not errors
    checks = {k: v for k, v in ns.items() if k.startswith("_stat_") and callable(v)}
    for name, check in checks.items():
        for seed in range(N_SEEDS):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    check(seed)
            except AssertionError as err:
                raise AssertionError(f"{aid}: {name}({seed}) fails for the solution: {err}") from err
