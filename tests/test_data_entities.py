"""The ``entities`` task: a copy-heavy word-level task with disjoint name pools per split."""

import re
import time

import pytest

from minis2s.constants import UNK
from minis2s.data import Vocab, encode_pairs, make_pairs, make_splits, task_info
from minis2s.data.tasks import entities

FIELDS = ("person", "org", "city")
PUNCT = {",", ".", ":", "(", ")"}


def parse_target(target):
    """[(field, value), ...] of a record ``"person a b org c city d"``."""
    out = []
    for tok in target.split():
        if tok in FIELDS:
            out.append([tok, []])
        else:
            assert out, f"target {target!r} does not start with a field word"
            out[-1][1].append(tok)
    for field, words in out:
        assert words, f"field {field!r} of {target!r} is empty"
    return [(f, " ".join(w)) for f, w in out]


def find(words, sub):
    """Start of the first occurrence of the word list ``sub`` in ``words``, or -1."""
    k = len(sub)
    return next((i for i in range(len(words) - k + 1) if words[i:i + k] == sub), -1)


def names(pairs):
    """{field: set of values} over the targets of ``pairs``."""
    out = {f: set() for f in FIELDS}
    for _, tgt in pairs:
        for f, v in parse_target(tgt):
            out[f].add(v)
    return out


@pytest.fixture(scope="module")
def splits():
    return make_splits("entities", (4000, 500, 1000), seed=0)


def test_20k_examples_take_a_few_seconds():
    # First in the file: when it runs first in the process, this includes building the pools.
    t = time.perf_counter()
    pairs = make_pairs("entities", 20_000, seed=0)
    elapsed = time.perf_counter() - t
    assert len(pairs) == 20_000
    assert elapsed < 10.0, f"20,000 entities examples took {elapsed:.1f} s"


def test_determinism_by_seed_and_split():
    a = make_pairs("entities", 300, seed=3)
    assert a == make_pairs("entities", 300, seed=3) == make_pairs("entities", 300, seed=3,
                                                                 split="train")
    assert a != make_pairs("entities", 300, seed=4)
    assert make_pairs("entities", 300, seed=3, split="test") == \
        make_pairs("entities", 300, seed=3, split="test")
    assert make_pairs("entities", 300, seed=3, split="test") != a
    assert make_splits("entities", (50, 10, 10), seed=2) == \
        make_splits("entities", (50, 10, 10), seed=2)
    assert make_pairs("entities", 0) == []


def test_word_level_format_and_lengths():
    info = task_info("entities")
    assert info.name == "entities" and info.level == "word"
    assert info.max_src_len <= 40 and info.max_tgt_len <= 15
    for split in entities.SPLITS:
        pairs = make_pairs("entities", 3000, seed=1, split=split)
        for src, tgt in pairs:
            for text in (src, tgt):
                assert text == " ".join(text.split()) and text == text.lower(), text
            for tok in src.split():  # punctuation is a token of its own
                assert tok in PUNCT or not re.search(r"[,.:()]", tok), (tok, src)
            assert 10 <= len(src.split()) <= info.max_src_len, src
            assert 4 <= len(tgt.split()) <= info.max_tgt_len, tgt
        assert max(len(s.split()) for s, _ in pairs) >= info.max_src_len - 6
        assert max(len(t.split()) for _, t in pairs) >= info.max_tgt_len - 3


def test_targets_are_copies_of_source_names_in_field_order():
    pairs = make_pairs("entities", 3000, seed=2, split="val")
    fields_seen = set()
    for src, tgt in pairs:
        words = src.split()
        record = parse_target(tgt)
        # every target token is a source token or a field word: a perfect copier can make it
        assert all(t in FIELDS or t in words for t in tgt.split()), (src, tgt)
        for _, value in record:  # each value is a contiguous span of the source
            assert find(words, value.split()) >= 0, (value, src)
        order = [FIELDS.index(f) for f, _ in record]
        assert order == sorted(order), tgt  # person(s), then org, then city
        assert 2 <= len(record) <= 4 and len({v for _, v in record}) == len(record), tgt
        copied = sum(len(v.split()) for _, v in record)
        assert len(words) >= copied + 5, src  # there is filler, and it is not copied
        fields_seen.update(f for f, _ in record)
    assert fields_seen == set(FIELDS)
    assert any(sum(f == "person" for f, _ in parse_target(t)) == 2 for _, t in pairs)


