"""split_words gives CoNLL-2003 words as exact spans of the original text; the raw-text NER benchmark's
detokenizer writes CoNLL words back as text that split_words splits into the same words."""

import pytest
import regex
from conftest import load_script
from hypothesis import given, settings
from hypothesis import strategies as st

from hfmtl.serve.words import split_words


def words(text: str) -> list[str]:
    return [text[start:end] for start, end in split_words(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "U.S. President Barack Obama met Jean-Pierre Raffarin",
            ["U.S.", "President", "Barack", "Obama", "met", "Jean-Pierre", "Raffarin"],
        ),
        (
            "St. Louis-based Anheuser-Busch paid $1,000, or 3.5%.",
            ["St.", "Louis-based", "Anheuser-Busch", "paid", "$", "1,000", ",", "or", "3.5", "%", "."],
        ),
        ("He left. She came.", ["He", "left", ".", "She", "came", "."]),
        (
            "Did they (really) win? Yes; 2-1 [after extra time]!",
            [
                "Did",
                "they",
                "(",
                "really",
                ")",
                "win",
                "?",
                "Yes",
                ";",
                "2-1",
                "[",
                "after",
                "extra",
                "time",
                "]",
                "!",
            ],
        ),
        ('"It is over," he said.', ['"', "It", "is", "over", ",", '"', "he", "said", "."]),
        ('Quoted: "We won."', ["Quoted", ":", '"', "We", "won", ".", '"']),
        ("Germany's Kohl", ["Germany", "'s", "Kohl"]),
        (
            "I don't know; they'll see, I'm sure",
            ["I", "do", "n't", "know", ";", "they", "'ll", "see", ",", "I", "'m", "sure"],
        ),
        ("O'Brien can't beat AT&T's d'Arcy", ["O'Brien", "ca", "n't", "beat", "AT&T", "'s", "d'Arcy"]),
        ("the players' union", ["the", "players", "'", "union"]),
        (
            "J. Pooley on Oct. 2 in St. Petersburg, Fla., at 7 a.m.",
            ["J.", "Pooley", "on", "Oct.", "2", "in", "St.", "Petersburg", ",", "Fla.", ",", "at", "7", "a.m."],
        ),
        ("Mercantile Bancorp Inc. and Dr. No", ["Mercantile", "Bancorp", "Inc.", "and", "Dr.", "No"]),
        ("1. Michelle Freeman (Jamaica) 12.71", ["1.", "Michelle", "Freeman", "(", "Jamaica", ")", "12.71"]),
        ("it rose in 1996. The", ["it", "rose", "in", "1996", ".", "The"]),
        (
            "a 12-year-old's .596 and 1996-08-30 at 1:25.99, 26 1/2",
            ["a", "12-year-old", "'s", ".596", "and", "1996-08-30", "at", "1:25.99", ",", "26", "1/2"],
        ),
        ("C$0.45 and US$1.15 billion, +0.435", ["C$", "0.45", "and", "US$", "1.15", "billion", ",", "+0.435"]),
        ("wait... what -- now - then", ["wait", "...", "what", "--", "now", "-", "then"]),
        ("the U.S.-led talks in the U.S.", ["the", "U.S.-led", "talks", "in", "the", "U.S."]),
        (
            "mail jeffrey.hodgson@reuters.com or see www.reuters.com.",
            ["mail", "jeffrey.hodgson@reuters.com", "or", "see", "www.reuters.com", "."],
        ),
    ],
)
def test_conll_words(text, expected):
    assert words(text) == expected


def test_any_whitespace_separates_words():
    text = " a  b\tc\u00a0d\u2003e\u200bf\u3000g\n\nh\ufeffi\u2060j\x1fk\r\n"
    assert words(text) == list("abcdefghijk")
    assert split_words(text)[0] == (1, 2)


def test_letters_keep_their_marks_and_emoji_their_modifiers():
    text = "nai\u0308ve Zoë हिन्दी می\u200cخواهم 👍🏽 👨\u200d👩\u200d👧 🇫🇷 e\u0301!"
    assert words(text) == [
        "nai\u0308ve",
        "Zoë",
        "हिन्दी",
        "می\u200cخواهم",
        "👍🏽",
        "👨\u200d👩\u200d👧",
        "🇫🇷",
        "e\u0301",
        "!",
    ]


def test_nothing_but_separators_has_no_words():
    assert split_words("") == split_words(" \t\n") == split_words("\u200b\u200b \ufeff") == []


