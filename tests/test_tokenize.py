"""Tokenisers: the three levels, normalisation, detokenisation, round trips and records."""

import json

import pytest

from minis2s.data import Vocab
from minis2s.data.tokenize import (
    MissingExtraError,
    Tokenizer,
    normalize,
    word_detokenize,
    word_tokenize,
)

SENTENCES_EN = ["Go.", "Don't go, Tom!", "It's 8:30 p.m. in the U.S.", "(Yes) I paid $30.",
                'He said "no" to me.', "Where were you on 9/11?", "Is it black and/or white?"]
SENTENCES_FR = ["Va !", "Qu'est-ce que c'est ?", "Dis : « s'il te plaît ».", "Calme-toi.",
                "J'ai 50 % de chances."]


def test_word_tokenize_splits_off_punctuation_and_keeps_inner_apostrophes():
    assert word_tokenize("Don't go, Tom!") == ["Don't", "go", ",", "Tom", "!"]
    assert word_tokenize("Qu'est-ce que c'est ?") == ["Qu'est-ce", "que", "c'est", "?"]
    assert word_tokenize("It's 8:30 p.m. in the U.S.") == ["It's", "8:30", "p.m.", "in",
                                                          "the", "U.S."]
    assert word_tokenize("« Oui » (yes) $3.5") == ["«", "Oui", "»", "(", "yes", ")", "$",
                                                    "3.5"]
    assert word_tokenize("   ") == []


@pytest.mark.parametrize("text", SENTENCES_EN)
def test_word_round_trip_english(text):
    tok = Tokenizer("word")
    assert tok.detokenize(tok.tokenize(text)) == text
    assert tok.restore(tok.prepare(text)) == text


@pytest.mark.parametrize("text", SENTENCES_FR)
def test_word_round_trip_french_spacing(text):
    tok = Tokenizer("word", lang="fr")
    assert tok.detokenize(tok.tokenize(text)) == text
    # English rules would glue the '!' (a different, still sensible, text)
    assert word_detokenize(["Va", "!"]) == "Va!"


def test_word_round_trip_on_the_shipped_corpus():
    from minis2s.data import corpora

    pairs = [line.split("\t") for line in corpora.read_text("tatoeba-eng-fra").splitlines()]
    en, fr = Tokenizer("word"), Tokenizer("word", lang="fr")
    same_en = sum(en.detokenize(en.tokenize(e)) == e for e, _ in pairs)
    # French: the corpus mixes 'bord!' and 'bord !' and its spaces are narrow no-break ones
    same_fr = sum(fr.detokenize(fr.tokenize(f)) == " ".join(f.split()) for _, f in pairs)
    assert same_en / len(pairs) > 0.9999
    assert same_fr / len(pairs) > 0.99


def test_normalisation_options():
    decomposed = "e\u0301te\u0301"  # 'été' typed with combining accents
    assert normalize(decomposed, nfc=True) == "\u00e9t\u00e9"
    assert normalize("Été", lowercase=True) == "été"
    tok = Tokenizer("word", lowercase=True, nfc=True)
    assert tok.tokenize("  Un  " + decomposed.upper() + "\u202f!") == ["un", "été", "!"]
    assert Tokenizer("word").tokenize(decomposed) != Tokenizer("word", nfc=True).tokenize(
        decomposed)
    # char level keeps every character, spaces included; no normalisation unless asked
    assert Tokenizer("char").tokenize("Ab c") == ["A", "b", " ", "c"]
    assert Tokenizer("char", lowercase=True).prepare("Ab c") == "ab c"


def test_char_level_is_the_identity_for_generated_tasks():
    from minis2s.data import make_pairs

    tok = Tokenizer("char")
    for src, tgt in make_pairs("dates", 50, seed=1):
        assert tok.prepare(src) == src and tok.restore(tgt) == tgt


