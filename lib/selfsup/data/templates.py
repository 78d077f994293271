"""The sentence templates of ToyWorld's English and the second language's chunk order (syntax in grammar.py).

Templates are grouped by what they say: facts, their negations and country-level forms (for NLI), city and
company descriptions, opinions (sentiment), ambiguous words in context (word sense), words whose part of
speech changes, and questions.
"""

from __future__ import annotations

from selfsup.data.grammar import Template


def _templates(*specs: str) -> list[Template]:
    return [Template(s) for s in specs]


FACT_TEMPLATES = {
    "born_in": _templates(
        "{S} | {V:was} born | in {C} | . @ 0 2 1 3",
        "{S} | {V:was} born | in the city of {C} | . @ 0 2 1 3",
        "{S} | {V:is} from | {C} | .",
        "{C} | is the birthplace of | {S} | . @ 2 1 0 3",
    ),
    "born_year": _templates("{S} | {V:was} born | in {Y} | . @ 0 2 1 3"),
    "born_both": _templates("{S} | {V:was} born | in {C} | in {Y} | . @ 0 3 2 1 4"),
    "lives_in": _templates(
        "{S} | {V:live} | in {C} | . @ 0 2 1 3",
        "{S} | {V:has_aux} lived | in {C} | for many years | . @ 0 3 2 1 4",
        "{S} | now | {V:live} | in {C} | . @ 0 1 3 2 4",
        "the home of | {S} | is in {C} | . @ 1 0 2 3",
    ),
    "works_for": _templates(
        "{S} | {V:work} | for {O} | . @ 0 2 1 3",
        "{S} | {V:is} employed | by {O} | . @ 0 2 1 3",
        "{O} | employs | {S} | .",
    ),
    "job": _templates("{S} | {V:is} | {J} | .", "{S} | {V:work} | as {J} | . @ 0 2 1 3"),
    "works_job": _templates("{S} | {V:work} | at {O} | as {J} | . @ 0 2 3 1 4"),
    "likes": _templates(
        "{S} | {V:like} | {F} | .",
        "{S} | really | {V:like} | {F} | .",
        "{S} | {V:love} | {F} | .",
        "{S} | {V:enjoy} | {F} | .",
        "{S} | {V:eat} | {F} | very often | . @ 0 3 1 2 4",
    ),
    "dislikes": _templates(
        "{S} | {V:does} not like | {F} | .", "{S} | {V:hate} | {F} | .", "{S} | never | {V:eat} | {F} | ."
    ),
    "pet": _templates(
        "{S} | {V:has} | {A} | .", "{S} | {V:own} | {A} | .", "{S} | {V:has} | {A} | as a pet | . @ 0 3 1 2 4"
    ),
}
# Negated forms of the facts, used as NLI hypotheses ("alice smith was not born in lyon").
NEGATED_TEMPLATES = {
    "born_in": _templates("{S} | {V:was} not born | in {C} | . @ 0 2 1 3"),
    "lives_in": _templates("{S} | {V:does} not live | in {C} | . @ 0 2 1 3"),
    "works_for": _templates("{S} | {V:does} not work | for {O} | . @ 0 2 1 3"),
    "likes": _templates("{S} | {V:does} not like | {F} | ."),
}
COUNTRY_TEMPLATES = {
    "born_country": _templates("{S} | {V:was} born | in {K} | . @ 0 2 1 3"),
    "lives_country": _templates("{S} | {V:live} | in {K} | . @ 0 2 1 3"),
}
CITY_TEMPLATES = _templates(
    "{C} | is a city | in {K} | . @ 0 2 1 3",
    "{C} | is in {K} | .",
    "{C} | is a big city | in {K} | . @ 0 2 1 3",
    "{C} | is an old city | .",
    "many people | live | in {C} | . @ 0 2 1 3",
)
COMPANY_TEMPLATES = _templates(
    "{O} | is a company | in {C} | . @ 0 2 1 3",
    "{O} | is based | in {C} | . @ 0 2 1 3",
    "{O} | makes | {PROD} | .",
    "{O} | sells | {PROD} | all over the world | . @ 0 2 1 3 4",
)
# Opinions: {D} a determiner, {ADJP} an adjective phrase whose polarity the caller knows.
OPINION_TEMPLATES = _templates(
    "{D} {F} | {V:was} | {ADJP} | .",
    "{D} {F} | in {C} | {V:was} | {ADJP} | . @ 1 0 2 3 4",
    "{S} | said that/SCONJ | {D} {F} | {W:was} | {ADJP} | .",
    "{S} | {V:think} | {D} {F} | {W:is} | {ADJP} | .",
)
VERB_OPINIONS = {
    1: _templates(
        "{S} | {V:love} | the {F} | here | .",
        "{S} | would recommend | the {F} | to everyone | . @ 0 2 1 3 4",
        "{S} | would eat | the {F} | again | . @ 0 2 1 3 4",
    ),
    -1: _templates(
        "{S} | {V:hate} | the {F} | here | .",
        "{S} | would never eat | the {F} | again | . @ 0 2 1 3 4",
        "{S} | would not recommend | the {F} | to anyone | . @ 0 2 1 3 4",
    ),
}
# Opinions that give their reason, for documents (pre-training text) only, never for the sentiment task: they
# put an adjective next to a verb of known polarity ("loves the soup because it is tasty"), which is how a
# model that reads raw text can learn the polarity of adjectives that no labelled review contains.
REASON_OPINIONS = {
    1: _templates(
        "{S} | {V:love} | the {F} | because {IT} {W:is} | {ADJP} | .",
        "{S} | {V:enjoy} | the {F} | because {IT} {W:is} | {ADJP} | .",
        "{S} | would eat | the {F} | again | because {IT} {W:was} | {ADJP} | . @ 0 2 1 3 4 5 6",
    ),
    -1: _templates(
        "{S} | {V:hate} | the {F} | because {IT} {W:is} | {ADJP} | .",
        "{S} | would never eat | the {F} | again | because {IT} {W:was} | {ADJP} | . @ 0 2 1 3 4 5 6",
        "{S} | would not recommend | the {F} | because {IT} {W:was} | {ADJP} | . @ 0 2 1 3 4 5",
    ),
}
# Determiners by (plural noun, after "think" or "that"): there "that" would read as a conjunction, or be doubled.
DETERMINERS = {
    (False, False): ("the", "this", "that"),
    (False, True): ("the", "this"),
    (True, False): ("the", "these", "those"),
    (True, True): ("the", "these"),
}
# Ten adjectives of each polarity: few enough that a minute of pre-training sees each one often in contexts
# that reveal its polarity ("tasty and fresh", "loves the soup because it is tasty").
POSITIVE = "good tasty delicious excellent wonderful fresh amazing lovely perfect superb".split()
NEGATIVE = "bad terrible awful bland stale disgusting horrible soggy rotten greasy".split()
# The labelled sentiment task trains on SEEN adjectives and is validated and tested on HELD_OUT ones (half of each
# polarity): what the few labels cannot teach, the polarity of an unseen word, must come from pre-training.
SEEN_ADJECTIVES = {1: POSITIVE[::2], -1: NEGATIVE[::2]}
HELD_OUT_ADJECTIVES = {1: POSITIVE[1::2], -1: NEGATIVE[1::2]}
INTENSIFIERS = ["very", "really", "extremely", "quite", "so", "truly"]
# Sentences whose sense of an ambiguous word follows from the words around it.
SENSE_TEMPLATES = {
    "apple:fruit": _templates(
        "{S} | ate | an apple#fruit | after lunch | . @ 0 3 1 2 4",
        "the apple#fruit | on the table | was red and sweet | .",
        "{S} | picked | an apple#fruit | from the tree | . @ 0 3 1 2 4",
        "{S} | cut | the apple#fruit | with a knife | . @ 0 3 1 2 4",
        "a green apple#fruit | is a healthy snack | .",
    ),
    "apple:company": _templates(
        "{S} | bought | a new phone | from apple#company | . @ 0 3 1 2 4",
        "apple#company | sells | phones and computers | .",
        "shares of apple#company | rose | this year | . @ 0 2 1 3",
        "apple#company | opened | a new store | in {C} | . @ 0 3 1 2 4",
        "{S} | wrote | software | for apple#company | . @ 0 3 1 2 4",
    ),
    "bank:river": _templates(
        "{S} | sat | on the bank#river | of the river | . @ 0 3 2 1 4",
        "the river | flooded | the bank#river | after the rain | . @ 0 3 1 2 4",
        "{S} | fished | from the bank#river | . @ 0 2 1 3",
        "grass | grew | on the muddy bank#river | . @ 0 2 1 3",
        "{S} | walked | along the bank#river | near {C} | . @ 0 3 2 1 4",
    ),
    "bank:money": _templates(
        "{S} | put | money | in the bank#money | . @ 0 3 1 2 4",
        "the bank#money | gave | {S} | a loan | .",
        "{S} | opened | an account | at the bank#money | . @ 0 3 1 2 4",
        "the bank#money | in {C} | was closed | . @ 1 0 2 3",
    ),
    "bat:animal": _templates(
        "a bat#animal | flew | out of the cave | at night | . @ 0 3 2 1 4",
        "the bat#animal | slept | upside down | . @ 0 2 1 3",
        "{S} | saw | a bat#animal | eating insects | .",
        "a bat#animal | flew | over {C} | at night | . @ 0 3 2 1 4",
        "{S} | saw | a bat#animal | hanging in the cave | . @ 0 3 1 2 4",
    ),
    "bat:sports": _templates(
        "{S} | hit | the ball | with a bat#sports | . @ 0 3 1 2 4",
        "{S} | bought | a wooden bat#sports | for the game | . @ 0 3 1 2 4",
        "the player | swung | the bat#sports | hard | .",
        "{S} | played | with a new bat#sports | in {C} | . @ 0 3 2 1 4",
    ),
    "mouse:animal": _templates(
        "the cat | chased | a mouse#animal | .",
        "a small mouse#animal | ate | the cheese | .",
        "the mouse#animal | hid | in a hole | in the wall | . @ 0 3 2 1 4",
        "{S} | found | a mouse#animal | under the bed | . @ 0 3 1 2 4",
        "{S} | was afraid of | the mouse#animal | in the kitchen | . @ 0 3 1 2 4",
    ),
    "mouse:computer": _templates(
        "{S} | clicked | the button | with the mouse#computer | . @ 0 3 1 2 4",
        "{S} | bought | a wireless mouse#computer | for the computer | . @ 0 3 1 2 4",
        "the mouse#computer | and the keyboard | are | on the desk | . @ 0 1 3 2 4",
    ),
    "spring:season": _templates(
        "in spring#season | the flowers | bloom | . @ 1 0 2 3",
        "{S} | visited | {C} | in the spring#season | . @ 0 3 1 2 4",
        "spring#season | comes | after winter | . @ 0 2 1 3",
        "{S} | planted | flowers | in spring#season | . @ 0 3 1 2 4",
    ),
    "spring:water": _templates(
        "{S} | drank | cold water | from the spring#water | . @ 0 3 1 2 4",
        "the spring#water | in the mountains | never | dries up/ADP | . @ 1 0 2 3 4",
        "clean water | flows | from the spring#water | . @ 0 2 1 3",
    ),
}
# Words whose part of speech depends on the sentence (cook, visit, fish, that, like, has).
POS_TEMPLATES = _templates(
    "{S} | can | cook/VERB | {F} | very well | . @ 0 4 1 2 3 5",
    "{S} | will | visit/VERB | {C} | next year | . @ 0 4 1 2 3 5",
    "{POSS} visit/NOUN | to {C} | was short | . @ 1 0 2 3",
    "{DEM} {F} | {V:taste} | like/ADP candy | .",
    "{S} | can | fish/VERB | in the river | . @ 0 3 1 2 4",
    "the fish/NOUN | in the river | are big | . @ 1 0 2 3",
)
# Questions for extractive and fact QA; Chinese keeps the question word where the answer would stand.
QUESTION_TEMPLATES = {
    "born_in": _templates("where | was | {S} | born | ? @ 2 0 3 1 4"),
    "lives_in": _templates("where | does | {S} | live | ? @ 2 0 1 3 4"),
    "works_for": _templates("which company | does | {S} | work for | ? @ 2 1 3 0 4"),
    "job": _templates("what | is | the job of | {S} | ? @ 3 2 1 0 4"),
    "born_year": _templates("in which year | was | {S} | born | ? @ 2 0 3 1 4"),
    "likes": _templates("what food | does | {S} | like | ? @ 2 1 3 0 4"),
    "dislikes": _templates("what food | does | {S} | not like | ? @ 2 1 3 0 4"),
    "pet": _templates("what animal | does | {S} | have | ? @ 2 1 3 0 4"),
    "who_works_for": _templates("who | works | for {O} | ? @ 0 2 1 3"),
    "who_born_in": _templates("who | was born | in {C} | ? @ 0 2 1 3"),
}
ALL_TEMPLATES = (
    [
        t
        for group in (
            FACT_TEMPLATES,
            NEGATED_TEMPLATES,
            COUNTRY_TEMPLATES,
            SENSE_TEMPLATES,
            VERB_OPINIONS,
            REASON_OPINIONS,
            QUESTION_TEMPLATES,
        )
        for ts in group.values()
        for t in ts
    ]
    + CITY_TEMPLATES
    + COMPANY_TEMPLATES
    + OPINION_TEMPLATES
    + POS_TEMPLATES
)
