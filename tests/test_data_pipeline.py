"""minis2s.data.pipeline: data configurations, the codec (tokenisers + vocabularies) and the
library entry point the benchmarks use (tatoeba.load_splits)."""

import json

import pytest

import minis2s
from minis2s.data.pipeline import Codec, DataConfig, load_eval_pairs, load_splits, load_task_data
from minis2s.data.tasks import tatoeba


@pytest.fixture(scope="module")
def small_tatoeba():
    return tatoeba.load_splits(n_train=800, n_val=20, n_test=30, seed=1)


def test_tatoeba_load_splits_for_benchmarks(small_tatoeba):
    d = small_tatoeba
    assert (len(d.train), len(d.val), len(d.test)) == (800, 20, 30)
    assert d.config.level == "word" and d.config.lowercase and d.config.min_freq == 2
    assert set(d.train) <= set(tatoeba.splits()[0]) and set(d.test) <= set(tatoeba.splits()[2])
    # vocabularies from the training part only, words seen twice or more
    from collections import Counter

    counts = Counter(t for s, _ in d.train for t in d.codec.src_tokenizer.tokenize(s))
    assert set(d.src_vocab.itos[4:]) == {t for t, c in counts.items() if c >= 2}
    ids = d.encode(d.train[:5])
    assert len(ids) == 5 and all(t[0] == minis2s.BOS and t[-1] == minis2s.EOS for _, t in ids)


def test_translate_and_score_with_a_model(small_tatoeba):
    d = small_tatoeba
    model = minis2s.AttentionSeq2Seq(len(d.src_vocab), len(d.tgt_vocab), embed_dim=8,
                                     hidden_dim=8, seed=0)
    texts = [s for s, _ in d.test[:6]] + ["", "   "]
    hyps = d.translate(model, texts, max_len=6, batch_size=4)
    assert len(hyps) == 8 and hyps[6:] == ["", ""] and all(isinstance(h, str) for h in hyps)
    refs = [t for _, t in d.test[:6]]
    res = d.score(hyps[:6], refs)
    assert res["n"] == 6 and 0 <= res["bleu"] <= 100 and "case:lc" in res["bleu_signature"]
    perfect = d.score(refs, refs)
    assert perfect["exact_match"] == 1.0 and perfect["chrf"] == pytest.approx(100)
    # the lowercasing tokeniser compares case-insensitively
    assert d.score([r.upper() for r in refs], refs)["exact_match"] == 1.0


def test_directions_and_shared_vocabulary():
    en_fr = tatoeba.load_splits(direction="en-fr", n_train=300, n_val=5, n_test=5)
    assert en_fr.codec.src_tokenizer.lang == "en" and en_fr.codec.tgt_tokenizer.lang == "fr"
    assert en_fr.train[0] in [(e, f) for f, e in tatoeba.splits()[0]]
    shared = tatoeba.load_splits(shared=True, n_train=300, n_val=5, n_test=5)
    assert shared.src_vocab is shared.tgt_vocab and shared.codec.extended_ids
    assert shared.config.min_freq == 5  # the pointer at word level: rare words are copied
    with pytest.raises(ValueError, match="direction must be one of"):
        tatoeba.load_splits(direction="fr-de")


def test_data_config_records_round_trip_and_defaults():
    cfg = DataConfig(task="dates", sizes=(30, 5, 5), seed=2).resolve()
    assert (cfg.level, cfg.lowercase, cfg.nfc, cfg.min_freq) == ("char", False, False, 1)
    again = DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and load_splits(again) == load_splits(cfg)
    assert DataConfig(task="entities", sizes=(1, 1, 1)).resolve().level == "word"
    assert DataConfig(task="tatoeba").resolve().describe() == \
        "task tatoeba (fr -> en); word level, lowercased, NFC, min_freq 2"
    assert DataConfig(data="x.tsv", level="word").resolve().nfc is True
    assert DataConfig(data="x.tsv").resolve().nfc is False  # char level: untouched