SEPARATORS = regex.compile(r"[\p{White_Space}\x1c-\x1f\u200b\u2060\ufeff]")


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80))
def test_spans_cover_every_visible_character_once_in_order(text):
    spans = split_words(text)
    assert all(start < end for start, end in spans)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False))
    assert not any(SEPARATORS.search(text, start, end) for start, end in spans)
    assert "".join(text[start:end] for start, end in spans) == SEPARATORS.sub("", text)


@pytest.fixture(scope="module")
def raw_benchmark():
    return load_script("benchmark_ner_raw")


CONLL_SENTENCES = [
    (
        ["Germany", "'s", "representative", "to", "the", "European", "Union", "'s", "committee", ",", "Werner"]
        + ["Zwingmann", ",", "said", "on", "Wednesday", "consumers", "should", "buy", "sheep", "meat", "."],
        "Germany's representative to the European Union's committee, Werner Zwingmann, said on Wednesday "
        "consumers should buy sheep meat.",
    ),
    (
        ['"', "I", "do", "n't", "see", "the", "ball", ",", '"', "said", "Tarango", "(", "U.S.", ")", "."],
        '"I don\'t see the ball," said Tarango (U.S.).',
    ),
    (
        ["St.", "Louis-based", "Mercantile", "Bancorp", "Inc.", ",", "a", "bank", ",", "paid", "$", "3.5"]
        + ["million", "-", "or", "1,000", "dollars", "a", "share", "-", "for", "Yankees", "'", "stock", "."],
        "St. Louis-based Mercantile Bancorp Inc., a bank, paid $3.5 million - or 1,000 dollars a share - for "
        "Yankees' stock.",
    ),
    (["1.", "Michelle", "Freeman", "(", "Jamaica", ")", "12.71"], "1. Michelle Freeman (Jamaica) 12.71"),
    (
        ["NSW", "Treasury", "launched", "a", "A$", "100", "million", "bond", "due", "2023", ":", "J.", "Smith"]
        + ["said", "..."],
        "NSW Treasury launched a A$100 million bond due 2023: J. Smith said...",
    ),
    (
        ["CRICKET", "-", "LEICESTERSHIRE", "TAKE", "OVER", "AT", "TOP", "."],
        "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP.",
    ),
]


@pytest.mark.parametrize(("conll_words", "text"), CONLL_SENTENCES)
def test_detokenized_conll_words_split_back_into_the_same_words(raw_benchmark, conll_words, text):
    written, spans = raw_benchmark.detokenize(conll_words)
    assert written == text
    assert [written[start:end] for start, end in spans] == conll_words
    assert words(written) == conll_words
    assert raw_benchmark.word_split_agreement([conll_words, ["the", "U.S", "."]]) == 0.5  # a CoNLL typo: `U.S.`


def test_gold_spans_and_span_f1(raw_benchmark):
    text, spans = raw_benchmark.detokenize(["U.S.", "President", "Bill", "Clinton", "met", "Jean-Pierre", "."])
    tags = ["B-LOC", "O", "I-PER", "I-PER", "O", "B-PER", "O"]  # an I- after O starts an entity, as in conlleval
    gold = raw_benchmark.bio_spans(tags, spans)
    assert {text[start:end] for start, end, _ in gold} == {"U.S.", "Bill Clinton", "Jean-Pierre"}
    assert raw_benchmark.bio_spans(["B-PER", "I-LOC", "B-LOC", "I-LOC"], [(0, 1), (2, 3), (4, 5), (6, 7)]) == {
        (0, 1, "PER"),
        (2, 3, "LOC"),
        (4, 7, "LOC"),
    }
    predicted = {(0, 4, "LOC"), (15, 27, "PER"), (32, 40, "PER")}  # two right; `Jean-Pi` ends too early
    assert raw_benchmark.span_f1([predicted], [gold]) == pytest.approx(2 * 2 / 6)
    assert raw_benchmark.span_f1([set()], [set()]) == 0.0


def test_ner_raw_text_matches_evaluate_on_plain_words(raw_benchmark, trained, tiny_config):
    result = raw_benchmark.ner_raw_text(trained / "model", tiny_config, limit=40)
    assert result["sentences"] == 40 and result["word_split_agreement"] == 1.0
    assert 0 < result["evaluate_f1"] <= 1
    # The tiny data's words are plain words: read as text, they are the same words and the same tokens.
    assert result["pipeline_f1"] == pytest.approx(result["evaluate_f1"], abs=1e-9)
    assert result["f1_gap_points"] == pytest.approx(100 * (result["evaluate_f1"] - result["pipeline_f1"]))
