"""minis2s.data.translate: text in, text out (the models themselves take and return ids)."""

import numpy as np
import pytest

import minis2s
from minis2s.data import Vocab
from minis2s.data.translate import encode_sources, translate, translate_rows, uses_extended_ids


def copying_pointer(vocab):
    model = minis2s.PointerGenerator(len(vocab), embed_dim=4, hidden_dim=5, dtype="float64")
    model.params["ptr.b_ptr"][...] = -50.0  # p_gen ≈ 0: pure copying
    return model


def test_the_pointer_copies_oov_words_back_as_themselves():
    vocab = Vocab(["the", "cat", "sat"], level="word")
    model = copying_pointer(vocab)
    out = translate(model, ["zork blip", "the cat quux"], vocab, max_len=4, beam_size=1)
    assert set(out[0].split()) <= {"zork", "blip"} and out[0]
    assert set(out[1].split()) <= {"the", "cat", "quux"}
    ids, oovs = vocab.encode_extended("zork blip")
    gen = model.generate(np.array([ids]), max_len=4, beam_size=3)[0]
    assert gen and all(i in (len(vocab), len(vocab) + 1) for i in gen)  # extended ids
    assert vocab.decode(gen, oovs=oovs).split()[0] in oovs


def test_encode_sources_gives_extended_ids_only_to_the_pointer():
    vocab = Vocab(["a", "b"], level="word")
    pointer = copying_pointer(vocab)
    plain = minis2s.Seq2Seq(len(vocab), len(vocab), embed_dim=3, hidden_dim=4)
    assert uses_extended_ids(pointer) and not uses_extended_ids(plain)
    src, oovs = encode_sources(pointer, ["a zz", "b"], vocab)
    assert src.tolist() == [[4, len(vocab)], [5, 0]] and oovs == [["zz"], []]
    src, oovs = encode_sources(plain, ["a zz", "b"], vocab)
    assert src.tolist() == [[4, 3], [5, 0]] and oovs == [None, None]  # zz -> UNK


def test_an_output_cut_at_max_len_is_flagged():
    vocab = Vocab(list("abc"))
    model = minis2s.Seq2Seq(len(vocab), len(vocab), embed_dim=3, hidden_dim=4, seed=0)
    model.params["out.b"][...] = -50.0
    model.params["out.b"][4] = 50.0  # always "a", never EOS
    (row,) = translate_rows(model, ["abc"], vocab, max_len=3)
    assert row.text == "aaa" and row.cut
    model.params["out.b"][2] = 100.0  # EOS first
    (row,) = translate_rows(model, ["abc"], vocab, max_len=3)
    assert row.text == "" and not row.cut


@pytest.mark.parametrize("texts, error, match", [
    ("abc", TypeError, "non-empty list"),
    ([], TypeError, "non-empty list"),
    (["a", 3], TypeError, r"texts\[1\] must be a str"),
    (["a", "  "], ValueError, r"texts\[1\] is empty"),
])
def test_bad_texts(texts, error, match):
    vocab = Vocab(list("abc"))
    model = minis2s.Seq2Seq(len(vocab), len(vocab), embed_dim=3, hidden_dim=4)
    with pytest.raises(error, match=match):
        translate(model, texts, vocab)