def test_prepare_feeds_a_vocab_and_restore_reads_its_output():
    tok = Tokenizer("word", lowercase=True)
    texts = ["Tom is here.", "Is Tom here?"]
    vocab = Vocab.build([tok.prepare(t) for t in texts], level=tok.vocab_level)
    ids = vocab.encode(tok.prepare("Tom is here?"))
    assert vocab.decode(ids) == "tom is here ?"
    assert tok.restore(vocab.decode(ids)) == "tom is here?"
    assert tok.restore(vocab.decode(vocab.encode(tok.prepare("Zoe is here.")))) == \
        "<unk> is here."


def test_pretokenised_text_splits_on_whitespace_only():
    tok = Tokenizer("word", split_punctuation=False)
    assert tok.tokenize("blanka d' heripon , ok") == ["blanka", "d'", "heripon", ",", "ok"]
    assert tok.detokenize(["a", ",", "b"]) == "a , b"


@pytest.mark.parametrize("tok", [Tokenizer("char"), Tokenizer("word", lowercase=True, nfc=True,
                                                               lang="fr"),
                                 Tokenizer("word", split_punctuation=False)])
def test_to_dict_from_dict_round_trip(tok):
    d = json.loads(json.dumps(tok.to_dict()))
    again = Tokenizer.from_dict(d)
    assert again == tok and again.tokenize("Tom's here!") == tok.tokenize("Tom's here!")


@pytest.mark.parametrize("kw, match", [
    (dict(level="bpe"), "level must be one of"),
    (dict(level="word", lang="de"), "lang must be one of"),
    (dict(level="word", lowercase=1), "lowercase must be a bool"),
    (dict(level="word", vocab_size=100), "for level 'subword'"),
    (dict(level="subword", vocab_size=3), "vocab_size must be an int >= 8"),
])
def test_bad_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Tokenizer(**kw)


def test_from_dict_refuses_other_records():
    with pytest.raises(ValueError, match="not a minis2s tokenizer"):
        Tokenizer.from_dict({"level": "char"})
    with pytest.raises(ValueError, match="newer"):
        Tokenizer.from_dict({"format": "minis2s.tokenizer", "version": 99, "level": "char"})


# --- subword (sentencepiece, an optional extra) -----------------------------------------------
TRAIN = ["le chat est sur la table .", "le chien est sous la table .", "un chat et un chien .",
         "la table est grande .", "le petit chat dort ."] * 4


def test_subword_fit_round_trip_and_record():
    pytest.importorskip("sentencepiece")
    tok = Tokenizer("subword", lowercase=True, vocab_size=60).fit(TRAIN)
    assert tok.fitted and tok.vocab_level == "word"
    pieces = tok.tokenize("Le chat est sous la grande table.")
    assert all(p and not any(c.isspace() for c in p) for p in pieces)
    assert tok.detokenize(pieces) == "le chat est sous la grande table."
    assert tok.restore(tok.prepare("Le  chien dort.")) == "le chien dort."
    # characters never seen in training still come back (the pointer can copy them)
    assert tok.restore(tok.prepare("le zèbre ☃")) == "le zèbre ☃"
    assert tok.detokenize(["▁le", "<unk>", "▁chat"]) == "le <unk> chat"
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again == tok and again.tokenize("un chien") == tok.tokenize("un chien")
    # learning is deterministic
    assert Tokenizer("subword", lowercase=True, vocab_size=60).fit(TRAIN).model == tok.model


def test_subword_needs_fit_and_enough_pieces():
    pytest.importorskip("sentencepiece")
    with pytest.raises(RuntimeError, match="call fit"):
        Tokenizer("subword").tokenize("x")
    with pytest.raises(ValueError, match="could not learn 8 BPE pieces"):
        Tokenizer("subword", vocab_size=8).fit(["abcdefghijklmnopqrstuvwxyz"])
    with pytest.raises(ValueError, match="no text"):
        Tokenizer("subword").fit(["  "])


def test_subword_without_sentencepiece_says_what_to_install(no_sentencepiece):
    with pytest.raises(MissingExtraError, match=r"pip install 'minis2s\[subword\]'"):
        Tokenizer("subword").fit(TRAIN)
    assert Tokenizer("word").fit(TRAIN).tokenize("la table") == ["la", "table"]
