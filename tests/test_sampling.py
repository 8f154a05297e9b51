import json
from collections import Counter

import numpy as np
import pytest
from conftest import run_two_processes

from hfmtl.config.run_config import SamplingConfig
from hfmtl.data.arrays import RowArrays
from hfmtl.data.batching import cross_process_padding_efficiency, length_grouped_batches
from hfmtl.data.collate import Collator
from hfmtl.data.sampling import MultiTaskLoader, task_weights
from hfmtl.errors import ConfigError

SIZES = {"a": 100, "b": 400, "c": 25}


@pytest.mark.parametrize(
    ("strategy", "options", "expected"),
    [
        ("proportional", {}, {"a": 100 / 525, "b": 400 / 525, "c": 25 / 525}),
        ("temperature", {"temperature": 2.0}, {"a": 10 / 35, "b": 20 / 35, "c": 5 / 35}),
        ("temperature", {"temperature": 2.0, "size_cap": 100}, {"a": 10 / 25, "b": 10 / 25, "c": 5 / 25}),
        ("uniform", {}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}),
        ("fixed", {"weights": {"a": 1, "b": 1, "c": 2}}, {"a": 0.25, "b": 0.25, "c": 0.5}),
        (
            "fixed",
            {"weights": {"a": 1, "b": 1, "c": 2}, "final_weights": {"a": 0, "b": 1, "c": 0}, "progress": 0.0},
            {"a": 0.25, "b": 0.25, "c": 0.5},
        ),
        (
            "fixed",
            {"weights": {"a": 1, "b": 1, "c": 2}, "final_weights": {"a": 0, "b": 1, "c": 0}, "progress": 0.5},
            {"a": 0.125, "b": 0.625, "c": 0.25},
        ),
        (
            "fixed",
            {"weights": {"a": 1, "b": 1, "c": 2}, "final_weights": {"a": 0, "b": 3, "c": 0}, "progress": 1.0},
            {"a": 0.0, "b": 1.0, "c": 0.0},
        ),
        ("annealed", {"progress": 0.0}, {"a": 100 / 525, "b": 400 / 525, "c": 25 / 525}),
        ("annealed", {"progress": 1.0}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}),
        (
            "annealed",
            {"progress": 0.5},
            {"a": (100 / 525 + 1 / 3) / 2, "b": (400 / 525 + 1 / 3) / 2, "c": (25 / 525 + 1 / 3) / 2},
        ),
    ],
)
def test_weights_by_hand(strategy, options, expected):
    assert task_weights(SIZES, strategy, **options) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sizes", "strategy", "options", "message"),
    [
        ({"a": 10, "b": 0}, "proportional", {}, "task 'b' has no training rows"),
        (SIZES, "fixed", {"weights": {"a": -1, "b": 1, "c": 1}}, "must be >= 0 and not all zero"),
        (SIZES, "fixed", {"weights": {"a": 0, "b": 0, "c": 0}}, "must be >= 0 and not all zero"),
        (SIZES, "fixed", {"weights": {"a": 1}}, "needs one weight per task"),
        (SIZES, "roundrobin", {}, "unknown sampling strategy 'roundrobin'"),
        (SIZES, "temperature", {"temperature": 0}, "temperature must be > 0"),
    ],
)
def test_bad_sampling_settings(sizes, strategy, options, message):
    with pytest.raises(ConfigError, match=message):
        task_weights(sizes, strategy, **options)


def rows(n: int, offset: int = 0) -> list[dict]:
    return [{"input_ids": [1] * (1 + (i * 7) % 23), "labels": offset + i} for i in range(n)]


def make_loader(sampling=None, seed=0, num_processes=1, process_index=0, sizes=(100, 400, 25), **options):
    names = zip("abc", sizes, strict=True)
    data = {name: RowArrays.from_rows(rows(n, offset=1000 * k)) for k, (name, n) in enumerate(names)}
    return MultiTaskLoader(
        data,
        Collator(pad_token_id=0),
        sampling or SamplingConfig(strategy="proportional"),
        batch_size=options.pop("batch_size", 4),
        total_draws=options.pop("total_draws", 10_000),
        seed=seed,
        num_processes=num_processes,
        process_index=process_index,
        **options,
    )


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingConfig(strategy="proportional"),
        SamplingConfig(strategy="temperature", temperature=3.0),
        SamplingConfig(strategy="uniform"),
        SamplingConfig(strategy="fixed", weights={"a": 0.2, "b": 0.3, "c": 0.5}),
    ],
    ids=lambda s: s.strategy,
)
def test_empirical_mix_follows_the_weights(sampling):
    loader = make_loader(sampling)
    counts = Counter(loader.next_task() for _ in range(10_000))
    for task, weight in loader.static_weights.items():
        assert abs(counts[task] / 10_000 - weight) < 0.02, (task, counts[task], weight)


