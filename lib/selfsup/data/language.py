"""ToyWorld's English: sentences about facts, opinions and ambiguous words, and documents about one topic.

`Speaker(world, rng)` turns facts of a `World` into `Sent`s (see grammar.py) and strings them into documents:
a person document opens with the full name and goes on with facts, opinions consistent with the person's
tastes and sentences about ambiguous words, using "he" / "she" for the previous sentence's subject and
joining sentences with "and". City and company documents tell where things are and who lives or works there.
"""

from __future__ import annotations

import random

from selfsup.data.grammar import Sent, Template, Word
from selfsup.data.templates import (
    CITY_TEMPLATES,
    COMPANY_TEMPLATES,
    COUNTRY_TEMPLATES,
    DETERMINERS,
    FACT_TEMPLATES,
    INTENSIFIERS,
    NEGATED_TEMPLATES,
    NEGATIVE,
    OPINION_TEMPLATES,
    POS_TEMPLATES,
    POSITIVE,
    REASON_OPINIONS,
    SENSE_TEMPLATES,
    VERB_OPINIONS,
)
from selfsup.data.world import (
    CITY_COUNTRY,
    COMPANIES,
    FOODS,
    FOODS_PL,
    Person,
    World,
    article,
)


def name_words(p: Person) -> list[Word]:
    """A person's full name as tagged words."""
    return [(p.first, "PROPN"), (p.last, "PROPN")]


