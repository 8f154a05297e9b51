"""Write the tiny encoder, tokenizer and data that `configs/tiny.yaml` and the tests use.

Everything is synthetic (no third-party text) and seeded, so running this again gives the same files:
    python scripts/make_tiny_assets.py            # writes tests/assets/tiny/{encoder,data}
The encoder is a randomly initialised 2-layer BERT (hidden 32) with a WordPiece tokenizer trained on the
tiny corpus, small enough to commit (~150 KB) and fast enough to train in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ADJECTIVES = {"wonderful": 0.95, "great": 0.85, "good": 0.7, "fine": 0.6, "dull": 0.35, "bad": 0.25, "awful": 0.1}
NOUNS = ["film", "movie", "story", "plot", "cast", "ending", "soundtrack", "script"]
PEOPLE = [["Anna"], ["Peter", "Blackburn"], ["Maria", "Lopez"], ["Kenji"], ["Olga", "Ivanova"], ["Tom", "Berg"]]
PLACES = [["Paris"], ["New", "York"], ["Lagos"], ["Buenos", "Aires"], ["Oslo"], ["Hong", "Kong"]]
ORGS = [["Reuters"], ["European", "Union"], ["Acme", "Corp"], ["Red", "Cross"], ["Nasa"]]
MISC = [["German"], ["British"], ["Olympic"], ["French"]]


def sentiment_sentence(rng: random.Random) -> tuple[str, float]:
    adjective = rng.choice(list(ADJECTIVES))
    very = rng.random() < 0.3
    score = ADJECTIVES[adjective]
    if very:
        score = min(1.0, max(0.0, score + (0.1 if score > 0.5 else -0.1)))
    text = f"The {rng.choice(NOUNS)} was {'very ' if very else ''}{adjective} ."
    return text, round(score, 4)


def ner_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    parts = [
        (rng.choice(PEOPLE), "PER"),
        (["met", "officials", "of"], None),
        (rng.choice(ORGS), "ORG"),
        (["in"], None),
        (rng.choice(PLACES), "LOC"),
    ]
    if rng.random() < 0.5:
        parts += [(["with"], None), (["a"], None), (rng.choice(MISC), "MISC"), (["delegation"], None)]
    words, tags = [], []
    for chunk, entity in parts:
        words += chunk
        tags += ["O"] * len(chunk) if entity is None else [f"B-{entity}"] + [f"I-{entity}"] * (len(chunk) - 1)
    return words + ["."], tags + ["O"]


def write_data(out: Path, rng: random.Random, sizes: dict[str, int]) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    corpus = []
    for split, size in sizes.items():
        rows = []
        for index in range(size):
            text, intensity = sentiment_sentence(rng)
            rows.append(
                {"id": f"{split}-{index}", "text": text, "label": int(intensity > 0.5), "intensity": intensity}
            )
            corpus.append(text)
        (out / f"sst_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        lines = ["-DOCSTART- O", ""]
        for _ in range(size):
            words, tags = ner_sentence(rng)
            lines += [f"{w} {t}" for w, t in zip(words, tags, strict=True)] + [""]
            corpus.append(" ".join(words))
        (out / f"ner_{split}.txt").write_text("\n".join(lines), encoding="utf-8")
    return corpus


def build_tokenizer(corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    # A small vocabulary on purpose: rarer words split into several pieces, as real NER data does.
    tokenizer.train_from_iterator(
        corpus, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",  # BERT's: the second text and its [SEP] are token type 1
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def build_encoder(vocab_size: int, seed: int) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertModel(config)


def write_emotions(out: Path, rng: random.Random, sizes: dict[str, int]) -> None:
    """A multi-label task over the sentiment sentences' words (so the tokenizer needs nothing new): `joy` or
    `anger` by the adjective, plus `surprise` after "very" and `disgust` for "awful"; one to three labels."""
    for split, size in sizes.items():
        rows = []
        for index in range(size):
            text, score = sentiment_sentence(rng)
            emotions = ["joy" if score > 0.5 else "anger"]
            emotions += ["surprise"] if " very " in text else []
            emotions += ["disgust"] if "awful" in text else []
            rows.append({"id": f"{split}-{index}", "text": text, "emotions": emotions})
        (out / f"emotions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_pairs(out: Path, rng: random.Random, sizes: dict[str, int]) -> None:
    """A sentence-pair regression task over the sentiment sentences: how alike two sentences' sentiment is
    (1 minus the gap between their intensities), so the answer needs both texts."""
    for split, size in sizes.items():
        rows = []
        for index in range(size):
            (first, a), (second, b) = sentiment_sentence(rng), sentiment_sentence(rng)
            score = round(1 - abs(a - b), 4)
            rows.append({"id": f"{split}-{index}", "sentence1": first, "sentence2": second, "score": score})
        (out / f"pairs_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("tests/assets/tiny"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    corpus = write_data(args.out / "data", rng, {"train": 240, "validation": 60})
    tokenizer = build_tokenizer(corpus, vocab_size=128)
    tokenizer.save_pretrained(args.out / "encoder")
    build_encoder(len(tokenizer), args.seed).save_pretrained(args.out / "encoder")
    # Their own generators, drawn after the rest: adding these tasks left every earlier file unchanged.
    write_emotions(args.out / "data", random.Random(args.seed + 1), {"train": 240, "validation": 60})
    write_pairs(args.out / "data", random.Random(args.seed + 2), {"train": 240, "validation": 60})
    print(f"wrote {args.out}: vocabulary {len(tokenizer)}, {len(corpus)} sentences")  # noqa: T201


if __name__ == "__main__":
    main()
