"""Text in, text out: encode strings, run ``model.generate``, decode the ids.

    from minis2s.data.translate import translate

    translate(model, ["2/10/93", "25 Sep 1984"], src_vocab, tgt_vocab)   # ['1993-02-10', ...]

The models are math only: they take and return ids. This module is the one place that turns
text into a padded source batch and generated ids back into text. For a
:class:`~minis2s.PointerGenerator` each source gets extended ids (its k-th distinct unknown word
is ``len(vocab) + k``), and an output id ``len(vocab) + k`` is turned back into that word, so a
copied name comes back as itself.
"""

from __future__ import annotations

from typing import NamedTuple

from .batching import pad_sequences

__all__ = ["Translation", "encode_sources", "translate", "translate_rows", "uses_extended_ids"]


class Translation(NamedTuple):
    """One translated input (see :func:`translate_rows`)."""

    text: str  #: the output string
    ids: list  #: the generated ids (no BOS, EOS or PAD; extended ids for the pointer)
    oovs: list | None  #: the source's OOV words (pointer), which ids >= len(vocab) name
    cut: bool  #: True if generation stopped at ``max_len`` before the model emitted EOS


def uses_extended_ids(model) -> bool:
    """True for a model that copies source words (the pointer-generator): its sources are
    encoded with per-row OOV ids and its output may hold them."""
    return any(c.__name__ == "PointerGenerator" for c in type(model).__mro__)


def encode_sources(model, texts, src_vocab):
    """Padded source ids (B, S) for ``texts`` and each row's OOV list.

    Returns:
        ``(src, oovs)``: ``src`` a NumPy int array; ``oovs[b]`` the list of row b's unknown
        words for a pointer-generator (extended ids), None for the other models.
    """
    texts = _check_texts(texts)
    if not uses_extended_ids(model):
        return pad_sequences([src_vocab.encode(t) for t in texts]), [None] * len(texts)
    enc = [src_vocab.encode_extended(t) for t in texts]
    return pad_sequences([ids for ids, _ in enc]), [o for _, o in enc]


def translate_rows(model, texts, src_vocab, tgt_vocab=None, max_len=50, beam_size=None,
                   **options):
    """Translate ``texts`` and return one :class:`Translation` per text.

    Args:
        model: a minis2s model.
        texts: a non-empty list of non-empty source strings.
        src_vocab, tgt_vocab: the vocabularies the model was trained with (``tgt_vocab``
            defaults to ``src_vocab``, as the pointer-generator shares one).
        max_len: the most tokens generated per text, EOS included; an output that reaches it
            is marked ``cut``.
        beam_size: 1 for greedy decoding, more for beam search; None: the model's default.
        options: the other decoding options of ``model.generate`` (length_penalty,
            coverage_penalty, min_len, no_repeat_ngram, sample, temperature, top_k, top_p,
            seed; docs/decoding.md); n_best is not one (one output per text here).
    """
    if "n_best" in options:
        raise TypeError("translate gives one output per text: n_best is not an option here "
                        "(call model.generate(src, n_best=k) for the k best)")
    tgt_vocab = src_vocab if tgt_vocab is None else tgt_vocab
    src, oovs = encode_sources(model, texts, src_vocab)
    out = model.generate(src, max_len=max_len, beam_size=beam_size, **options)
    return [Translation(tgt_vocab.decode(ids, oovs=row_oovs), list(ids), row_oovs,
                        len(ids) >= max_len)
            for ids, row_oovs in zip(out, oovs)]


def translate(model, texts, src_vocab, tgt_vocab=None, max_len=50, beam_size=None, **options):
    """Translate strings: a list with one output string per text (see :func:`translate_rows`
    for the arguments, and for which outputs were cut at ``max_len``)."""
    return [t.text for t in translate_rows(model, texts, src_vocab, tgt_vocab, max_len=max_len,
                                           beam_size=beam_size, **options)]


def _check_texts(texts):
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
        raise TypeError(f"texts must be a non-empty list of strings; got {texts!r:.60}")
    for k, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{k}] must be a str; got {type(t).__name__}")
        if not t.strip():
            raise ValueError(f"texts[{k}] is empty: give a non-empty string to translate")
    return list(texts)
