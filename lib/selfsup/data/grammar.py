"""The machinery of ToyWorld's grammar: templates made of chunks, agreement, tagged words, and sentences.

A template is written as chunks separated by " | ", optionally followed by " @ " and the order of those
chunks in the second language, e.g. "{S} | {V:was} born | in {C} | . @ 0 2 1 3" (Chinese puts the place
before the verb). Inside a chunk a word is "word" (tag looked up in TAGS), "word/TAG" (explicit, for words
whose part of speech depends on context), "{X}" a slot filled by the caller with tagged words, or "{V:lemma}"
/ "{W:lemma}" a verb agreeing in number with the first / second subject. A word may carry a sense after "#"
("apple#company"): it is written "apple" in English, and the second language tells the senses apart.
"""

from __future__ import annotations

Word = tuple[str, str]  # (lexeme, universal POS tag)

POS_TAGS = [
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "VERB",
]

# Verbs that agree with their subject: lemma -> (singular, plural, tag).
VERBS = {
    "was": ("was", "were", "AUX"),
    "is": ("is", "are", "AUX"),
    "does": ("does", "do", "AUX"),
    "has_aux": ("has", "have", "AUX"),
    "has": ("has", "have", "VERB"),
    "like": ("likes", "like", "VERB"),
    "love": ("loves", "love", "VERB"),
    "enjoy": ("enjoys", "enjoy", "VERB"),
    "live": ("lives", "live", "VERB"),
    "work": ("works", "work", "VERB"),
    "eat": ("eats", "eat", "VERB"),
    "hate": ("hates", "hate", "VERB"),
    "own": ("owns", "own", "VERB"),
    "think": ("thinks", "think", "VERB"),
    "taste": ("tastes", "taste", "VERB"),
    "make": ("makes", "make", "VERB"),
    "sell": ("sells", "sell", "VERB"),
}

# The usual tag of every literal word in the templates; a template overrides it with "word/TAG".
_TAG_WORDS = {
    "DET": "the a an this that which all",
    "ADP": "in of from for by at as on with to after out over near since like about under along",
    "AUX": "was were is are can will would does do did has",
    "PART": "not",
    "CCONJ": "and but",
    "SCONJ": "although that because",
    "PRON": "she he they it her his one its everyone anyone who what",
    "PUNCT": ". , ?",
    "ADV": "really very often now never again too always so quite extremely truly down hard well also here "
    "upside where",
    "ADJ": "big old new red sweet green healthy muddy wooden small wireless cold clean short popular many "
    "famous quiet busy modern local own next last afraid",
    "VERB": "born lived employed employs ate picked cut bought sells rose opened wrote sat flooded fished put gave "
    "flew slept saw eating hit swung chased hid clicked bloom comes visited drank flows dries said "
    "recommend grew made cook visit fish based closed makes sells have live work like eat works found "
    "caught hanging planted walked played",
    "NOUN": "city birthplace home years company lunch table tree knife snack phone phones computers shares year "
    "store software river rain grass money loan account cave night insects ball game player hole wall "
    "button computer keyboard desk flowers winter water mountains people profession pet morning "
    "cities country chicken candy cat cheese world food job animal apple bank bat mouse spring kitchen bed",
}
TAGS = {w: tag for tag, words in _TAG_WORDS.items() for w in words.split()} | {"apple#company": "PROPN"}


class Template:
    """A parsed template: chunks of literal words, slots and agreeing verbs, and the second language's order."""

    __slots__ = ("chunks", "order", "spec")

    def __init__(self, spec: str) -> None:
        """Parse a template written as described in the module docstring."""
        self.spec = spec
        body, _, order = spec.partition(" @ ")
        self.chunks: list[list[object]] = [[_parse_item(t) for t in chunk.split()] for chunk in body.split(" | ")]
        self.order = tuple(int(i) for i in order.split()) if order else tuple(range(len(self.chunks)))
        if sorted(self.order) != list(range(len(self.chunks))):
            raise ValueError(f"template order {self.order} is not a permutation of its chunks: {spec!r}")

    def lexemes(self) -> set[str]:
        """The literal words and verb forms this template can write."""
        out = set()
        for chunk in self.chunks:
            for item in chunk:
                if isinstance(item, tuple) and item[0] in "VW":
                    out.update(VERBS[item[1]][:2])
                elif isinstance(item, tuple):
                    out.add(item[1])
        return out

    def realize(self, slots: dict[str, list[Word]], plural: bool = False, plural2: bool = False) -> Sent:
        """Fill the slots; "{V:..}" agrees with `plural`, "{W:..}" with `plural2`."""
        chunks = []
        for chunk in self.chunks:
            words: list[Word] = []
            for item in chunk:
                if isinstance(item, str):
                    words.extend(slots[item])
                elif item[0] == "w":
                    words.append((item[1], item[2]))
                else:
                    sg, pl, tag = VERBS[item[1]]
                    words.append((pl if (plural if item[0] == "V" else plural2) else sg, tag))
            chunks.append(words)
        return Sent(chunks, self.order)


def _parse_item(token: str) -> object:
    """One template token -> a slot name (str), ("V"|"W", lemma) or ("w", lexeme, tag)."""
    if token.startswith("{V:") or token.startswith("{W:"):
        return (token[1], token[3:-1])
    if token.startswith("{"):
        return token[1:-1]
    word, _, tag = token.partition("/")
    if not tag:
        tag = TAGS.get(word) or TAGS.get(word.split("#", 1)[0], "")
        if not tag:
            raise ValueError(f"no part-of-speech tag known for template word {word!r}; write it as word/TAG")
    if tag not in POS_TAGS:
        raise ValueError(f"unknown tag {tag!r} in {token!r}; allowed: {POS_TAGS}")
    return ("w", word, tag)


class Sent:
    """A sentence as chunks of tagged words, with the order of the chunks in the second language and its meaning.

    `facts` holds (person name, relation, value, negated) for what the sentence states about people;
    `polarity` is +1 / -1 for opinions; `sense` is (word index, "word:sense") for a sentence built around an
    ambiguous word; `about` names the person the sentence's subject refers to (for pronouns).
    """

    __slots__ = ("chunks", "order", "facts", "polarity", "sense", "about")

    def __init__(self, chunks: list[list[Word]], order: tuple[int, ...]) -> None:
        """Wrap chunks and their second-language order; meaning fields start empty."""
        self.chunks = chunks
        self.order = order
        self.facts: list[tuple[str, str, str, bool]] = []
        self.polarity = 0
        self.sense: tuple[int, str] | None = None
        self.about: str | None = None

    def words(self) -> list[Word]:
        """The English lexemes with their tags, in English order."""
        return [w for chunk in self.chunks for w in chunk]

    def tokens(self) -> list[str]:
        """The English words as written."""
        return [w.split("#", 1)[0] for chunk in self.chunks for w, _ in chunk]

    def text(self) -> str:
        """The English sentence, words separated by spaces."""
        return " ".join(self.tokens())

    def join(self, other: Sent, conj: str = "and") -> Sent:
        """Two sentences made one: "a b ." + "c d ." -> "a b and c d ." (meanings merged)."""
        head = self.chunks[:-1]  # drop the full stop
        chunks = head + [[(conj, "CCONJ")]] + other.chunks
        n = len(head)
        order = tuple(i for i in self.order if i < n) + (n,) + tuple(n + 1 + i for i in other.order)
        out = Sent(chunks, order)
        out.facts = self.facts + other.facts
        out.about = other.about or self.about
        out.polarity = other.polarity or self.polarity
        return out
