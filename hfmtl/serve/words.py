"""Plain text → CoNLL-2003-style words, as (start, end) character spans of the original text.

The NER head learned its tags on CoNLL words, so inference must read the same words. The rules:

- Whitespace of any kind (`str.isspace`) separates words, as do the zero-width space, word joiner and BOM
  (U+200B, U+2060, U+FEFF). Nothing else is dropped or changed: every span slices the original text exactly.
- Inside a whitespace-free chunk, each word is the first of these that fits:
  * a web or e-mail address (`www.reuters.com`, `jeffrey.hodgson@reuters.com`), ending on a non-punctuation;
  * dotted initials, with any hyphenated tail: `U.S.`, `a.m.`, `A.J.P.`, `U.S.-led`;
  * a currency prefix of one to three capitals: `C$`, `US$`;
  * a compound: number or word parts joined by `-` (`Jean-Pierre`, `Louis-based`, `1996-08-30`, `+27-11`),
    a trailing `-` kept at a chunk's end (`27- 28`). A number keeps `. , : /` between digits and letters
    after them (`3.5`, `1,000`, `1:25.99`, `1/2`, `.596`, `1990s`); a word keeps `'` or `&` between letters
    (`O'Brien`, `AT&T`). Letters include their combining marks, so no word is cut inside a letter;
  * a run of periods or hyphens (`...`, `--`);
  * else one grapheme: a punctuation mark, a symbol, an emoji with its modifiers.
- English clitics leave a compound as in CoNLL/PTB: `Germany's` → `Germany` `'s` (likewise `'re 've 'll 'd
  'm`), `don't` → `do` `n't`.
- A period right after a compound is a word of its own where a sentence ends: at the end of the text, or
  before whitespace and a capital (closing quotes or brackets may come between). It stays on the word where
  the sentence goes on (`Oct. 2`, `Fla.,`), and before a capital after an abbreviation: a capital letter
  (`J. Pooley`), a word in `ABBREVIATIONS` (`St. Louis`), a one- or two-digit list number starting a line.
"""

from __future__ import annotations

import regex

ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "rev", "st", "mt", "ft", "jr", "sr", "gen", "col", "lt", "sgt", "capt", "gov"}
    | {"sen", "rep", "inc", "corp", "co", "ltd", "bros", "no", "vs"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)
"""Words that keep their period even before a capital (compared in lowercase)."""

# White_Space plus U+001C..U+001F, which str.isspace also counts: then a text has no words exactly when
# str.strip leaves nothing of it, or nothing but zero-width characters.
_SEPARATOR = r"\p{White_Space}\x1c-\x1f\u200b\u2060\ufeff"
_ALNUM = r"[\p{L}\p{M}\p{N}]"
_LETTER = r"\p{L}\p{M}*"
# A number may carry letters after it (`3rd`, `1990s`, `10km`): alternation takes the first branch that fits.
_NUMBER = rf"(?:\+?\p{{N}}+(?:[.,:/]\p{{N}}+)*{_ALNUM}*|\.\p{{N}}+)"
# Zero-width (non-)joiners stay inside a word: Persian and Indic words and emoji sequences use them.
_WORD_PART = rf"{_ALNUM}+(?:['’&\u200c\u200d]{_ALNUM}+)*"
# An address ends on a character that is not punctuation, so that a sentence's final period stays a word. The
# e-mail user part is at most 64 characters (as in RFC 5321), which also keeps matching linear in the text.
_ADDRESS = (
    r"""(?:https?://|www\.)[^"<>]*[^"<>.,;:!?)\]'’”]|[\p{L}\p{N}._%+-]{1,64}@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+"""
)
_TOKEN = regex.compile(
    rf"""
    (?P<address>{_ADDRESS})
    | (?P<dotted>(?:{_LETTER}\.){{2,}}(?:-{_WORD_PART})*)
    | (?P<currency>\p{{Lu}}{{1,3}}\$)
    | (?P<clitic>['’](?i:s|re|ve|ll|d|m)(?!{_ALNUM}))
    | (?P<compound>(?:{_NUMBER}|{_WORD_PART})(?:-(?:{_NUMBER}|{_WORD_PART}))*(?:-\Z)?)
    | (?P<run>\.{{2,}}|-{{2,}})
    | (?P<other>\X)
    """,
    regex.VERBOSE,
)
_CHUNK = regex.compile(rf"[^{_SEPARATOR}]+")
_CLITIC = regex.compile(r"(?i)(?:n['’]t|['’](?:s|re|ve|ll|d|m))$")
# What follows a period: closing quotes/brackets, then whitespace and opening ones, then the next character.
_AFTER_PERIOD = regex.compile(rf"[\"'’”»)\]}}]*(?:(?P<gap>[{_SEPARATOR}]+)[\"'‘“«(\[{{]*)?(?P<next>.?)", regex.DOTALL)


def split_words(text: str) -> list[tuple[int, int]]:
    """The (start, end) character span of every word of `text`, in order; `text[start:end]` is the word."""
    spans: list[tuple[int, int]] = []
    for chunk in _CHUNK.finditer(text):
        position = chunk.start()
        while position < chunk.end():
            match = _TOKEN.match(text, position, chunk.end())
            start, position = match.span()
            if match.lastgroup == "compound":
                spans.extend(_without_clitic(text, start, position))
                if _keeps_period(text, start, position):
                    position += 1
                    spans[-1] = (spans[-1][0], position)
            else:
                spans.append((start, position))
    return spans


def _without_clitic(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """`Germany's` → `Germany` `'s`; a word that is only a clitic-like ending (`n't` alone) stays whole."""
    clitic = _CLITIC.search(text, start, end)
    if clitic is None or clitic.start() == start:
        return [(start, end)]
    return [(start, clitic.start()), (clitic.start(), end)]


def _keeps_period(text: str, start: int, end: int) -> bool:
    """Whether the period right after the compound `text[start:end]` is part of it (see the module docstring)."""
    if text[end : end + 1] != "." or text[end + 1 : end + 2] == ".":  # no period, or `...`: a word of its own
        return False
    after = _AFTER_PERIOD.match(text, end + 1)
    following = after["next"]
    if not following:
        return False  # the end of the text ends the sentence
    if not after["gap"]:
        return not following.isalnum()  # `Fla.,` goes on; in `end.Next` the period is its own word
    if not following.isupper():
        return True  # the sentence goes on: `Oct. 2`, `vs. the`
    word = text[start:end]
    if word.isdigit():  # a list number: `1. Michelle Freeman`, at the start of a line
        return len(word) <= 2 and not text[text.rfind("\n", 0, start) + 1 : start].strip()
    return len(word) == 1 and word.isupper() or word.lower() in ABBREVIATIONS
