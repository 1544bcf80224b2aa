"""Evaluation metrics over lists of token-id (or token) sequences, host-side.

- exact match: the share of outputs equal to their reference, whole.
- token accuracy: position by position, the share of reference tokens that the output has at
  the same position (an output that is too short or too long loses the positions it misses).
- repetition rate: repeated n-grams per output (used for coverage).
- ROUGE-1/2/L: from the ``rouge-score`` package, when installed.
- BLEU and chrF of detokenised text against raw references, from ``sacrebleu`` (a dependency),
  each with sacrebleu's signature (the settings that make a score comparable: the number of
  references, case, tokenisation, smoothing, version), e.g.
  ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

__all__ = ["exact_match", "token_accuracy", "repetition_rate", "rouge", "TextScore", "bleu",
           "chrf", "sentence_chrf", "text_scores"]


def _check(hyps, refs):
    if len(hyps) != len(refs):
        raise ValueError(
            f"hyps and refs must have the same length; got {len(hyps)} and {len(refs)}"
        )
    if not refs:
        raise ValueError("refs must not be empty")


def exact_match(hyps, refs) -> float:
    """The fraction of ``hyps[i] == refs[i]`` (sequences compared whole)."""
    _check(hyps, refs)
    return sum(list(h) == list(r) for h, r in zip(hyps, refs)) / len(refs)


def token_accuracy(hyps, refs) -> float:
    """Σ_i #{t < len(r_i): h_i[t] == r_i[t]} / Σ_i max(len(h_i), len(r_i))."""
    _check(hyps, refs)
    correct = total = 0
    for h, r in zip(hyps, refs):
        correct += sum(a == b for a, b in zip(h, r))
        total += max(len(h), len(r), 1)
    return correct / total


def repetition_rate(hyps, n=2) -> float:
    """Mean number of repeated n-grams per output: for each output, the count of n-gram
    occurrences beyond the first of each distinct n-gram."""
    if not hyps:
        raise ValueError("hyps must not be empty")
    total = 0
    for h in hyps:
        grams = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
        total += sum(c - 1 for c in grams.values())
    return total / len(hyps)


def rouge(hyps, refs):
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (means over the pairs) of whitespace-joined strings.

    Needs the ``rouge-score`` package (``pip install rouge-score``, part of minis2s[test]).
    """
    _check(hyps, refs)
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ImportError(
            "rouge() needs the rouge-score package: pip install rouge-score"
        ) from None
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    # rouge-score tokenises on non-alphanumerics; map tokens to stand-in words so that any
    # token (including punctuation and non-Latin text) counts as one unit.
    vocab = {}

    def words(seq):
        seq = seq.split() if isinstance(seq, str) else seq
        return " ".join(f"w{vocab.setdefault(t, len(vocab))}" for t in seq)

    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for h, r in zip(hyps, refs):
        s = scorer.score(words(r), words(h))
        for k in sums:
            sums[k] += s[k].fmeasure
    return {k: v / len(refs) for k, v in sums.items()}


# --- BLEU and chrF (sacrebleu) --------------------------------------------------------------
class TextScore(NamedTuple):
    """A corpus score (0-100) and sacrebleu's signature of how it was computed."""

    score: float
    signature: str


def _check_texts(hyps, refs):
    _check(hyps, refs)
    for name, texts in (("hyps", hyps), ("refs", refs)):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"{name}[{i}] must be a str (detokenised text); got "
                                f"{type(t).__name__}")
    return list(hyps), list(refs)


def bleu(hyps, refs, lowercase=False) -> TextScore:
    """Corpus BLEU (sacrebleu's defaults: 13a tokenisation, exponential smoothing) of
    detokenised outputs ``hyps`` against one raw reference each; ``lowercase`` compares
    case-insensitively (the signature then says ``case:lc``)."""
    from sacrebleu.metrics import BLEU

    hyps, refs = _check_texts(hyps, refs)
    metric = BLEU(lowercase=lowercase)
    return TextScore(float(metric.corpus_score(hyps, [refs]).score), str(metric.get_signature()))


def chrf(hyps, refs, lowercase=False) -> TextScore:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, beta 2, whitespace ignored)."""
    from sacrebleu.metrics import CHRF

    hyps, refs = _check_texts(hyps, refs)
    metric = CHRF(lowercase=lowercase)
    return TextScore(float(metric.corpus_score(hyps, [refs]).score), str(metric.get_signature()))


def sentence_chrf(hyp, ref, lowercase=False) -> float:
    """chrF (0-100) of one output against its reference: a per-sentence score that, unlike
    sentence BLEU, stays informative on short sentences."""
    from sacrebleu.metrics import CHRF

    _check_texts([hyp], [ref])
    return float(CHRF(lowercase=lowercase).sentence_score(hyp, [ref]).score)


def text_scores(hyps, refs, lowercase=False) -> dict:
    """``{"bleu", "chrf", "bleu_signature", "chrf_signature"}`` for detokenised outputs."""
    b, c = bleu(hyps, refs, lowercase), chrf(hyps, refs, lowercase)
    return {"bleu": b.score, "chrf": c.score, "bleu_signature": b.signature,
            "chrf_signature": c.signature}
