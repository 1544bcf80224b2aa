import logging

import numpy as np
import pytest

from minis2s import backend
from minis2s.constants import BOS, EOS, PAD, UNK
from minis2s.data import Batch, Vocab, encode_pairs, make_batches, make_pairs, pad_sequences


def to_np(a):
    return backend.to_numpy(a)


@pytest.fixture(scope="module")
def data():
    pairs = make_pairs("reverse", 500, seed=3, min_len=2, max_len=30)
    vocab = Vocab.build([s for s, _ in pairs])
    return pairs, vocab, encode_pairs(pairs, vocab, vocab)


# -- pad_sequences -----------------------------------------------------------------------------
def test_pad_sequences_right_pads():
    out = pad_sequences([[5, 6, 7], [8], [9, 10]])
    assert out.dtype == np.int64 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, [[5, 6, 7], [8, PAD, PAD], [9, 10, PAD]])
    out = pad_sequences([np.array([1, 2]), [3]], pad=-1, max_len=4)
    np.testing.assert_array_equal(out, [[1, 2, -1, -1], [3, -1, -1, -1]])


def test_pad_sequences_rejects():
    with pytest.raises(ValueError, match="empty list"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"seqs\[1\] is empty"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError, match="max_len=2"):
        pad_sequences([[1, 2, 3]], max_len=2)
    with pytest.raises(TypeError, match="max_len"):
        pad_sequences([[1]], max_len=2.0)


# -- encode_pairs ------------------------------------------------------------------------------
def test_encode_pairs_adds_bos_eos_to_target_only():
    v = Vocab(list("abc"))
    [(s, t)] = encode_pairs([("ab", "cab")], v, v)
    assert s == [4, 5]
    assert t == [BOS, 6, 4, 5, EOS]


def test_encode_pairs_truncates_with_one_warning(caplog):
    v = Vocab(list("abcdef"))
    pairs = [("abcdef", "ab"), ("ab", "abcdef"), ("abc", "abc"), ("a", "b")]
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        out = encode_pairs(pairs, v, v, max_len=3)
    assert [len(s) for s, _ in out] == [3, 2, 3, 1]
    assert [len(t) for _, t in out] == [4, 5, 5, 3]  # + BOS and EOS
    assert all(t[0] == BOS and t[-1] == EOS for _, t in out)
    warnings = [r for r in caplog.records if r.name == "minis2s.data"]
    assert len(warnings) == 1
    assert "truncated 2 of 4 examples" in warnings[0].getMessage()


def test_encode_pairs_error_mode_names_example():
    v = Vocab(list("abcdef"))
    with pytest.raises(ValueError, match=r"pairs\[1\]: target 'abcdef' has 6 tokens > max_len=3"):
        encode_pairs([("a", "b"), ("ab", "abcdef")], v, v, max_len=3, on_long="error")
    with pytest.raises(ValueError, match="on_long"):
        encode_pairs([("a", "b")], v, v, on_long="drop")


def test_encode_pairs_rejects_empty_source():
    v = Vocab(["x"], level="word")
    with pytest.raises(ValueError, match=r"pairs\[2\] has an empty source"):
        encode_pairs([("x", "x"), ("x", "x"), ("   ", "x")], v, v)
    with pytest.raises(TypeError, match=r"pairs\[0\]"):
        encode_pairs([("x", 3)], v, v)


def test_encode_pairs_extended_oov(caplog):
    v = Vocab(["a", "b"], level="word")
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        [(s, t)] = encode_pairs([("a zed b", "zed b why")], v, v, extend_oov=True)
    assert s == [4, len(v), 5] and t == [BOS, len(v), 5, UNK, EOS]
    assert any("extended OOV ids" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="shared"):
        encode_pairs([("a", "b")], v, Vocab(["a"], level="word"), extend_oov=True)


