"""Plausible wrong answers to the graded functions, one file per assignment: <aid>.py defines MUTANTS.

MUTANTS maps a solution cell id ("<fn>-solution") to (description, full replacement cell source) pairs; each
must lose points on that function's tests ("<fn>-test..." cells). tests/test_exercises.py grades them with
nbgrader; tests/test_exercise_sources.py runs them in-process.
"""
