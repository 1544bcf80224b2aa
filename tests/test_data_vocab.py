import json
import logging

import numpy as np
import pytest

from minis2s import backend
from minis2s.constants import BOS, EOS, PAD, SPECIAL_TOKENS, UNK
from minis2s.data import Vocab, encode_pairs


def test_specials_come_first():
    v = Vocab(["a", "b"])
    assert v.itos == list(SPECIAL_TOKENS) + ["a", "b"]
    assert [v.stoi[t] for t in SPECIAL_TOKENS] == [PAD, BOS, EOS, UNK]
    assert v.stoi["a"] == 4 and len(v) == 6
    assert "a" in v and "<pad>" in v and "z" not in v


def test_char_round_trip():
    texts = ["hello world", "héllo, wörld!", "2/10/93"]
    v = Vocab.build(texts)
    for t in texts:
        ids = v.encode(t, bos=True, eos=True)
        assert ids[0] == BOS and ids[-1] == EOS and len(ids) == len(t) + 2
        assert UNK not in ids
        assert v.decode(ids) == t
        assert v.decode(ids + [PAD, PAD]) == t


def test_word_round_trip():
    texts = ["the cat sat", "the  dog sat\ton the mat"]
    v = Vocab.build(texts, level="word")
    assert v.tokenize(texts[1]) == ["the", "dog", "sat", "on", "the", "mat"]
    ids = v.encode(texts[1])
    assert v.decode(ids) == "the dog sat on the mat"
    assert v.itos[4] == "the"  # most frequent first


def test_decode_stops_at_eos_and_strip_special_false():
    v = Vocab(list("ab"))
    a, b = v.stoi["a"], v.stoi["b"]
    assert v.decode([BOS, a, PAD, b, EOS, a, a]) == "ab"
    assert v.decode([BOS, a, EOS, b], strip_special=False) == "<bos>a<eos>b"
    assert v.decode(np.array([BOS, b, a, EOS])) == "ba"
    assert v.decode(backend.asarray(np.array([b, UNK]))) == "b<unk>"
    assert v.decode_batch(np.array([[BOS, a, EOS], [b, b, PAD]])) == ["a", "bb"]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([a, 99])


def test_unknown_tokens_map_to_unk():
    v = Vocab(list("abc"))
    assert v.encode("abxc") == [4, 5, UNK, 6]
    assert v.count_unknown(["abxc", "zz"]) == 3
    assert v.decode(v.encode("axb")) == "a<unk>b"


def test_special_strings_in_text_never_become_specials():
    v = Vocab.build(["a <eos> b <pad> <unk>"], level="word")
    assert "<eos>" not in v.itos[4:]
    assert v.encode("a <eos> <pad> b") == [v.stoi["a"], UNK, UNK, v.stoi["b"]]


def test_unk_count_is_logged_when_encoding_a_dataset(caplog):
    v = Vocab(list("0123456789+"))
    pairs = [("12+3x", "15"), ("1y+2", "3z"), ("1+1", "2")]
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        out = encode_pairs(pairs, v, v)
    assert out[0][0][-1] == UNK and out[1][1] == [BOS, v.stoi["3"], UNK, EOS]
    msgs = [r.getMessage() for r in caplog.records if r.name == "minis2s.data"]
    assert any(m.startswith("2 source tokens") for m in msgs), msgs
    assert any(m.startswith("1 target tokens") for m in msgs), msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        encode_pairs([("1+1", "2")], v, v)
    assert not caplog.records


def test_build_ordering_min_freq_max_size():
    texts = ["aaab", "bbc", "d"]  # a:3 b:3 c:1 d:1
    assert Vocab.build(texts).itos[4:] == ["a", "b", "c", "d"]  # ties broken by token
    assert Vocab.build(texts, min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.build(texts, max_size=3).itos[4:] == ["a", "b", "c"]
    assert len(Vocab.build(texts, max_size=1)) == 5
    assert Vocab.build(texts) == Vocab.build(list(reversed(texts)))


def test_save_load_round_trip(tmp_path):
    v = Vocab.build(["añb ç", "€ x"])
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocab.load(path)
    assert w == v and w.itos == v.itos and w.level == "char"
    assert json.loads(path.read_text(encoding="utf-8"))["tokens"] == v.itos[4:]
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    vw = Vocab.build(["x y z"], level="word")
    vw.save(path)  # overwrite in place
    assert Vocab.load(path) == vw != v
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temp file left


def test_equality():
    assert Vocab(["a"]) == Vocab(["a"])
    assert Vocab(["a"]) != Vocab(["a"], level="word")
    assert Vocab(["a", "b"]) != Vocab(["b", "a"])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(tokens=["a"], level="byte"), ValueError, "level"),
    (dict(tokens=["a", "a"]), ValueError, "duplicate"),
    (dict(tokens=["a", "<unk>"]), ValueError, "special"),
    (dict(tokens=["a", 3]), TypeError, r"tokens\[1\]"),
    (dict(tokens=["ab"]), ValueError, "single character"),
    (dict(tokens=["a b"], level="word"), ValueError, "whitespace"),
    (dict(tokens="abc"), TypeError, "not one str"),
])
def test_constructor_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Vocab(**kwargs)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(min_freq=0), ValueError, "min_freq"),
    (dict(min_freq=1.5), TypeError, "min_freq"),
    (dict(max_size=0), ValueError, "max_size"),
    (dict(max_size=-3), ValueError, "max_size"),
    (dict(level="sentence"), ValueError, "level"),
])
def test_build_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Vocab.build(["abc"], **kwargs)


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "something else", "tokens": []}')
    with pytest.raises(ValueError, match="not a minis2s vocabulary"):
        Vocab.load(path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="not a JSON"):
        Vocab.load(path)


def test_extended_oov_ids():
    v = Vocab(["the", "cat"], level="word")
    n = len(v)
    src, oovs = v.encode_extended("the zebra saw the gnu zebra")
    assert oovs == ["zebra", "saw", "gnu"]
    assert src == [4, n, n + 1, 4, n + 2, n]
    tgt, same = v.encode_extended("gnu cat wolf", oovs=oovs, bos=True, eos=True)
    assert tgt == [BOS, n + 2, 5, UNK, EOS] and same == oovs
    assert v.decode(tgt, oovs=oovs) == "gnu cat <unk>"
    with pytest.raises(ValueError, match="oovs"):
        v.decode(tgt)
