"""MultiTaskPipeline: for each text, every task's answer from one encoder pass per batch.

Texts are split into CoNLL-style words (`hfmtl.words`), tokenized as NER training tokenized its words, so that
`U.S.` or `Jean-Pierre` is one word here as it was there. Texts longer than the encoder's window are not cut:
they are split into overlapping windows (`stride` tokens of overlap). NER labels each word from the window where
it sits farthest from an edge; the sequence-level tasks average their windows (sentiment: the probabilities;
intensity: the values). Batches are formed from windows sorted by length, so there is little padding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from hfmtl.data.collate import Collator
from hfmtl.errors import InputError
from hfmtl.model_dir import load_model_dir
from hfmtl.modeling import MultiTaskModel
from hfmtl.tasks import classification, regression, token_classification
from hfmtl.words import split_words


@dataclass(frozen=True)
class _Window:
    """One encoder input: a span of one text's tokens."""

    text_index: int
    input_ids: list[int]
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]
    """Each token's character span in the original text ((0, 0) for special tokens)."""


class MultiTaskPipeline:
    """`pipeline(text)` → `{"sentiment": {"label", "score"}, "ner": [entity, ...], "intensity": float}`."""

    def __init__(
        self,
        model: MultiTaskModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 512,
        stride: int = 32,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not tokenizer.is_fast:
            raise InputError("MultiTaskPipeline needs a fast tokenizer (for word boundaries and character offsets)")
        device = _device(device)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.max_length = min(max_length, model.encoder.config.max_position_embeddings)
        self.stride = stride
        self.batch_size = batch_size
        self.device = device
        self.specs = {spec.name: spec for spec in model.config.task_specs}
        self.collator = Collator(tokenizer.pad_token_id)
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model_dir_or_repo: str | Path,
        *,
        revision: str | None = None,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
        **options: Any,
    ) -> MultiTaskPipeline:
        """From a model folder, or a Hub repo id (downloaded once, then read from the local cache).

        `allow_pickle` also accepts a folder whose weights are only a pytorch_model.bin, and `trust_remote_code`
        runs the modelling code an encoder saved in the folder: opt in for trusted ones only.
        """
        path = Path(model_dir_or_repo)
        if not path.exists() and "/" in str(model_dir_or_repo) and not str(model_dir_or_repo).startswith((".", "/")):
            from hfmtl.hub import download_model

            path = download_model(str(model_dir_or_repo), revision=revision)
        loaded = load_model_dir(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        if loaded.run_config is not None:  # read texts the way the model was trained to
            options.setdefault("max_length", loaded.run_config.encoder.max_length)
        return cls(loaded.model, loaded.tokenizer, **options)

    @torch.no_grad()
    def __call__(self, texts: str | Sequence[str]) -> dict[str, Any] | list[dict[str, Any]]:
        """Answers for one text (a dict) or for a list of texts (a list of dicts, in order)."""
        is_single = isinstance(texts, str)
        batch = [texts] if is_single else list(texts)
        words = _split_texts(batch)
        windows = self._windows(batch, words)
        per_text: list[list[tuple[_Window, dict[str, Any]]]] = [[] for _ in batch]
        for window, output in zip(windows, self._run(windows), strict=True):
            per_text[window.text_index].append((window, output))
        answers = [self._answer(text, spans, pairs) for text, spans, pairs in zip(batch, words, per_text, strict=True)]
        return answers[0] if is_single else answers

    def _windows(self, texts: list[str], words: list[list[tuple[int, int]]]) -> list[_Window]:
        """Every text's words tokenized as in NER training (`is_split_into_words`), cut into overlapping windows.

        The sequence-level tasks read these same windows. For a WordPiece tokenizer (BERT and its kin) the ids
        equal those of the raw text wherever a word boundary is also a pre-token boundary (whitespace or
        punctuation), which is everywhere except clitics: `don't` reads as `do` `n't`, as in the PTB-tokenized
        SST and CoNLL training text. A BPE tokenizer (split words need its prefix space, in training as here)
        sees a space before every word.
        """
        word_strings = [[text[start:end] for start, end in spans] for text, spans in zip(texts, words, strict=True)]
        with self._tokenizer_lock:  # a fast tokenizer sets its truncation state per call: one call at a time
            encoded = self.tokenizer(
                word_strings,
                is_split_into_words=True,
                truncation=True,
                max_length=self.max_length,
                stride=self.stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
        windows = []
        rows = zip(encoded["overflow_to_sample_mapping"], encoded["input_ids"], encoded["offset_mapping"], strict=True)
        for i, (text_index, ids, offsets) in enumerate(rows):
            word_ids = encoded.word_ids(i)
            # With split words, a token's offsets count from the start of its word: shift them into the text.
            starts = [0 if word is None else words[text_index][word][0] for word in word_ids]
            absolute = [(start + shift, end + shift) for (start, end), shift in zip(offsets, starts, strict=True)]
            windows.append(_Window(text_index, ids, word_ids, absolute))
        return windows

    def _run(self, windows: list[_Window]) -> list[dict[str, Any]]:
        """Every head's answer-space output per window, on the CPU: class probabilities, a value, or each
        token's (best tag probabilities, best tag ids) as lists.

        One encoder pass per batch; windows are sorted by length so that a batch holds similar lengths.
        """
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        outputs: list[dict[str, Any]] = [{} for _ in windows]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.collator([{"input_ids": windows[i].input_ids} for i in chunk])
            logits = self.model.forward_all(
                batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            )
            for task, values in logits.items():
                kind = self.specs[task].kind
                values = values.float() if kind == "regression" else values.float().softmax(-1)
                if kind == "token_classification":  # each token's best tag and its probability, read once per batch
                    scores, tags = values.max(-1)
                    scores, tags = scores.tolist(), tags.tolist()
                for row, index in enumerate(chunk):
                    length = len(windows[index].input_ids)
                    if kind == "token_classification":
                        outputs[index][task] = (scores[row][:length], tags[row][:length])
                    else:
                        outputs[index][task] = values[row].cpu()
        return outputs

    def _answer(
        self, text: str, words: list[tuple[int, int]], pairs: list[tuple[_Window, dict[str, Any]]]
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for task, spec in self.specs.items():
            per_window = [output[task] for _, output in pairs]
            if spec.kind == "classification":
                answer[task] = classification.decode(torch.stack(per_window).mean(0), spec.labels)
            elif spec.kind == "regression":
                answer[task] = regression.decode(torch.stack(per_window).mean(), ())
            else:
                answer[task] = token_classification.decode(text, _word_tags(words, pairs, task, spec.labels))
        return answer


def _word_tags(
    words: list[tuple[int, int]], pairs: list[tuple[_Window, dict[str, Any]]], task: str, labels: Sequence[str]
) -> list[tuple[int, int, str, float]]:
    """Each word's (start, end, tag, score): the tag read at its first sub-token (as in training), from the
    window where that sub-token sits farthest from the window's edges (so it saw the most context).

    A word the tokenizer gives no token (only characters it drops) has no tag, and is left out.
    """
    first_starts: dict[int, int] = {}  # where each word's first sub-token starts, over all windows
    for window, _ in pairs:
        for word, (start, _) in zip(window.word_ids, window.offsets, strict=True):
            if word is not None:
                first_starts[word] = min(first_starts.get(word, start), start)
    best: dict[int, tuple[int, str, float]] = {}
    for window, output in pairs:
        last = len(window.input_ids) - 1
        previous = None
        for position, word in enumerate(window.word_ids):
            # A window that begins inside a word holds only its later sub-tokens: their starts are further on.
            is_first_piece = (
                word is not None and word != previous and window.offsets[position][0] == first_starts[word]
            )
            previous = word
            if not is_first_piece:
                continue
            centrality = min(position, last - position)
            if word not in best or centrality > best[word][0]:
                scores, tags = output[task]
                best[word] = (centrality, labels[tags[position]], scores[position])
    return [(*words[word], tag, score) for word, (_, tag, score) in sorted(best.items())]


def _device(name: str | torch.device | None) -> torch.device:
    """The device to run on (default: CUDA when there is one), checked to exist here."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"device '{name}' is not a device name; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise InputError(f"device '{name}' is not available here (this machine has {count} CUDA devices)")
    elif device.type != "cpu":
        raise InputError(f"device '{name}' is not supported; expected cpu, cuda or cuda:N")
    return device


def _split_texts(texts: list[Any]) -> list[list[tuple[int, int]]]:
    """Each text's word spans (`hfmtl.words.split_words`), once every text is checked to have words."""
    _check_texts(texts)
    words = [split_words(text) for text in texts]
    for index, spans in enumerate(words):
        if not spans:  # invisible separators only, such as zero-width spaces: str.strip keeps those
            where = "the text" if len(texts) == 1 else f"text {index + 1}"
            raise InputError(f"{where} has no words, only invisible separators (e.g. zero-width spaces)")
    return words


def _check_texts(texts: list[Any]) -> None:
    if not texts:
        raise InputError("no texts to predict on: give a string or a non-empty list of strings")
    for index, text in enumerate(texts):
        where = "the text" if len(texts) == 1 else f"text {index + 1}"
        if not isinstance(text, str):
            raise InputError(f"{where} is {type(text).__name__} {text!r:.60}, not a string")
        if not text.strip():
            raise InputError(f"{where} is empty or only whitespace; there is nothing to predict on")