def test_annealed_mix_moves_toward_uniform():
    loader = make_loader(SamplingConfig(strategy="annealed"), total_draws=10_000)
    draws = [loader.next_task() for _ in range(10_000)]
    early, late = Counter(draws[:2000]), Counter(draws[-2000:])
    assert early["b"] / 2000 > 0.6 and abs(late["b"] / 2000 - 0.38) < 0.05  # b: 0.76 at the start, ~1/3 at the end


def test_final_weights_move_the_mix_over_the_run():
    sampling = SamplingConfig(
        strategy="fixed", weights={"a": 1, "b": 0, "c": 0}, final_weights={"a": 0, "b": 0, "c": 1}
    )
    loader = make_loader(sampling, total_draws=10_000)
    draws = [loader.next_task() for _ in range(10_000)]
    early, late = Counter(draws[:1000]), Counter(draws[-1000:])
    assert early["a"] > 900 and late["c"] > 900 and early["b"] == late["b"] == 0  # a: 1 -> 0, c: 0 -> 1


def test_same_seed_same_sequence_other_seed_other_sequence():
    one, two, other = make_loader(seed=3), make_loader(seed=3), make_loader(seed=4)
    seq_one = [(t, b["labels"].tolist()) for t, b in (one.next_batch() for _ in range(200))]
    seq_two = [(t, b["labels"].tolist()) for t, b in (two.next_batch() for _ in range(200))]
    seq_other = [(t, b["labels"].tolist()) for t, b in (other.next_batch() for _ in range(200))]
    assert seq_one == seq_two
    assert seq_one != seq_other


def test_state_dict_resumes_the_same_sequence_through_json():
    loader = make_loader(seed=1)
    for _ in range(150):
        loader.next_batch()
    state = json.loads(json.dumps(loader.state_dict()))
    expected = [(t, b["labels"].tolist()) for t, b in (loader.next_batch() for _ in range(150))]
    resumed = make_loader(seed=1)
    resumed.load_state_dict(state)
    assert [(t, b["labels"].tolist()) for t, b in (resumed.next_batch() for _ in range(150))] == expected


def test_exhausted_tasks_restart_with_a_new_shuffle():
    loader = make_loader(SamplingConfig(strategy="uniform"), sizes=(8, 8, 8), batch_size=4, group_by_length=False)
    passes: dict[str, list[list[int]]] = {"a": []}
    while loader.cursors["a"].epoch < 3:
        task, batch = loader.next_batch()
        if task == "a":
            passes["a"].append(batch["labels"].tolist())
    first, second = passes["a"][:2], passes["a"][2:4]
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(8))  # each pass sees every row once
    assert first != second


def test_processes_draw_the_same_tasks_and_get_disjoint_batches():
    ranks = [make_loader(seed=5, num_processes=2, process_index=r, group_by_length=False) for r in (0, 1)]
    seen = {0: [], 1: []}
    for _ in range(40):
        (task0, batch0), (task1, batch1) = ranks[0].next_batch(), ranks[1].next_batch()
        assert task0 == task1
        if task0 == "b":
            seen[0] += batch0["labels"].tolist()
            seen[1] += batch1["labels"].tolist()
    assert seen[0] and not set(seen[0]) & set(seen[1])


def test_a_task_smaller_than_one_batch_per_process_is_refused():
    with pytest.raises(ConfigError, match="task 'c' has 25 training rows, fewer than one batch per process"):
        make_loader(batch_size=16, num_processes=2)


def test_each_task_batches_with_its_own_batch_size():
    sizes, batch_size = (100, 400, 24), {"a": 2, "b": 8, "c": 4}  # whole batches: a pass's last one may be short
    loader = make_loader(SamplingConfig(strategy="uniform"), sizes=sizes, batch_size=batch_size, group_by_length=False)
    shapes = {}
    for _ in range(60):
        task, batch = loader.next_batch()
        shapes.setdefault(task, set()).add(batch["input_ids"].shape[0])
    assert shapes == {"a": {2}, "b": {8}, "c": {4}}
    with pytest.raises(
        ConfigError, match=r"task 'c' has 25 training rows, fewer than one batch per process \(32 x 1\)"
    ):
        make_loader(batch_size={"a": 2, "b": 8, "c": 32})


