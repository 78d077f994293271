"""The instructor's grading workflow around nbgrader, and the student's `selfsup check`.

One concept a module; the command line (`selfsup grade ...`, `selfsup check`) only parses arguments.

    course.py     where things live: solutions/, exercises/, the grading/ state folder, the gradebook URL
    gradebook.py  the few reads and writes of nbgrader's gradebook that the steps share
    release.py    generate exercises/ (and the gradebook's copy of the tests) from solutions/
    collect.py    a folder or a Canvas / Moodle zip of submissions, with an optional roster CSV
    submission.py pick, read and repair one student's notebook before nbgrader sees it
    executor.py   the one place a student's kernel is started and run (output cap, test guard, hidden outputs)
    sandbox.py    the kernel's bubblewrap sandbox: no network, nothing of the course, its own user, limits
    guard.py      code run in the kernel before tests: undo patched checks, a strict `==` for asserts
    result.py     the record one grading produces: status, notes, scores per cell, seconds
    autograde.py  grade one (student, assignment): self-contained, idempotent, also in a killable process
    batch.py      the loop over a class's submissions (--jobs)
    distributed.py the same on a Dask cluster (--scheduler), one task per (student, assignment), retried
    feedback.py   HTML feedback without the hidden tests
    export.py     a CSV of scores per student and assignment
    check.py      a student's own run of the visible tests

Importing this package is cheap; nbgrader (seconds to import) loads with the modules that need it.
"""
