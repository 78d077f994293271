"""The world behind ToyWorld's language: people, cities, companies, foods and the facts that relate them.

A `World` is drawn once from a seed (`random.Random(f"world-{seed}")`); every sentence and every task label
is derived from it, so a fact stated in pre-training text ("alice smith was born in lyon") is the same fact a
question later asks about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FEMALE = (
    "alice emma olivia sophia mia lena clara nora julia anna maria sara laura eva ruth hana yuki mei lucy grace"
).split()
MALE = (
    "bob david tom james peter paul leo max omar ivan carlos hugo felix oscar noah liam ben sam kenji arjun"
).split()
SURNAMES = (
    "smith jones garcia muller rossi tanaka kim silva novak dubois costa berg khan lopez weber moreau "
    "sato nguyen ali brown chen wong lee ivanov patel okafor larsen romero haddad fischer"
).split()
COUNTRIES = {
    "france": ["paris", "lyon", "marseille"],
    "germany": ["berlin", "munich", "hamburg"],
    "italy": ["rome", "milan", "naples"],
    "spain": ["madrid", "seville", "valencia"],
    "japan": ["tokyo", "kyoto", "osaka"],
    "brazil": ["recife", "salvador", "brasilia"],
    "egypt": ["cairo", "alexandria", "luxor"],
    "canada": ["toronto", "montreal", "vancouver"],
    "peru": ["lima", "cusco", "arequipa"],
    "kenya": ["nairobi", "mombasa", "kisumu"],
}
CITY_COUNTRY = {city: country for country, cities in COUNTRIES.items() for city in cities}
CITIES = list(CITY_COUNTRY)
# "apple" is both a company and a fruit: the lexeme carries its sense after "#", the surface word does not.
COMPANIES = {
    "apple#company": "phones",
    "zentro": "cars",
    "vexa": "shoes",
    "orbix": "games",
    "lumio": "lamps",
    "tarvo": "toys",
    "quenta": "medicine",
    "nimbo": "chips",
    "solvi": "bikes",
    "draxo": "software",
}
FOODS_SG = (
    "soup pizza pasta rice bread cheese salad curry cake pie sushi tofu chicken chocolate coffee tea mango banana"
).split()
FOODS_PL = ["noodles", "dumplings", "beans", "tacos", "cookies", "olives"]
FOODS = FOODS_SG + FOODS_PL
JOBS = ("teacher doctor engineer nurse lawyer cook pilot farmer writer painter baker driver architect artist").split()
ANIMALS = ["cat", "dog", "horse", "rabbit", "parrot", "turtle", "hamster", "goat", "owl", "snake", "eagle"]
VOWELS = "aeiou"

# Each ambiguous word and its two senses; the sense is decided by the sentence around it.
SENSES = {
    "apple": ("fruit", "company"),
    "bank": ("river", "money"),
    "bat": ("animal", "sports"),
    "mouse": ("animal", "computer"),
    "spring": ("season", "water"),
}

# Relations a person has exactly one value for (so a different value contradicts), and the many-valued ones.
FUNCTIONAL = ("born_in", "lives_in", "works_for", "job", "born_year")
RELATIONS = FUNCTIONAL + ("likes", "dislikes", "pet")


def article(word: str) -> str:
    """The indefinite article for a word: "an" before a vowel, "a" otherwise."""
    return "an" if word[0] in VOWELS else "a"


def surface(lex: str) -> str:
    """The written form of a lexeme: "apple#company" is written "apple"."""
    return lex.split("#", 1)[0]


@dataclass(frozen=True)
class Person:
    """One person of the world and their facts; `name` is "first last", unique in the world."""

    first: str
    last: str
    female: bool
    born_in: str
    born_year: int
    lives_in: str
    works_for: str
    job: str
    likes: tuple[str, ...]
    dislikes: tuple[str, ...]
    pet: str | None

    @property
    def name(self) -> str:
        """The full name, two words."""
        return f"{self.first} {self.last}"

    @property
    def pronoun(self) -> str:
        """The subject pronoun: "she" or "he"."""
        return "she" if self.female else "he"

    def holds(self, relation: str, value: str) -> bool:
        """Whether the (positive) fact `relation(self, value)` is true in the world."""
        if relation == "born_country":
            return CITY_COUNTRY[self.born_in] == value
        if relation == "lives_country":
            return CITY_COUNTRY[self.lives_in] == value
        got = getattr(self, relation)
        if isinstance(got, tuple):
            return value in got
        return str(got) == str(value)


class World:
    """People with birthplaces, homes, employers, jobs, tastes and pets, drawn from `seed`."""

    def __init__(self, seed: int = 0, n_people: int = 100) -> None:
        """Draw `n_people` people (at most 1200 distinct names) and their facts."""
        if not 2 <= n_people <= len(FEMALE + MALE) * len(SURNAMES):
            raise ValueError(f"n_people must be in [2, {len(FEMALE + MALE) * len(SURNAMES)}], got {n_people}")
        self.seed = seed
        rng = random.Random(f"world-{seed}")
        names = [(f, s, True) for f in FEMALE for s in SURNAMES] + [(m, s, False) for m in MALE for s in SURNAMES]
        rng.shuffle(names)
        self.people: list[Person] = []
        for first, last, female in names[:n_people]:
            born = rng.choice(CITIES)
            lives = born if rng.random() < 0.3 else rng.choice([c for c in CITIES if c != born])
            foods = rng.sample(FOODS, 3)
            self.people.append(
                Person(
                    first=first,
                    last=last,
                    female=female,
                    born_in=born,
                    born_year=rng.randint(1950, 2005),
                    lives_in=lives,
                    works_for=rng.choice(list(COMPANIES)),
                    job=rng.choice(JOBS),
                    likes=tuple(foods[:2]),
                    dislikes=(foods[2],),
                    pet=rng.choice(ANIMALS) if rng.random() < 0.7 else None,
                )
            )
        self.by_name = {p.name: p for p in self.people}
        self.company_city = {c: rng.choice(CITIES) for c in COMPANIES}

    def employees(self, company: str) -> list[Person]:
        """The people who work for `company`."""
        return [p for p in self.people if p.works_for == company]

    def residents(self, city: str) -> list[Person]:
        """The people who live in `city`."""
        return [p for p in self.people if p.lives_in == city]
