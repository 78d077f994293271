"""The book's reproductions as functions that return numbers (the book plots them), and `expect`.

Each chapter states its expectations in the open and checks them live with `expect(...)`: a kept
promise prints a ✓ line; a broken one raises, which fails the book's build.
"""

from __future__ import annotations


class ExpectationFailed(AssertionError):
    """A claim the book makes did not hold in this run."""


def expect(claim: str, holds: bool, detail: str = "") -> None:
    """Print `✓ claim (detail)` when `holds`, else raise ExpectationFailed naming the claim and the numbers."""
    suffix = f" ({detail})" if detail else ""
    if not bool(holds):
        raise ExpectationFailed(f"✗ {claim}{suffix}")
    print(f"✓ {claim}{suffix}")


__all__ = ["ExpectationFailed", "expect"]
