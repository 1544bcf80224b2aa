"""``tatoeba``: French → English translation (the PyTorch tutorial's direction) on the shipped
76,037 Tatoeba pairs, or English → French with ``direction="en-fr"``.

    >>> from minis2s.data.tasks import tatoeba
    >>> train, val, test = tatoeba.splits()                  # French -> English text pairs
    >>> data = tatoeba.load_splits(level="word", min_freq=2)  # + tokenisers and vocabularies
    >>> train_ids = data.encode(data.train)

The fixed held-out split (:func:`splits`) keeps every sentence of the validation and test parts,
French or English, out of the training part: pairs that share a sentence on either side are
grouped, and each group goes whole to one part by a hash of its first English sentence (the
details and the figures are in :mod:`minis2s.data.tasks._tatoeba` and docs/data.md):
68,408 training, 3,789 validation and 3,840 test pairs.
"""

from __future__ import annotations

from ..pipeline import DataConfig, load_task_data
from ._tatoeba import (
    DEFAULTS,
    DIRECTIONS,
    SPLIT_BUCKETS,
    _check_direction,
    info,
    langs,
    pairs,
    splits,
)

__all__ = ["DIRECTIONS", "pairs", "splits", "load_splits", "info", "langs", "SPLIT_BUCKETS",
           "DEFAULTS"]


def load_splits(direction="fr-en", level="word", lowercase=True, nfc=True, min_freq=None,
                bpe_vocab_size=None, shared=False, n_train=None, n_val=None, n_test=None,
                seed=0):
    """The task ready for a training loop: text splits, tokenisers and vocabularies.

    For benchmarks and notebooks: everything the CLI's ``train --task tatoeba`` builds, without
    the CLI. The tokenisers (and, at subword level, the BPE pieces) and the vocabularies are
    learned on the training part only.

    Args:
        direction: ``"fr-en"`` (the default) or ``"en-fr"``.
        level: ``"word"`` (the default), ``"subword"`` (BPE; needs sentencepiece) or ``"char"``.
        lowercase, nfc: normalisation applied to both sides (and so to the outputs).
        min_freq: keep tokens seen at least this often in training (the others become
            ``<unk>``); default 2 ("seen at least twice"), or 5 with ``shared`` at word level
            (the pointer-generator then copies the rarer words).
        bpe_vocab_size: subword level: the number of BPE pieces (default 4000).
        shared: one vocabulary (and one BPE model) for both sides, as the pointer-generator
            needs.
        n_train, n_val, n_test: use this many pairs of each part (a subset drawn with
            ``seed``, kept in order), or all of it (None).

    Returns:
        A :class:`minis2s.data.pipeline.TaskData`: ``.train``, ``.val``, ``.test`` (text pairs),
        ``.codec`` (tokenisers and vocabularies), ``.encode(pairs)`` (ids for ``fit``),
        ``.translate(model, texts)`` and ``.score(hypotheses, references)`` (BLEU, chrF, ...).
    """
    cfg = DataConfig(task="tatoeba", reverse=_check_direction(direction) == "en-fr",
                     sizes=(n_train, n_val, n_test), seed=seed, level=level,
                     lowercase=lowercase, nfc=nfc, min_freq=min_freq,
                     bpe_vocab_size=bpe_vocab_size)
    return load_task_data(cfg, shared=shared)
