"""The one place a student's notebook is run: a kernel started and fed cell by cell.

`GradingExecute` is nbgrader's `Execute` preprocessor (nbclient underneath) with what a batch needs:

- a deadline for the whole notebook on top of nbgrader's per-cell timeout: a cell gets at most the time left,
  and once it is used up the remaining cells are not run;
- a kernel that dies (`os._exit`, a crash, out of memory) or stops answering ends the run instead of
  failing the whole grading: the cells before keep their results.

A cell that did not run gets an error output that says why, so nbgrader scores its tests 0 (a test cell
without an error output would get full marks) and the feedback shows the reason. The error names are
`EVENTS`; `events(nb)` reads them back from an executed notebook.

With `sandbox` on, the kernel is started by `sandbox.SandboxKernelManager` (bubblewrap, no network, limits on
memory, CPU, processes and file size; a scratch folder holding the student's notebook). Whatever the kernel,
the executor also

- cuts the output kept per notebook at `output_limit_kb` (the rest is dropped, with a note);
- runs the guard of guard.py before each test cell (restores what the student patched; `assert a == b` is
  checked with a strict `==`), and runs test cells without storing them in the kernel's history;
- scores a test cell 0 when the kernel replied "error" but showed no error (a silenced traceback), and drops an
  `execute_result` that a failing test cell's error follows (nbgrader would read it as partial credit);
- keeps no output of a cell with hidden tests but its errors (name and message), and blanks any output that
  quotes a line of a hidden test (nbgrader's feedback would show it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, Execute
from traitlets import Bool, Dict, Float, Integer, Unicode

from selfsup.grading import guard

TIME_LIMIT = "TimeLimitExceeded"
CELL_TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "KernelDied"
NOT_RUN = "CellNotRun"
EVENTS = (TIME_LIMIT, CELL_TIMEOUT, KERNEL_DIED, NOT_RUN)
GUARD_FAILED = "GraderGuardFailed"
HIDDEN_ERROR = "ErrorNotShown"
OUTPUT_CUT = "[output cut: this notebook printed more than {kb} KB; the rest was dropped]\n"
WITHHELD = "[output withheld: it quoted a hidden test]\n"
HIDDEN_OUTPUT = "[the output of a cell with hidden tests is not kept]\n"


def _is_test(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _texts(output: NotebookNode) -> list[str]:
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    if output.get("output_type") == "error":
        return [output.get("evalue", ""), *output.get("traceback", [])]
    data = output.get("data", {}).values()
    return [v if isinstance(v, str) else "\n".join(v) for v in data if isinstance(v, str | list)]


def _size(output: NotebookNode) -> int:
    return sum(len(t) for t in _texts(output))


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's Execute with a deadline per notebook and a run that survives a dead or stuck kernel."""

    deadline = Float(
        0.0, help="time.time() after which no cell runs; 0 means no deadline beyond the per-cell timeout"
    ).tag(config=True)
    time_limit = Float(0.0, help="the limit the deadline came from, in seconds (for the messages)").tag(config=True)
    sandbox = Bool(False, help="run the kernel in the sandbox (sandbox.py)").tag(config=True)
    sandbox_limits = Dict({}, help="sandbox.SandboxLimits fields for the sandboxed kernel").tag(config=True)
    student_notebook = Unicode("", help="the student's notebook, copied into the sandbox's scratch").tag(config=True)
    output_limit_kb = Integer(1024, help="output kept per notebook, in KB; the rest is cut").tag(config=True)
    guard_tests = Bool(True, help="run guard.py's guard before each test cell").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple:  # noqa: ANN401
        """Run every code cell; see the module docstring for what changes from nbgrader's Execute."""
        self._stopped: str | None = None
        self._output_left = self.output_limit_kb * 1024
        self._cut = False
        self._last_reply: dict | None = None
        self._tests_ran = False
        clear = ClearHiddenTests(parent=self)
        self._begin, self._end = clear.begin_test_delimeter, clear.end_test_delimeter
        self._hidden = self._hidden_lines(nb)
        self._guard_name, self._eq_name = guard.names()
        self._nb_text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        if self.sandbox:
            from selfsup.grading.sandbox import SandboxKernelManager

            self.kernel_manager_class = SandboxKernelManager
        if nb.metadata.get("kernelspec", {}).get("language", "python") == "python":
            # ipykernel's own start-up warnings are noise in a batch; the student's output is unaffected.
            quiet = "--IPKernelApp.log_level=ERROR"
            self.extra_arguments = [*(a for a in self.extra_arguments if a != quiet), quiet]
        self.timeout_func = self._cell_timeout
        self.error_on_timeout = {
            "ename": CELL_TIMEOUT,
            "evalue": f"the cell ran longer than {self.timeout} s and was interrupted",
            "traceback": [f"{CELL_TIMEOUT}: the cell ran longer than {self.timeout} s and was interrupted"],
        }
        return super().preprocess(nb, resources, km=km)

    def _left(self) -> float | None:
        return self.deadline - time.time() if self.deadline else None

    def _cell_timeout(self, cell: NotebookNode) -> int | None:
        left = self._left()
        if left is None:
            return self.timeout
        # nbclient wants whole seconds; at least 1, so that a cell started just in time is still interrupted.
        return max(1, int(min(left, self.timeout or left) + 0.999))

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple:  # noqa: ANN401
        """Run one cell unless the run has stopped; turn a dead or stuck kernel into outputs, not exceptions."""
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        left = self._left()
        if self._stopped is None and left is not None and left <= 0:
            self._stopped = f"the time limit of {self.time_limit:g} s for this notebook was used up"
        if self._stopped is not None:
            cell.outputs = [_error(NOT_RUN, self._stopped)]
            return cell, resources
        test = _is_test(cell)
        hidden = test and self._begin in cell.source
        original = cell.source
        try:
            # Before a test, and before every cell once a test has run (its source leaves the kernel's caches).
            if self.guard_tests and (test or self._tests_ran):
                failed = self._run_guard()
                if failed and test:
                    cell.outputs = [_error(GUARD_FAILED, failed)]
                    return cell, resources
            if test and self.guard_tests:
                self._tests_ran = True
                cell.source = guard.rewrite_asserts(original, self._eq_name)
            self._last_reply = None
            self._check_assign_resources(resources)
            cell = self.execute_cell(cell, index, store_history=not test)
            resources = self.resources
        except DeadKernelError:
            cell.outputs.append(
                _error(KERNEL_DIED, "the kernel died while this cell ran (exit(), a crash, or out of memory)")
            )
            self._stopped = "the kernel died in an earlier cell"
            return cell, resources
        except CellTimeoutError:
            # The interrupt did not stop the cell (the code catches KeyboardInterrupt, or hangs outside Python).
            cell.outputs.append(_error(KERNEL_DIED, "the kernel stopped answering and was shut down"))
            self._stopped = "the kernel stopped answering in an earlier cell"
            return cell, resources
        finally:
            cell.source = original
        if test:
            self._check_test_outputs(cell, hidden)
        self._withhold_hidden(cell)
        if self.deadline and time.time() >= self.deadline:
            for output in cell.outputs:
                if output.get("output_type") == "error" and output.get("ename") == CELL_TIMEOUT:
                    output.ename = TIME_LIMIT
                    output.evalue = f"the time limit of {self.time_limit:g} s for this notebook ran out in this cell"
                    output.traceback = [f"{TIME_LIMIT}: {output.evalue}"]
        return cell, resources

    # --- the sandbox -------------------------------------------------------------------------------------------

    def create_kernel_manager(self) -> Any:  # noqa: ANN401
        """nbclient's kernel manager; the sandboxed one gets its limits and the student's notebook."""
        km = super().create_kernel_manager()
        if self.sandbox:
            km.limits = dict(self.sandbox_limits)
            km.notebook = self.student_notebook
        return km

    async def async_start_new_kernel_client(self) -> Any:  # noqa: ANN401
        """Start the client; then, before any student code, snapshot what the tests rely on (guard.py)."""
        kc = await super().async_start_new_kernel_client()
        if self.guard_tests:
            trusted = sorted({sys.prefix, sys.base_prefix, str(Path(guard.__file__).resolve().parents[2])})
            code = guard.setup_code(self._guard_name, self._eq_name, self._nb_text, trusted, self._begin)
            reply = await self._silent(code)
            if reply is None or reply["content"].get("status") != "ok":
                self.guard_tests = False  # the notebook still runs; its tests are then nbgrader's plain ones
                self.log.warning("could not set up the test guard: %s", reply and reply["content"].get("evalue"))
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # nbclient binds the sync name itself

    async def _silent(self, code: str) -> dict | None:
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        return await self.async_wait_for_reply(msg_id)

    def _run_guard(self) -> str | None:
        """Run the guard; None when it ran, else why the test cell scores 0."""
        reply = run_sync(self._silent)(f"{self._guard_name}()")
        if reply is None:
            return "the grader's check before this test did not finish"
        if reply["content"].get("status") != "ok":
            ename = reply["content"].get("ename")
            return f"the grader's check before this test failed ({ename}): was it tampered with?"
        return None

    # --- what is kept of the outputs ---------------------------------------------------------------------------

    async def _check_raise_for_error(self, cell: NotebookNode, cell_index: int, exec_reply: dict | None) -> None:
        self._last_reply = exec_reply
        await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> NotebookNode | None:
        """nbclient's output handler, with the notebook's output capped at `output_limit_kb`."""
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or out.get("output_type") == "error":
            return out
        size = _size(out)
        if size <= self._output_left:
            self._output_left -= size
            return out
        if out.get("output_type") == "stream" and self._output_left > 0:
            out.text = out.text[: self._output_left]
            self._output_left = 0
        elif outs and outs[-1] is out:
            outs.pop()
        if not self._cut:
            self._cut = True
            note = OUTPUT_CUT.format(kb=self.output_limit_kb)
            outs.append(NotebookNode(output_type="stream", name="stdout", text=note))
        return None

    def _check_test_outputs(self, cell: NotebookNode, hidden: bool) -> None:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        reply = (self._last_reply or {}).get("content", {})
        if not errors and reply.get("status") == "error":
            message = "the kernel reported an error in this test but did not show it (a silenced traceback?)"
            errors = [_error(reply.get("ename") or HIDDEN_ERROR, message)]
            cell.outputs.append(errors[0])
        if errors:  # a result shown before the error would count as partial credit in nbgrader
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
        if hidden:  # the error's name and message only: its traceback would quote the hidden lines
            kept = [o for o in cell.outputs if o.get("output_type") in ("error", "execute_result")]
            for output in kept:
                if output.get("output_type") == "error":
                    output.traceback = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
            if len(kept) < len(cell.outputs):
                kept.insert(0, NotebookNode(output_type="stream", name="stdout", text=HIDDEN_OUTPUT))
            cell.outputs = kept

    def _hidden_lines(self, nb: NotebookNode) -> set[str]:
        found = set()
        for cell in nb.cells:
            inside = False
            for line in cell.source.split("\n") if cell.cell_type == "code" else []:
                if self._begin in line:
                    inside = True
                elif self._end in line:
                    inside = False
                elif inside and len(line.strip()) >= 10:
                    found.add(line.strip())
        return found

    def _withhold_hidden(self, cell: NotebookNode) -> None:
        """Blank every output of the cell that quotes a line of a hidden test."""
        if not self._hidden:
            return
        for i, output in enumerate(cell.outputs):
            if any(line in text for text in _texts(output) for line in self._hidden):
                if output.get("output_type") == "error":
                    output.evalue, output.traceback = WITHHELD.strip(), [f"{output.ename}: {WITHHELD.strip()}"]
                else:
                    cell.outputs[i] = NotebookNode(output_type="stream", name="stdout", text=WITHHELD)


def events(nb: NotebookNode) -> list[tuple[str, str, str]]:
    """(error name, cell label, message) for every cell the executor stopped, timed out or did not run."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") in EVENTS:
                label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id", "?")
                found.append((output["ename"], label, output.get("evalue", "")))
    return found
