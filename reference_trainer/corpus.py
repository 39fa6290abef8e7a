"""A deterministic, offline English-like corpus with enough structure for a tiny model to learn.

Documents are built from sentence templates over a Zipf-distributed lexicon (real function words plus seeded
pseudo-words), with capitalised names, numbers, quotes, and a small share of non-ASCII words (accents, CJK,
emoji) so that a byte-fallback BPE tokenizer meets multi-byte characters. Only `random.Random(seed)` is used:
the same seed gives the same text on every machine and Python version.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

_FUNCTION_WORDS_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her one all we can their there been has more if will would so no when who what its into "
    "some than other time could only new these two may first then do any like my now over such our man me "
    "even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long "
    "get here between both life being under never day same another know while last might us great old year"
)
FUNCTION_WORDS = tuple(_FUNCTION_WORDS_TEXT.split(" "))
# fmt: off
NON_ASCII_WORDS = (
    "café", "naïve", "Zürich", "São", "façade", "über", "déjà", "jalapeño", "Ångström", "crème",
    "東京", "数据", "学习", "Привет", "мир", "γάμμα", "😀", "🚀", "€", "—",
)
ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br", "ch", "cl",
          "dr", "fl", "gr", "pl", "pr", "sh", "st", "str", "th", "tr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y")
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "rk", "st", "ck", "x")
SUFFIXES = ("", "", "", "", "s", "ed", "ing", "er", "ly", "tion", "ment", "ness", "able")
# fmt: on


def _pseudo_word(rng: random.Random) -> str:
    syllables = rng.choice((1, 1, 2, 2, 2, 3))
    stem = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
    return stem + rng.choice(SUFFIXES)


class Lexicon:
    """Content words with Zipfian frequencies; built once per seed."""

    def __init__(self, rng: random.Random, size: int = 3000) -> None:
        seen: set[str] = set(FUNCTION_WORDS)
        words: list[str] = []
        while len(words) < size:
            w = _pseudo_word(rng)
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.nouns = words[: size // 2]
        self.verbs = words[size // 2 : size * 5 // 6]
        self.adjectives = words[size * 5 // 6 :]
        self.names = [w.capitalize() for w in words[:200]]

    @staticmethod
    def zipf(rng: random.Random, items: list[str]) -> str:
        # Rank r is drawn with probability ~ 1/r: a heavy head the model can learn, a long tail for BPE.
        r = int(len(items) ** rng.random())
        return items[min(r, len(items)) - 1]


def _noun_phrase(rng: random.Random, lex: Lexicon) -> str:
    parts = [rng.choice(("the", "the", "a", "this", "every", "our", "their"))]
    if rng.random() < 0.4:
        parts.append(Lexicon.zipf(rng, lex.adjectives))
    parts.append(Lexicon.zipf(rng, lex.nouns))
    return " ".join(parts)


def _sentence(rng: random.Random, lex: Lexicon) -> str:
    kind = rng.random()
    subject = rng.choice(lex.names) if rng.random() < 0.25 else _noun_phrase(rng, lex)
    verb = Lexicon.zipf(rng, lex.verbs)
    if kind < 0.45:
        words = [
            subject,
            verb,
            _noun_phrase(rng, lex),
            rng.choice(FUNCTION_WORDS[:30]),
            _noun_phrase(rng, lex),
        ]
    elif kind < 0.65:
        year = rng.randint(1800, 2030)
        words = ["in", str(year), subject, "was", verb, "by", _noun_phrase(rng, lex)]
    elif kind < 0.8:
        amount = f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
        words = [
            subject,
            "costs",
            "$" + amount,
            "and",
            verb,
            rng.choice(FUNCTION_WORDS),
            _noun_phrase(rng, lex),
        ]
    elif kind < 0.9:
        quote = " ".join(Lexicon.zipf(rng, lex.nouns) for _ in range(rng.randint(2, 5)))
        words = [subject, "said", f'"{quote.capitalize()}"']
    else:
        words = [subject, "and", rng.choice(NON_ASCII_WORDS), verb, _noun_phrase(rng, lex)]
    text = " ".join(words)
    if rng.random() < 0.08:
        text = text.upper()
    end = rng.choice((".", ".", ".", ".", "?", "!", ";"))
    return text[0].upper() + text[1:] + end


def _document(rng: random.Random, lex: Lexicon) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 4)):
        paragraphs.append(" ".join(_sentence(rng, lex) for _ in range(rng.randint(2, 8))))
    return "\n".join(paragraphs)


def documents(seed: int, count: int, lexicon_seed: int = 0) -> Iterator[str]:
    """`count` documents; the lexicon depends only on `lexicon_seed`, so train and val share a language."""
    lex = Lexicon(random.Random(lexicon_seed))
    rng = random.Random(seed)
    for _ in range(count):
        yield _document(rng, lex)