# -- batches -----------------------------------------------------------------------------------
def test_batches_shapes_padding_bos_eos(data):
    pairs, vocab, examples = data
    batches = make_batches(examples, batch_size=64, seed=0)
    assert len(batches) == 8  # ceil(500 / 64)
    seen = 0
    for batch in batches:
        assert isinstance(batch, Batch)
        assert type(batch.src) is type(backend.asarray(np.zeros(1)))  # on the active backend
        src, tgt = to_np(batch.src), to_np(batch.tgt)
        assert src.dtype == np.int64 and src.ndim == 2 and tgt.ndim == 2
        assert src.shape[0] == tgt.shape[0] == len(batch.indices) == batch.size
        src_len = np.array([len(examples[i][0]) for i in batch.indices])
        tgt_len = np.array([len(examples[i][1]) for i in batch.indices])
        assert src.shape[1] == src_len.max() and tgt.shape[1] == tgt_len.max()
        # Right padding: real tokens first, PAD after, nothing else.
        np.testing.assert_array_equal(src != PAD, np.arange(src.shape[1]) < src_len[:, None])
        np.testing.assert_array_equal(tgt != PAD, np.arange(tgt.shape[1]) < tgt_len[:, None])
        assert (tgt[:, 0] == BOS).all()
        assert (tgt[np.arange(len(tgt)), tgt_len - 1] == EOS).all()
        assert batch.n_tokens == int((tgt_len - 1).sum())
        for row, i in enumerate(batch.indices[:3]):
            assert vocab.decode(src[row]) == pairs[i][0]
            assert vocab.decode(tgt[row]) == pairs[i][1]
        seen += batch.size
    assert seen == 500


def test_every_example_once_per_epoch(data):
    _, _, examples = data
    for bucket in (False, True):
        batches = make_batches(examples, batch_size=32, seed=1, bucket=bucket, bucket_chunk=4)
        for _ in range(2):
            idx = np.concatenate([b.indices for b in batches])
            assert sorted(idx.tolist()) == list(range(len(examples)))


def test_shuffle_is_seeded_and_changes_per_epoch(data):
    _, _, examples = data

    def orders(**kw):
        it = make_batches(examples, batch_size=50, **kw)
        return [np.concatenate([b.indices for b in it]).tolist() for _ in range(3)]

    a, b = orders(seed=7), orders(seed=7)
    assert a == b  # same seed, same sequence of epochs
    assert a[0] != a[1] != a[2]  # each epoch reshuffles
    assert orders(seed=8)[0] != a[0]
    assert orders(shuffle=False)[0] == list(range(len(examples)))
    it = make_batches(examples, batch_size=50, seed=7)
    it.set_epoch(2)
    assert np.concatenate([b.indices for b in it]).tolist() == a[2]
    np.testing.assert_array_equal(to_np(next(iter(make_batches(examples, 50, seed=7))).src),
                                  to_np(next(iter(make_batches(examples, 50, seed=7))).src))


def test_bucketing_reduces_padding(data):
    _, _, examples = data

    def pad_fraction(bucket):
        pads = total = 0
        for b in make_batches(examples, batch_size=16, seed=0, bucket=bucket):
            src = to_np(b.src)
            pads += int((src == PAD).sum())
            total += src.size
        return pads / total

    plain, bucketed = pad_fraction(False), pad_fraction(True)
    assert bucketed < 0.5 * plain, (plain, bucketed)


def test_drop_last(data):
    _, _, examples = data
    it = make_batches(examples, batch_size=64, drop_last=True)
    sizes = [b.size for b in it]
    assert len(it) == 7 and sizes == [64] * 7
    sizes = [b.size for b in make_batches(examples, batch_size=64, drop_last=True, bucket=True)]
    assert sizes == [64] * 7
    with pytest.raises(ValueError, match="no batches"):
        make_batches(examples[:3], batch_size=4, drop_last=True)


@pytest.mark.parametrize("bs, exc", [(0, ValueError), (-1, ValueError), (2.5, TypeError),
                                     (True, TypeError)])
def test_batch_size_validated(data, bs, exc):
    with pytest.raises(exc, match="batch_size"):
        make_batches(data[2], batch_size=bs)


def test_examples_validated():
    with pytest.raises(ValueError, match="at least one"):
        make_batches([], 4)
    with pytest.raises(ValueError, match=r"examples\[1\] target"):
        make_batches([([4], [BOS, 4, EOS]), ([4], [4, 5])], 2)
    with pytest.raises(ValueError, match=r"examples\[0\] has an empty source"):
        make_batches([([], [BOS, EOS])], 2)


def test_truncating_an_extended_source_maps_cut_oovs_in_the_target_to_unk():
    from minis2s.constants import UNK

    v = Vocab("a b".split(), level="word")
    V = len(v)
    [(s, t)] = encode_pairs([("a zed b qux", "qux zed a")], v, v, max_len=2, extend_oov=True)
    assert s == [v.stoi["a"], V]  # "zed" is the row's OOV 0; "b qux" were cut
    assert t[1:-1] == [UNK, V]  # "qux" (cut from the source) is UNK; "zed" is still copied
