"""In-context learning tasks for GPT: k examples of a hidden rule, then a query whose answer follows the rule.

Families (each prompt draws its own rule from `random.Random(f"icl-{family}-{seed}")`):
- "mapping": a random one-to-one map between ToyWorld words; the query is one of the example inputs, so the
  answer must be copied from the context (what induction heads do); needs k >= 1.
- "relation": a ToyWorld fact lookup, person -> city of birth (or another relation); the query is a person
  not among the examples, so only the format comes from the context and the fact must be known.
- "linear": y = a * x + b over small integers, a in 1..5, b in 0..9, x in 0..20; the query x is new.
A prompt's text is one "x -> y" line per example and ends with "query ->"; the answer is y, no leading space.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from datasets import Dataset

from selfsup.data.world import ANIMALS, CITIES, FOODS, JOBS, World, surface

FAMILIES = ("mapping", "relation", "linear")
RELATIONS = ("born_in", "lives_in", "works_for", "job")
MAPPING_WORDS = sorted(set(FOODS + ANIMALS + JOBS + CITIES))


@dataclass
class ICLPrompt:
    """One prompt: the examples (input, output), the query, its answer, and the rule that made them."""

    family: str
    examples: list[tuple[str, str]]
    query: str
    answer: str
    rule: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The prompt as text: "x -> y" lines, then "query ->"."""
        return "".join(f"{x} -> {y}\n" for x, y in self.examples) + f"{self.query} ->"


def icl_answer(family: str, rule: dict, query: str, world: World | None = None) -> str:
    """The answer the hidden rule gives for `query` (a `world` is needed for the "relation" family)."""
    if family == "mapping":
        return rule["mapping"][query]
    if family == "linear":
        return str(rule["a"] * int(query) + rule["b"])
    if family == "relation":
        if world is None:
            raise ValueError("the relation family needs the world its facts come from")
        return surface(str(getattr(world.by_name[query], rule["relation"])))
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def icl_prompts(
    family: str, n: int, k: int, seed: int = 0, world: World | None = None, relation: str = "born_in"
) -> list[ICLPrompt]:
    """`n` prompts of `k` examples each from one family (see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if k < 0 or (family == "mapping" and k < 1):
        raise ValueError(f"k must be >= 0 (>= 1 for mapping, whose query is among the examples), got {k}")
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    rng = random.Random(f"icl-{family}-{seed}")
    world = world or (World(seed=0) if family == "relation" else None)
    out = []
    for _ in range(n):
        if family == "mapping":
            if k > len(MAPPING_WORDS):
                raise ValueError(f"k must be at most {len(MAPPING_WORDS)} for mapping, got {k}")
            xs = rng.sample(MAPPING_WORDS, k)
            rule = {"mapping": dict(zip(xs, rng.sample(MAPPING_WORDS, k), strict=True))}
            query = rng.choice(xs)
        elif family == "linear":
            rule = {"a": rng.randint(1, 5), "b": rng.randint(0, 9)}
            xs_all = rng.sample(range(21), min(k + 1, 21))
            xs, query = [str(x) for x in xs_all[:-1]], str(xs_all[-1])
        else:
            if k + 1 > len(world.people):
                raise ValueError(f"k + 1 must be at most the number of people, {len(world.people)}")
            rule = {"relation": relation}
            names = [p.name for p in rng.sample(world.people, k + 1)]
            xs, query = names[:-1], names[-1]
        examples = [(x, icl_answer(family, rule, x, world)) for x in xs]
        out.append(ICLPrompt(family, examples, query, icl_answer(family, rule, query, world), rule))
    return out


def icl_dataset(
    family: str, n: int, k: int, seed: int = 0, world: World | None = None, relation: str = "born_in"
) -> Dataset:
    """The prompts as a Dataset: text, query, answer, examples_x, examples_y, rule (JSON), family, k."""
    ps = icl_prompts(family, n, k, seed, world, relation)
    return Dataset.from_dict(
        {
            "text": [p.text for p in ps],
            "query": [p.query for p in ps],
            "answer": [p.answer for p in ps],
            "examples_x": [[x for x, _ in p.examples] for p in ps],
            "examples_y": [[y for _, y in p.examples] for p in ps],
            "rule": [json.dumps(p.rule, sort_keys=True) for p in ps],
            "family": [family] * n,
            "k": [k] * n,
        }
    )
