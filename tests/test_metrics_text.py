"""BLEU and chrF through sacrebleu, on detokenised text, with the signatures."""

import pytest

from minis2s import metrics


def test_bleu_and_chrf_against_sacrebleu_itself():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the cat sat on the mat.", "i left.", ""]
    refs = ["The cat sat on the mat.", "I left early.", "Hello!"]
    b = metrics.bleu(hyps, refs)
    assert b.score == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert b.signature.startswith("nrefs:1|case:mixed|") and "tok:13a" in b.signature
    c = metrics.chrf(hyps, refs, lowercase=True)
    lower = [r.lower() for r in refs]
    assert c.score == pytest.approx(sacrebleu.corpus_chrf(hyps, [lower]).score)
    assert "case:lc" in c.signature
    assert metrics.bleu(hyps, refs, lowercase=True).score > b.score  # 'the'/'The', 'i'/'I'


def test_perfect_and_empty_outputs():
    assert metrics.bleu(["I left it there."], ["I left it there."]).score == pytest.approx(100)
    assert metrics.chrf(["Go!"], ["Go!"]).score == pytest.approx(100)
    assert metrics.sentence_chrf("abc", "abc") == pytest.approx(100)
    assert metrics.sentence_chrf("", "abc") == 0.0
    s = metrics.text_scores(["a b c d"], ["a b c d"])
    assert set(s) == {"bleu", "chrf", "bleu_signature", "chrf_signature"}
    assert "version:" in s["bleu_signature"] and "nc:6" in s["chrf_signature"]


def test_text_metrics_check_their_arguments():
    with pytest.raises(ValueError, match="same length"):
        metrics.bleu(["a"], ["a", "b"])
    with pytest.raises(TypeError, match=r"hyps\[0\] must be a str"):
        metrics.chrf([["a"]], ["a"])
