"""Small models and padded batches for gradient checks (tests, ``minis2s gradcheck``, grading).

Host-side helpers: they build NumPy id arrays that the models move to the active backend.
"""

from __future__ import annotations

import numpy as np

from .constants import BOS, EOS, PAD

__all__ = ["tiny_model", "tiny_batch", "random_batch"]


def tiny_model(cls_name="Seq2Seq", vocab_size=11, embed_dim=5, hidden_dim=6, num_layers=2,
               bidirectional=True, attention="dot", coverage=False, seed=0, dtype="float64",
               **kw):
    """A small float64 model of the named class (``"Seq2Seq"``, ``"AttentionSeq2Seq"``,
    ``"PointerGenerator"`` or the CLI names ``seq2seq``/``attention``/``pointer``)."""
    from .models import MODEL_NAMES, MODELS

    cls_name = MODEL_NAMES.get(cls_name, cls_name)
    if cls_name not in MODELS:
        raise ValueError(f"unknown model {cls_name!r}; choose one of {sorted(MODELS)}")
    args = dict(embed_dim=embed_dim, hidden_dim=hidden_dim, num_layers=num_layers,
                bidirectional=bidirectional, dtype=dtype, seed=seed, **kw)
    if cls_name == "PointerGenerator":
        return MODELS[cls_name](vocab_size, coverage=coverage, **args)
    if cls_name == "AttentionSeq2Seq":
        args["attention"] = attention
    return MODELS[cls_name](vocab_size, vocab_size + 2, **args)


def random_batch(B, S, T, src_vocab, tgt_vocab, seed=0, src_lengths=None, tgt_lengths=None,
                 n_oov=0):
    """A right-padded batch with varied lengths (row 0 full length, the last row shortest).

    ``src`` (B, S) holds ids in [4, src_vocab) (plus ``n_oov`` extended ids src_vocab + k when
    ``n_oov`` > 0); ``tgt`` (B, T) is BOS ... EOS then PAD, ids in [4, tgt_vocab) (and extended
    ids that occur in the same row's source).
    """
    rng = np.random.default_rng(seed)
    if src_lengths is None:
        src_lengths = np.linspace(S, max(1, S // 3), B).round().astype(int)
    if tgt_lengths is None:  # real tokens between BOS and EOS
        tgt_lengths = np.linspace(T - 2, max(1, (T - 2) // 2), B).round().astype(int)[::-1]
    src = np.full((B, S), PAD, dtype=np.int64)
    tgt = np.full((B, T), PAD, dtype=np.int64)
    for b in range(B):  # host-side construction of a test batch, not model math
        n = int(src_lengths[b])
        src[b, :n] = rng.integers(4, src_vocab, size=n)
        if n_oov:
            k = min(n_oov, n)
            pos = rng.choice(n, size=k, replace=False)
            src[b, pos] = src_vocab + np.arange(k)
        m = int(tgt_lengths[b])
        tgt[b, 0] = BOS
        tgt[b, 1:m + 1] = rng.integers(4, tgt_vocab, size=m)
        if n_oov and m >= 2:
            oov_in_src = np.unique(src[b, :n][src[b, :n] >= src_vocab])
            if oov_in_src.size:
                tgt[b, 1] = oov_in_src[0]
        tgt[b, m + 1] = EOS
    return src, tgt


def tiny_batch(model, B=3, S=7, T=6, seed=0):
    """A padded batch that fits ``model``; with OOV ids for a PointerGenerator."""
    if type(model).__name__ == "PointerGenerator":
        V = model.vocab_size
        return random_batch(B, S, T, V, V, seed=seed, n_oov=2)
    return random_batch(B, S, T, model.src_vocab_size, model.tgt_vocab_size, seed=seed)
