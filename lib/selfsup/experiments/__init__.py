"""The book's reproductions as functions that return numbers (the book plots them), and `expect`.

An experiment is a function of (seed, preset, device) that returns a dataclass of numbers and histories and
draws nothing. It is registered with what it reproduces (the paper, its claim) and with its checks: the
claims the book makes about its numbers. A chapter runs it, plots it, and verifies it; `make reproduce`
runs every registered experiment over five seeds and counts, per check, the seeds in which it held.

    from selfsup.experiments import ch1
    result = ch1.mlm_mix(seed=0)          # preset "book": about a minute on two CPU cores
    ch1.mlm_mix.verify(result)            # prints a ✓ line per check; raises ExpectationFailed otherwise

Presets: "tiny" (smoke tests, seconds), "book" (what the book runs, about a minute on 2 CPU cores) and
"full" (larger, for a GPU). A kept promise prints a ✓ line; a broken one raises, which fails the book's build.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRESETS = ("tiny", "book", "full")


class ExpectationFailed(AssertionError):
    """A claim the book makes did not hold in this run."""


def expect(claim: str, holds: bool, detail: str = "") -> None:
    """Print `✓ claim (detail)` when `holds`, else raise ExpectationFailed naming the claim and the numbers."""
    suffix = f" ({detail})" if detail else ""
    if not bool(holds):
        raise ExpectationFailed(f"✗ {claim}{suffix}")
    print(f"✓ {claim}{suffix}")


@dataclass(frozen=True)
class Check:
    """One claim about an experiment's result: its words, whether it holds, and the numbers behind it."""

    claim: str
    holds: Callable[[Any], bool]
    detail: Callable[[Any], str] = lambda result: ""


@dataclass(frozen=True)
class Experiment:
    """A registered reproduction: call it like the function it wraps, then `verify` its result."""

    name: str  # "ch1.mlm_mix"
    title: str  # one line, for tables
    paper: str  # who claimed it, and what they reported
    run: Callable[..., Any]
    checks: tuple[Check, ...]
    numbers: Callable[[Any], dict[str, float]]  # the quantities the reproduction table reports

    def __call__(self, seed: int = 0, preset: str = "book", device: str = "cpu") -> Any:  # noqa: ANN401
        """Run at a preset ("tiny", "book" or "full") for one seed; returns the experiment's result dataclass."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
        return self.run(seed=seed, preset=preset, device=device)

    def outcomes(self, result: object) -> list[tuple[str, bool, str]]:
        """(claim, held, detail) for every check, without raising."""
        return [(c.claim, bool(c.holds(result)), c.detail(result)) for c in self.checks]

    def verify(self, result: object) -> None:
        """`expect` every check in turn: a ✓ line each, or ExpectationFailed at the first that fails."""
        for claim, held, detail in self.outcomes(result):
            expect(claim, held, detail)


REGISTRY: dict[str, Experiment] = {}


def experiment(
    name: str,
    *,
    title: str,
    paper: str,
    checks: list[Check] | tuple[Check, ...],
    numbers: Callable[[Any], dict[str, float]] | None = None,
) -> Callable[[Callable[..., Any]], Experiment]:
    """Register a function (seed, preset, device) -> result as the experiment `name`.

    `numbers` picks the quantities for the reproduction table; by default, every float field of the result.
    """

    def register(fn: Callable[..., Any]) -> Experiment:
        if name in REGISTRY:
            raise ValueError(f"experiment {name!r} is registered twice")
        exp = Experiment(name, title, paper, fn, tuple(checks), numbers or float_fields)
        REGISTRY[name] = exp
        return exp

    return register


def float_fields(result: object) -> dict[str, float]:
    """The float fields of a result dataclass."""
    return {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if isinstance(getattr(result, f.name), float)
    }


def chapter_modules() -> list[str]:
    """The chapter modules of this package, `ch1`, `ch2`, ... (a chapter's helper modules, `ch6_probes`, are
    imported by their chapter module, not listed)."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"ch\d+", m.name)]
    return sorted(names, key=lambda name: int(name[2:]))


def all_experiments() -> dict[str, Experiment]:
    """Every registered experiment, importing every chapter module first."""
    for module in chapter_modules():
        importlib.import_module(f"{__name__}.{module}")
    return dict(REGISTRY)


def pick_preset(presets: dict[str, Any], preset: str) -> Any:  # noqa: ANN401
    """A module's settings for a preset name, with an error that lists the allowed names."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    return presets[preset]


__all__ = [
    "Check",
    "Experiment",
    "ExpectationFailed",
    "all_experiments",
    "chapter_modules",
    "expect",
    "experiment",
    "pick_preset",
]