@pytest.mark.parametrize("kw, match", [
    (dict(), "give exactly one data source"),
    (dict(task="dates", data="x.tsv"), "give exactly one data source"),
    (dict(src_file="a.fr"), "tgt_file"),
    (dict(task="poetry"), "unknown task 'poetry'"),
    (dict(task="dates"), "needs sizes"),
    (dict(task="tatoeba", level="bpe"), "level must be one of"),
    (dict(task="tatoeba", bpe_vocab_size=100), "applies to level 'subword'"),
    (dict(task="tatoeba", min_freq=0), "min_freq must be an int >= 1"),
    (dict(data="x.tsv", format="csv"), "format must be one of"),
])
def test_data_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kw).resolve()


def test_file_sources_split_by_source_and_eval_reads_every_line(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("".join(f"s{i % 25}\tt{i}\n" for i in range(100)))
    cfg = DataConfig(data=str(f), sizes=(None, 10, 10)).resolve()
    train, val, test = load_splits(cfg)
    assert not {s for s, _ in train} & {s for s, _ in test}
    assert len(load_eval_pairs(cfg)) == 100 and len(load_eval_pairs(cfg, n=7)) == 7
    rev = DataConfig(data=str(f), reverse=True).resolve()
    assert load_eval_pairs(rev)[0] == ("t0", "s0")


def test_eval_pairs_of_a_generated_task_beyond_its_test_part_stay_unseen():
    cfg = DataConfig(task="addition", sizes=(200, 20, 10), seed=0).resolve()
    train, val, test = load_splits(cfg)
    more = load_eval_pairs(cfg, n=50)
    seen = {s for s, _ in train + val}
    assert 0 < len(more) <= 50 and not any(s in seen for s, _ in more)
    assert load_eval_pairs(cfg, n=5) == test[:5]


def test_codec_from_an_old_checkpoint_reads_like_its_vocabularies(tmp_path):
    from minis2s.checkpoint import load_checkpoint, save_checkpoint

    f = tmp_path / "words.tsv"
    f.write_text("".join(f"ana {i} ruiz , ok\tperson ana ruiz {i}\n" for i in range(30)))
    d = load_task_data(DataConfig(data=str(f), level="word"))
    model = minis2s.Seq2Seq(len(d.src_vocab), len(d.tgt_vocab), embed_dim=4, hidden_dim=4)
    path = tmp_path / "old.ckpt"
    save_checkpoint(path, model, vocabs={"src": d.src_vocab, "tgt": d.tgt_vocab})
    codec = Codec.from_checkpoint(load_checkpoint(path))
    assert not codec.recorded and codec.src_tokenizer.split_punctuation is False
    save_checkpoint(path, model, vocabs={"src": d.src_vocab, "tgt": d.tgt_vocab},
                    extra={"tokenizers": d.codec.tokenizers_dict()})
    codec = Codec.from_checkpoint(load_checkpoint(path))
    assert codec.recorded and codec.src_tokenizer == d.codec.src_tokenizer
    with pytest.raises(ValueError, match="needs a 'char' vocabulary"):
        Codec(minis2s.data.Tokenizer("char"), minis2s.data.Tokenizer("char"), d.src_vocab,
              d.tgt_vocab)


def test_subword_pointer_shares_one_bpe_model_learned_on_training_text():
    pytest.importorskip("sentencepiece")
    d = tatoeba.load_splits(level="subword", bpe_vocab_size=200, shared=True, n_train=300,
                            n_val=5, n_test=5)
    assert d.codec.src_tokenizer is d.codec.tgt_tokenizer and d.src_vocab is d.tgt_vocab
    assert d.config.min_freq == 1  # the pointer's 5 is for words, not pieces
    text = d.test[0][0]
    assert d.codec.src_tokenizer.restore(d.codec.src_tokenizer.prepare(text)) == \
        " ".join(text.lower().split())