def test_prefetching_gives_the_same_batches_and_resumes_at_the_first_unconsumed_one():
    from hfmtl.data.prefetch import PrefetchingLoader

    plain = make_loader(seed=2)
    expected = [(t, b["labels"].tolist()) for t, b in (plain.next_batch() for _ in range(60))]
    prefetching = PrefetchingLoader(make_loader(seed=2))
    got = [(t, b["labels"].tolist()) for t, b in (prefetching.next_batch() for _ in range(40))]
    state = json.loads(json.dumps(prefetching.state_dict()))  # the loader itself is already one batch ahead
    prefetching.close()
    resumed = make_loader(seed=2)
    resumed.load_state_dict(state)
    got += [(t, b["labels"].tolist()) for t, b in (resumed.next_batch() for _ in range(20))]
    assert got == expected


def test_cross_process_padding_counts_every_process_at_the_pace_of_the_slowest():
    # step 1: real 2 + 4, both processes wait for the 4-token batch; step 2: 1 + 1; the odd 5th batch is left out
    assert cross_process_padding_efficiency([2, 4, 1, 1, 9], [[0], [1], [2], [3], [4]], 2) == pytest.approx(8 / 10)


def test_two_processes_get_batches_of_about_the_same_length_at_every_step(tmp_path):
    run_two_processes("tests/ddp_batches.py", str(tmp_path))
    rank0, rank1 = (json.loads((tmp_path / f"batches{r}.json").read_text()) for r in (0, 1))
    gaps = [abs(a["padded"] - b["padded"]) for a, b in zip(rank0, rank1, strict=True)]
    # Rows of lengths 1..100, 8 to a batch, sorted 100 batches to a chunk: neighbours in length order differ by a
    # length or two. Batches shuffled one by one (the single-process order) would differ by about 33 on average.
    assert max(gaps) <= 3
    real = sum(step["real"] for step in rank0 + rank1)
    computed = sum(2 * 8 * max(a["padded"], b["padded"]) for a, b in zip(rank0, rank1, strict=True))
    assert real / computed > 0.95
    lengths = [1 + (i * 37) % 100 for i in range(4001)]
    unaligned = length_grouped_batches(lengths, 8, np.random.default_rng(3))  # as if each step took any two batches
    assert cross_process_padding_efficiency(lengths, unaligned, 2) < 0.8


def test_a_token_budget_fills_short_batches_and_keeps_long_ones_at_batch_size():
    rng = np.random.default_rng(0)
    lengths = rng.choice([5, 12, 40, 100], size=3000).tolist()
    batches = length_grouped_batches(lengths, 8, np.random.default_rng(1), max_tokens=400)
    assert sorted(i for batch in batches for i in batch) == list(range(3000))  # every row once
    most = Counter()  # the most rows a batch holds, by its longest row
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= max(8, 400 // longest)  # more than batch_size rows only while they fit the budget
        most[longest] = max(most[longest], len(batch))
    assert most == {5: 80, 12: 33, 40: 10, 100: 8}  # 400 // length, but never fewer than batch_size (8)
    short_of_budget = [b for b in batches if len(b) < max(8, 400 // max(lengths[i] for i in b))]
    assert len(short_of_budget) <= 8  # only the last batch of each chunk of 8 x 50 rows: 3000 rows make 8
    assert length_grouped_batches(lengths, 8, np.random.default_rng(1), max_tokens=None) == length_grouped_batches(
        lengths, 8, np.random.default_rng(1)
    )


def test_a_token_budget_leaves_every_process_a_batch_and_resumes_exactly():
    tiny = length_grouped_batches([3] * 20, 4, np.random.default_rng(0), num_processes=2, max_tokens=10_000)
    assert len(tiny) >= 2 and all(len(batch) <= 10 for batch in tiny)  # not one 20-row batch for two processes
    loader = make_loader(seed=1, max_tokens=60)
    shapes = Counter()
    for _ in range(150):
        _, batch = loader.next_batch()
        shapes[batch["input_ids"].shape[0]] += 1
    assert max(shapes) > 4  # short rows (1 to 23 tokens here) fill batches beyond batch_size 4
    state = json.loads(json.dumps(loader.state_dict()))
    expected = [(t, b["labels"].tolist()) for t, b in (loader.next_batch() for _ in range(100))]
    resumed = make_loader(seed=1, max_tokens=60)
    resumed.load_state_dict(state)
    assert [(t, b["labels"].tolist()) for t, b in (resumed.next_batch() for _ in range(100))] == expected