def test_target_order_differs_from_source_order_often():
    pairs = make_pairs("entities", 3000, seed=5)
    differs = 0
    for src, tgt in pairs:
        words = src.split()
        starts = [find(words, v.split()) for _, v in parse_target(tgt)]
        differs += starts != sorted(starts)
    share = differs / len(pairs)
    assert 0.5 < share < 0.95, share  # the attention must move, and sometimes goes straight


def test_at_least_15_templates_all_used():
    assert len(set(entities.TEMPLATES)) == len(entities.TEMPLATES) >= 15
    pairs = make_pairs("entities", 2 * len(entities.TEMPLATES), seed=0)
    # a shuffled round robin: each template's fixed words show up exactly twice
    for t in entities.TEMPLATES:
        pattern = "(.+)".join(re.escape(part) for part in re.split(r"\{\w+\}", t))
        assert sum(bool(re.fullmatch(pattern, s)) for s, _ in pairs) >= 2, t


def test_name_pools_are_disjoint_between_splits(splits):
    train, val, test = splits
    assert (len(train), len(val), len(test)) == (4000, 500, 1000)
    found = [names(part) for part in splits]
    for field in FIELDS:
        tr, va, te = (f[field] for f in found)
        assert len(te) > 100, (field, len(te))  # many distinct test names
        assert not (tr & te) and not (tr & va) and not (va & te), field
    # whatever the seeds: the split of a name does not depend on them
    other = names(make_pairs("entities", 4000, seed=7, split="train"))
    for field in FIELDS:
        assert not other[field] & found[2][field], field
    # and the pools themselves, word by word
    pools = entities.pools()
    for kind in ("first", "last", "city", "org"):
        sets = [set(getattr(pools[s], kind)) for s in entities.SPLITS]
        assert all(sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    sources = [{s for s, _ in part} for part in splits]
    assert not (sources[0] & sources[2]) and len(sources[2]) == 1000


def test_test_names_are_unknown_to_a_training_vocab_and_get_extended_ids(splits):
    train, _, test = splits
    vocab = Vocab.build([s for s, _ in train] + [t for _, t in train], level="word")
    assert all(f in vocab for f in FIELDS)
    with_oov = 0
    for src, tgt in test:
        s_ids, oovs = vocab.encode_extended(src)
        t_ids, _ = vocab.encode_extended(tgt, oovs=oovs)
        assert UNK not in s_ids and UNK not in t_ids  # nothing is lost: all copyable
        if oovs:
            with_oov += 1
            extended = {i for i in s_ids if i >= len(vocab)}
            assert extended == set(range(len(vocab), len(vocab) + len(oovs)))
            assert extended & set(t_ids), (src, tgt)  # the target reuses the source's ids
            assert vocab.decode(t_ids, oovs=oovs) == tgt
    share = with_oov / len(test)
    assert share > 0.8, f"only {share:.0%} of test examples hold a word unseen in training"
    # the training split itself has no unknown words
    assert vocab.count_unknown(s for s, _ in train[:500]) == 0
    examples = encode_pairs(test[:200], vocab, vocab, extend_oov=True)
    for (src, tgt), (s_ids, t_ids) in zip(test[:200], examples):
        s_ref, oovs = vocab.encode_extended(src)
        assert s_ids == s_ref
        assert t_ids[1:-1] == vocab.encode_extended(tgt, oovs=oovs)[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"split must be one of .*'dev'"):
        make_pairs("entities", 5, split="dev")
    with pytest.raises(ValueError, match="split"):
        task_info("entities", split="dev")
    with pytest.raises(ValueError, match="own pool"):
        make_splits("entities", (5, 5, 5), split="test")
    with pytest.raises(ValueError, match="seed"):
        make_pairs("entities", 5, seed=-1)
    with pytest.raises(TypeError, match="n must be"):
        make_pairs("entities", 2.5)


def test_split_of_is_stable_and_roughly_80_10_10():
    assert entities.split_of("lyon") == entities.split_of("lyon")
    words = [f"w{k}" for k in range(5000)]
    shares = {s: sum(entities.split_of(w) == s for w in words) / len(words)
              for s in entities.SPLITS}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["test"] - 0.1) < 0.03, shares


def test_same_seed_same_data_in_another_process():
    """Names must not depend on the process's hash seed (the iteration order of sets)."""
    import os
    import subprocess
    import sys

    code = ("import hashlib; from minis2s.data import make_splits; "
            "print(hashlib.md5(str(make_splits('entities', (300, 30, 30), seed=1)).encode())"
            ".hexdigest())")
    outs = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           check=True)
        outs.add(r.stdout)
    assert len(outs) == 1
