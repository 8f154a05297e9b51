"""MultiTaskPipeline: for each text, every task's answer from one encoder pass per batch.

Texts are split into CoNLL-style words (`hfmtl.serve.words`), tokenized as NER training tokenized its words, so that
`U.S.` or `Jean-Pierre` is one word here as it was there. Texts longer than the encoder's window are not cut:
they are split into overlapping windows (`stride` tokens of overlap). Each task's kind reads its answer from the
windows: NER labels each word from the window where it sits farthest from an edge; the per-text kinds average
their windows (class or label probabilities, values). Batches are formed from windows sorted by length, so
there is little padding.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from hfmtl.data.collate import Collator
from hfmtl.deploy.onnx_runtime import OnnxMultiTaskModel, load_onnx_dir
from hfmtl.deploy.quantize import check_quantization, quantize_torch
from hfmtl.errors import InputError
from hfmtl.model.folder import load_model_dir
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.serve.inputs import PipelineInput, is_pair, read_inputs, split_texts
from hfmtl.tasks import task_kind


@dataclass(frozen=True)
class _Window:
    """One encoder input: a span of one text's tokens."""

    text_index: int
    input_ids: list[int]
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]
    """Each token's character span in the original text ((0, 0) for special tokens); empty for a pair."""
    token_type_ids: list[int] | None = None
    """Which text of a pair each token is from (pairs only, where the tokenizer makes them)."""


