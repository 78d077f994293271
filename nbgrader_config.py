"""nbgrader's configuration for this course (read by `nbgrader ...` and by `selfsup grade ...`).

Sources with solutions and hidden tests live in solutions/, the student versions nbgrader generates from them
in exercises/; everything grading produces (submissions, autograded notebooks, feedback, the SQLite gradebook)
stays in grading/, which git ignores. Set SELFSUP_GRADEBOOK_URL to keep the gradebook elsewhere, for example
postgresql+psycopg://user@host/course for a class graded on several machines.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STATE = "grading"

c = get_config()  # noqa: F821 (traitlets defines get_config when it loads this file)

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "selfsup"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = f"{STATE}/submitted"
c.CourseDirectory.autograded_directory = f"{STATE}/autograded"
c.CourseDirectory.feedback_directory = f"{STATE}/feedback"
c.CourseDirectory.solution_directory = f"{STATE}/solution"

_url = os.environ.get("SELFSUP_GRADEBOOK_URL", "").strip()
if not _url:
    # SQLite needs the folder of its file to exist.
    (ROOT / STATE).mkdir(exist_ok=True)
    _url = f"sqlite:///{ROOT / STATE / 'gradebook.db'}"
c.CourseDirectory.db_url = _url

# Seconds one cell may run before the kernel is interrupted; `selfsup grade autograde` adds a limit per student.
c.Execute.timeout = 120