class Speaker:
    """Turns a world's facts into sentences and documents, drawing choices from `rng`."""

    def __init__(self, world: World, rng: random.Random) -> None:
        """Speak about `world`, drawing every choice from `rng`."""
        self.world = world
        self.rng = rng
        # The adjectives opinions draw from, by polarity; the sentiment task narrows them per split.
        self.adjectives: dict[int, list[str]] = {1: POSITIVE, -1: NEGATIVE}

    def fact(
        self,
        p: Person,
        relation: str,
        value: str | None = None,
        negated: bool = False,
        subject: list[Word] | None = None,
        template: Template | None = None,
    ) -> Sent:
        """A sentence stating relation(p, value) (default: p's own value), optionally negated."""
        rng = self.rng
        if value is None:
            value = getattr(p, relation)
            value = rng.choice(value) if isinstance(value, tuple) else value
        table = NEGATED_TEMPLATES if negated else COUNTRY_TEMPLATES if relation.endswith("country") else FACT_TEMPLATES
        t = template or rng.choice(table[relation])
        slots = {
            "S": subject or name_words(p),
            "C": [(value, "PROPN")],
            "K": [(value, "PROPN")],
            "O": [(value, "PROPN")],
            "F": [(value, "NOUN")],
            "Y": [(str(value), "NUM")],
            "J": [(article(str(value)), "DET"), (str(value), "NOUN")],
            "A": [(article(str(value)), "DET"), (str(value), "NOUN")],
        }
        s = t.realize(slots, plural=subject is not None and subject[0][0] == "they")
        s.facts = [(p.name, relation, str(value), negated)]
        s.about = p.name
        return s

    def adjp(self, polarity: int) -> list[Word]:
        """An adjective phrase of the given polarity, with negation and intensifiers ("not good at all")."""
        rng = self.rng
        negate = rng.random() < 0.2
        words = self.adjectives[1 if (polarity > 0) != negate else -1]
        adj = rng.choice(words)
        if not negate:
            if rng.random() < 0.4:  # two adjectives of one polarity: what makes polarity learnable from raw text
                return [(adj, "ADJ"), ("and", "CCONJ"), (rng.choice([w for w in words if w != adj]), "ADJ")]
            return ([(rng.choice(INTENSIFIERS), "ADV")] if rng.random() < 0.5 else []) + [(adj, "ADJ")]
        form = rng.random()
        if form < 0.5:
            return (
                [("not", "PART"), (adj, "ADJ"), ("at", "ADP"), ("all", "DET")]
                if rng.random() < 0.5
                else [("not", "PART"), (adj, "ADJ")]
            )
        if form < 0.75:
            return [("far", "ADV"), ("from", "ADP"), (adj, "ADJ")]
        return [("anything", "PRON"), ("but", "ADP"), (adj, "ADJ")]

    def opinion(
        self,
        polarity: int,
        subject: list[Word] | None = None,
        p: Person | None = None,
        food: str | None = None,
        verbs: float = 0.25,
        reasons: float = 0.0,
    ) -> Sent:
        """A one-clause opinion about a food with the given polarity (+1 / -1).

        With probability `verbs` the verb alone carries the polarity ("would never eat the soup again"); with
        probability `reasons` a verb and an adjective both do ("loves the soup because it is tasty").
        """
        rng = self.rng
        food = food or rng.choice(self.world_foods)
        subject = subject or (name_words(p) if p else [(rng.choice(("she", "he", "they")), "PRON")])
        r = rng.random()
        if r < reasons:
            t = rng.choice(REASON_OPINIONS[polarity])
        elif r < reasons + verbs:
            t = rng.choice(VERB_OPINIONS[polarity])
        else:
            t = rng.choice(OPINION_TEMPLATES)
        slots = {
            "S": subject,
            "IT": [("they" if food in FOODS_PL else "it", "PRON")],
            "F": [(food, "NOUN")],
            "C": [(rng.choice(self.world_cities), "PROPN")],
            "D": [(rng.choice(DETERMINERS[food in FOODS_PL, "think" in t.spec or "that/" in t.spec]), "DET")],
            "ADJP": self.adjp(polarity),
        }
        s = t.realize(
            slots, plural=food in FOODS_PL if "{S}" not in t.spec else subject[0][0] == "they", plural2=food in FOODS_PL
        )
        s.polarity = polarity
        s.about = p.name if p else None
        return s

    def review(self, polarity: int, verbs: float = 0.25) -> Sent:
        """A sentiment example: one opinion, or two joined by "but" (the second decides) or "and" (both agree)."""
        r = self.rng.random()
        if r < 0.7:
            return self.opinion(polarity, verbs=verbs)
        first = self.opinion(-polarity if r < 0.9 else polarity, verbs=verbs)
        second = self.opinion(polarity, verbs=verbs)
        if r < 0.9:
            return first.join(second, "but")
        return first.join(second, "and")

    def sense_sentence(self, sense: str, subject: list[Word] | None = None) -> Sent:
        """A sentence using an ambiguous word in `sense` ("bank:river"); `.sense` = (word index, sense)."""
        rng = self.rng
        t = rng.choice(SENSE_TEMPLATES[sense])
        subject = subject or self.random_subject()
        s = t.realize({"S": subject, "C": [(rng.choice(self.world_cities), "PROPN")]}, plural=subject[0][0] == "they")
        lex = sense.replace(":", "#")
        s.sense = ([w for w, _ in s.words()].index(lex), sense)
        return s

    def random_subject(self) -> list[Word]:
        """A person's name or a pronoun, as the subject of a sentence that is not about facts."""
        if self.rng.random() < 0.5:
            return name_words(self.rng.choice(self.world.people))
        return [(self.rng.choice(("she", "he", "they")), "PRON")]

    @property
    def world_foods(self) -> list[str]:
        """Every food of the world."""
        return FOODS

    @property
    def world_cities(self) -> list[str]:
        """Every city of the world."""
        return list(CITY_COUNTRY)

    # Documents -------------------------------------------------------------------------------------------

    def person_document(self, p: Person) -> list[Sent]:
        """Sentences about one person: the birthplace always, then other facts, opinions and asides, shuffled."""
        rng = self.rng
        body: list[Sent] = []
        r = rng.random()
        if r < 0.35:
            first = self.fact(p, "born_in")
        elif r < 0.6:
            first = self._born_both(p)
        else:
            first = self.fact(p, "job")
            body.append(self.fact(p, "born_in"))
        if r >= 0.6 or rng.random() < 0.5:
            body.append(self.fact(p, "born_year") if r < 0.35 or r >= 0.6 else self.fact(p, "job"))
        body.append(self.fact(p, "lives_in"))
        if rng.random() < 0.4:
            s = FACT_TEMPLATES["works_job"][0].realize(
                {"S": name_words(p), "O": [(p.works_for, "PROPN")], "J": [(article(p.job), "DET"), (p.job, "NOUN")]}
            )
            s.facts, s.about = [(p.name, "works_for", p.works_for, False), (p.name, "job", p.job, False)], p.name
            body.append(s)
        else:
            body.append(self.fact(p, "works_for"))
        for food in rng.sample(p.likes, rng.randint(1, 2)):
            liked = self.opinion(1, p=p, food=food, reasons=0.5) if rng.random() < 0.5 else self.fact(p, "likes", food)
            body.append(liked)
        if rng.random() < 0.6:
            disliked = self.opinion(-1, p=p, food=p.dislikes[0], reasons=0.5)
            body.append(disliked if rng.random() < 0.5 else self.fact(p, "dislikes"))
        if rng.random() < 0.7:
            body.append(self._taste_review(p))
        if p.pet and rng.random() < 0.7:
            body.append(self.fact(p, "pet"))
        if rng.random() < 0.5:
            sense = (
                "apple:company"
                if p.works_for == "apple#company" and rng.random() < 0.5
                else rng.choice(list(SENSE_TEMPLATES))
            )
            body.append(self._about(self.sense_sentence(sense, name_words(p)), p))
        if rng.random() < 0.3:
            body.append(self._about(self._pos_sentence(p), p))
        rng.shuffle(body)
        if rng.random() < 0.5:  # a fact said twice in other words, as people do: it rewards reading the context
            said = [s for s in [first] + body if len(s.facts) == 1 and s.facts[0][1] in FACT_TEMPLATES]
            if said:
                _, relation, value, _ = rng.choice(said).facts[0]
                body.append(self.fact(p, relation, value))
        return self._link([first] + body, p)

    def _taste_review(self, p: Person) -> Sent:
        """Opinions that follow p's tastes: two liked foods praised, or a liked one praised "but" a disliked one."""
        liked = self.rng.sample(p.likes, 2)
        me = [(p.pronoun, "PRON")]
        if self.rng.random() < 0.5:
            s = self.opinion(1, me, food=liked[0], reasons=0.3).join(self.opinion(1, me, food=liked[1]), "and")
        else:
            good = self.opinion(1, me, food=liked[0], reasons=0.3)
            bad = self.opinion(-1, me, food=p.dislikes[0], reasons=0.3)
            s = good.join(bad, "but") if self.rng.random() < 0.5 else bad.join(good, "but")
        s.about = p.name
        return s

    def _about(self, s: Sent, p: Person) -> Sent:
        """Mark `s` as about `p` when its first words are p's name."""
        if s.words()[:2] == name_words(p):
            s.about = p.name
        return s

    def _born_both(self, p: Person) -> Sent:
        s = FACT_TEMPLATES["born_both"][0].realize(
            {"S": name_words(p), "C": [(p.born_in, "PROPN")], "Y": [(str(p.born_year), "NUM")]}
        )
        s.facts = [(p.name, "born_in", p.born_in, False), (p.name, "born_year", str(p.born_year), False)]
        s.about = p.name
        return s

    def _pos_sentence(self, p: Person) -> Sent:
        t = self.rng.choice(POS_TEMPLATES)
        food = self.rng.choice(p.likes)
        plural = food in FOODS_PL
        return t.realize(
            {
                "S": name_words(p),
                "F": [(food, "NOUN")],
                "DEM": [("those" if plural else "that", "DET")],
                "C": [(self.rng.choice(self.world_cities), "PROPN")],
                "POSS": [("her" if p.female else "his", "PRON")],
            },
            plural=plural,
        )

    def _link(self, sents: list[Sent], p: Person) -> list[Sent]:
        """Replace a repeated subject by "he"/"she" (not in the birthplace sentence) and join some neighbours."""
        rng = self.rng
        out: list[Sent] = [sents[0]]
        name = name_words(p)
        for s in sents[1:]:
            prev = out[-1]
            starts_with_name = s.chunks[0] == name
            born = any(f[1] == "born_in" for f in s.facts)  # birthplaces keep the name, for closed-book fact QA
            if starts_with_name and not born and prev.about == p.name and rng.random() < 0.6:
                s.chunks[0] = [(p.pronoun, "PRON")]
                if rng.random() < 0.3 and len(prev.chunks) < 7:
                    out[-1] = prev.join(s, "and")
                    continue
            out.append(s)
        return out

    def city_document(self, city: str) -> list[Sent]:
        """Sentences about a city: its country, who lives there or was born there, an opinion about its food."""
        rng = self.rng
        country = CITY_COUNTRY[city]
        slots = {"C": [(city, "PROPN")], "K": [(country, "PROPN")]}
        sents = [rng.choice(CITY_TEMPLATES[:3]).realize(slots)]
        if rng.random() < 0.5:
            sents.append(rng.choice(CITY_TEMPLATES[3:]).realize(slots))
        residents = self.world.residents(city)
        rng.shuffle(residents)
        if len(residents) >= 2 and rng.random() < 0.5:
            a, b = residents[:2]
            s = FACT_TEMPLATES["lives_in"][0].realize(
                {"S": name_words(a) + [("and", "CCONJ")] + name_words(b), "C": [(city, "PROPN")]}, plural=True
            )
            s.facts = [(a.name, "lives_in", city, False), (b.name, "lives_in", city, False)]
            sents.append(s)
        elif residents:
            sents.append(self.fact(residents[0], "lives_in"))
        born = [q for q in self.world.people if q.born_in == city]
        if born:
            sents.append(self.fact(rng.choice(born), "born_in"))
        if rng.random() < 0.5:
            sents.append(self.opinion(rng.choice((1, -1)), reasons=0.5))
        return sents

    def review_document(self) -> list[Sent]:
        """Someone's opinions of a few foods, most with their reasons: where the polarity of adjectives shows."""
        rng = self.rng
        subject = self.random_subject()
        sents = []
        for food in rng.sample(self.world_foods, rng.randint(2, 4)):
            s = self.opinion(rng.choice((1, -1)), subject if not sents else None, food=food, reasons=0.8)
            sents.append(s)
        return sents

    def company_document(self, company: str) -> list[Sent]:
        """Sentences about a company: where it is, what it makes, who works there."""
        rng = self.rng
        slots = {
            "O": [(company, "PROPN")],
            "C": [(self.world.company_city[company], "PROPN")],
            "PROD": [(COMPANIES[company], "NOUN")],
        }
        sents = [t.realize(slots) for t in rng.sample(COMPANY_TEMPLATES, 2)]
        staff = self.world.employees(company)
        for q in rng.sample(staff, min(len(staff), 2)):
            sents.append(self.fact(q, "works_for"))
        if company == "apple#company":
            sents.append(self.sense_sentence("apple:company"))
        return sents