class MultiTaskPipeline:
    """`pipeline(text)` → `{"sentiment": {"label", "score"}, "ner": [entity, ...], "intensity": float}`."""

    def __init__(
        self,
        model: MultiTaskModel | OnnxMultiTaskModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 512,
        stride: int | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not tokenizer.is_fast:
            raise InputError("MultiTaskPipeline needs a fast tokenizer (for word boundaries and character offsets)")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(model, MultiTaskModel):
            device = _device(device)
            self.model = model.to(device=device, dtype=dtype).eval()
            max_positions = model.encoder.config.max_position_embeddings
        else:  # an ONNX export, run by onnxruntime on the CPU in the dtype it was exported in
            if (device is not None and str(device) != "cpu") or dtype is not None:
                raise InputError(
                    "the onnxruntime backend runs on the CPU in the exported dtype: drop device and dtype"
                )
            device, self.model, max_positions = torch.device("cpu"), model, model.max_positions
        self.tokenizer = tokenizer
        self.max_length = min(max_length, max_positions)
        self.stride = _stride(stride, self.max_length - tokenizer.num_special_tokens_to_add())
        self.batch_size = batch_size
        self.device = device
        self.specs = {spec.name: spec for spec in model.config.task_specs}
        self.kinds = {name: task_kind(spec.kind) for name, spec in self.specs.items()}
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
        backend: str = "torch",
        quantize: str | None = None,
        **options: Any,
    ) -> MultiTaskPipeline:
        """From a model folder, or a Hub repo id (downloaded once, then read from the local cache).

        `allow_pickle` also accepts a folder whose weights are only a pytorch_model.bin, and `trust_remote_code`
        runs the modelling code an encoder saved in the folder: opt in for trusted ones only. `backend=
        "onnxruntime"` runs a folder written by `hfmtl export --format onnx` instead (`pip install 'hfmtl[onnx]'`).
        `quantize="int8"` makes the PyTorch model's Linear layers int8 on load (CPU only); an ONNX graph is
        quantized when it is exported (`hfmtl export --quantize int8`).
        """
        if backend not in ("torch", "onnxruntime"):
            raise InputError(f"unknown backend '{backend}'; expected torch or onnxruntime")
        check_quantization(quantize)
        if quantize is not None and backend == "onnxruntime":
            raise InputError("an ONNX graph is quantized when it is exported: hfmtl export --quantize int8")
        is_cpu_float = options.get("dtype") is None and str(options.get("device") or "cpu") == "cpu"
        if quantize is not None and not is_cpu_float:
            raise InputError("int8 dynamic quantization runs on the CPU in float32: drop device and dtype")
        from hfmtl.hub.publish import model_path

        path = model_path(model_dir_or_repo, revision=revision)
        if backend == "onnxruntime":
            model, tokenizer, run_config = load_onnx_dir(path)
        else:
            loaded = load_model_dir(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
            model, tokenizer, run_config = loaded.model, loaded.tokenizer, loaded.run_config
            if quantize is not None:
                model = quantize_torch(model)
                options["device"] = "cpu"  # checked above to be unset or the CPU
        if run_config is not None:  # read texts the way the model was trained to
            options.setdefault("max_length", run_config.encoder.max_length)
        return cls(model, tokenizer, **options)

    @torch.no_grad()
    def __call__(self, inputs: PipelineInput | Sequence[PipelineInput]) -> dict[str, Any] | list[dict[str, Any]]:
        """Answers for one input (a dict) or for a list of inputs (a list of dicts, in order).

        An input is a text, or for a model with sentence-pair tasks a `(text, text_pair)` tuple or a
        `{"text": ..., "text_pair": ...}` dict. The pair tasks answer the inputs that are pairs; every other
        task answers every input, from its first text.
        """
        has_pairs = any(spec.pairs for spec in self.specs.values())
        if isinstance(inputs, (bytes, bytearray)) or not isinstance(inputs, (str, Mapping, Iterable)):
            raise InputError(
                f"the input is {type(inputs).__name__} {inputs!r:.60}; give a string, a (text, text_pair) "
                "tuple or a dict, or a list of them"
            )
        if is_pair(inputs) and not has_pairs:  # a tuple of two texts reads as a pair, never as a batch of two
            raise InputError(
                "a (text, text_pair) tuple is a sentence pair, but this model has no sentence-pair task; "
                "pass a list for a batch of texts"
            )
        is_single = isinstance(inputs, (str, Mapping)) or (has_pairs and is_pair(inputs))
        batch = [inputs] if is_single else list(inputs)
        texts, pairs = read_inputs(batch, has_pairs=has_pairs)
        answers: list[dict[str, Any]] = [{} for _ in batch]
        text_tasks = [name for name, spec in self.specs.items() if not spec.pairs]
        if text_tasks:
            words = split_texts(texts)
            windows = self._windows(texts, words)
            per_text: list[list[tuple[_Window, dict[str, Any]]]] = [[] for _ in batch]
            for window, output in zip(windows, self._run(windows, text_tasks), strict=True):
                per_text[window.text_index].append((window, output))
            for answer, text, spans, text_windows in zip(answers, texts, words, per_text, strict=True):
                answer.update(self._answer(text, spans, text_windows, text_tasks))
        pair_tasks = [name for name, spec in self.specs.items() if spec.pairs]
        with_pairs = [i for i, pair in enumerate(pairs) if pair is not None]
        if not text_tasks and len(with_pairs) < len(batch):  # nothing would answer a lone text
            missing = ", ".join(str(i + 1) for i, pair in enumerate(pairs) if pair is None)
            raise InputError(
                f"every task of this model reads sentence pairs: give (text, text_pair) for input {missing}"
            )
        if pair_tasks and with_pairs:
            windows = self._pair_windows([texts[i] for i in with_pairs], [pairs[i] for i in with_pairs])
            for i, window, output in zip(with_pairs, windows, self._run(windows, pair_tasks), strict=True):
                answers[i].update(self._answer(texts[i], [], [(window, output)], pair_tasks))
        ordered = [{task: answer[task] for task in self.specs if task in answer} for answer in answers]
        return ordered[0] if is_single else ordered

    def _pair_windows(self, texts: list[str], pairs: list[str]) -> list[_Window]:
        """One encoder input per pair, cut as training cut pairs (`longest_first`: the longer text first)."""
        with self._tokenizer_lock:
            encoded = self.tokenizer(texts, pairs, truncation="longest_first", max_length=self.max_length)
        types = encoded.get("token_type_ids") or [None] * len(texts)
        return [
            _Window(i, ids, encoded.word_ids(i), [], token_type_ids)
            for i, (ids, token_type_ids) in enumerate(zip(encoded["input_ids"], types, strict=True))
        ]

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
        read = {window.text_index for window in windows if any(word is not None for word in window.word_ids)}
        unread = [index for index in range(len(texts)) if index not in read]
        if unread:  # e.g. a lone combining mark that the tokenizer's normalisation removes: [CLS] [SEP] only
            where = "the text" if len(texts) == 1 else f"text {unread[0] + 1}"
            raise InputError(f"{where} has no characters the tokenizer keeps (only marks or control characters)")
        return windows

    def _run(self, windows: list[_Window], tasks: list[str]) -> list[dict[str, Any]]:
        """The output of each of `tasks`' heads per window in answer space, on the CPU (`TaskKind.window_outputs`).

        One encoder pass per batch; windows are sorted by length so that a batch holds similar lengths.
        """
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        outputs: list[dict[str, Any]] = [{} for _ in windows]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            rows = [{"input_ids": windows[i].input_ids} for i in chunk]
            if windows[chunk[0]].token_type_ids is not None:
                rows = [
                    {**row, "token_type_ids": windows[i].token_type_ids} for row, i in zip(rows, chunk, strict=True)
                ]
            batch = {name: tensor.to(self.device) for name, tensor in self.collator(rows).items()}
            if isinstance(self.model, MultiTaskModel):
                logits = self.model(tasks, **batch).logits
            else:
                logits = self.model.logits(tasks, **batch)
            lengths = [len(windows[i].input_ids) for i in chunk]
            for task, values in logits.items():
                for index, output in zip(chunk, self.kinds[task].window_outputs(values, lengths), strict=True):
                    outputs[index][task] = output
        return outputs

    def _answer(
        self,
        text: str,
        words: list[tuple[int, int]],
        pairs: list[tuple[_Window, dict[str, Any]]],
        tasks: list[str],
    ) -> dict[str, Any]:
        windows = [window for window, _ in pairs]
        return {
            task: self.kinds[task].answer(
                text, words, windows, [output[task] for _, output in pairs], self.specs[task]
            )
            for task in tasks
        }


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


DEFAULT_STRIDE = 32
"""Tokens each long-text window shares with the one before it, so a word near a cut is read with context."""


def _stride(stride: int | None, room: int) -> int:
    """The window overlap: `stride`, checked against the `room` for word tokens in a window (the tokenizer
    needs the overlap to be smaller); by default 32, or half the room for a model trained on short windows."""
    if stride is None:
        return min(DEFAULT_STRIDE, room // 2)
    if not 0 <= stride < room:
        raise InputError(
            f"stride must be at least 0 and less than the {room} word tokens a window holds "
            f"(max_length minus special tokens), got {stride}"
        )
    return stride
