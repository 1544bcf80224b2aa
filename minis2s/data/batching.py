"""From text pairs to padded batches on the active backend.

    pairs = [("16+75", "91"), ...]
    examples = encode_pairs(pairs, src_vocab, tgt_vocab)        # lists of ids, on the host
    for batch in make_batches(examples, batch_size=64, seed=0):  # Batch.src (B, S), .tgt (B, T)
        loss = model.forward(batch.src, batch.tgt)

Everything before :class:`Batch` is host-side NumPy and Python lists. ``Batch`` is the one place
where token ids cross to the device (``minis2s.backend.asarray``).

Rows are right-padded with PAD; ``src`` rows hold no BOS/EOS and ``tgt`` rows are
``[BOS] + ids + [EOS]``, as the models expect.
"""

from __future__ import annotations

import itertools
import logging
import numbers
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from .._checks import positive_int
from ..constants import BOS, EOS, PAD, UNK
from .vocab import Vocab

__all__ = ["pad_sequences", "encode_pairs", "Batch", "BatchIterator", "make_batches"]

log = logging.getLogger("minis2s.data")

ON_LONG = ("truncate", "error")


def pad_sequences(seqs, pad=PAD, max_len=None):
    """Stack int sequences into one right-padded int64 array.

    Args:
        seqs: a non-empty list of non-empty int sequences (lists or 1-D arrays).
        pad: the fill value.
        max_len: pad every row to exactly this length (a row longer than it is an error);
            default: the longest row.

    Returns:
        np.ndarray of shape (B, L), dtype int64, on the host.
    """
    if isinstance(seqs, np.ndarray) and seqs.ndim == 2:
        seqs = list(seqs)
    if not isinstance(seqs, (list, tuple)):
        raise TypeError(f"seqs must be a list of int sequences; got {type(seqs).__name__}")
    if len(seqs) == 0:
        raise ValueError("seqs must hold at least one sequence; got an empty list")
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if lengths.min() == 0:
        raise ValueError(f"seqs[{int(np.argmin(lengths))}] is empty; every sequence needs at "
                         "least one token")
    longest = int(lengths.max())
    if max_len is None:
        width = longest
    else:
        width = positive_int("max_len", max_len)
        if longest > width:
            i = int(np.argmax(lengths))
            raise ValueError(f"seqs[{i}] has length {longest} > max_len={width}")
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64,
                       count=int(lengths.sum()))
    out[np.arange(width) < lengths[:, None]] = flat  # row-major order matches the chain
    return out


def encode_pairs(pairs, src_vocab, tgt_vocab, max_len=None, on_long="truncate",
                 extend_oov=False):
    """Encode ``(source, target)`` text pairs as id lists.

    The source has no BOS/EOS; the target is ``[BOS] + ids + [EOS]``. Tokens missing from a
    vocabulary become UNK, and their count is logged as a warning on the ``"minis2s.data"``
    logger.

    Args:
        pairs: list of ``(source, target)`` strings.
        src_vocab, tgt_vocab: :class:`Vocab` (may be the same object).
        max_len: the most tokens kept on each side (for the target, not counting BOS/EOS).
        on_long: ``"truncate"`` (cut, and log one warning with the count) or ``"error"``
            (ValueError naming the example and its length).
        extend_oov: pointer-generator ids (needs one shared vocabulary): a source's k-th
            distinct unknown token gets ``len(vocab) + k`` and the target reuses those ids
            (:meth:`Vocab.encode_extended`); other unknown target tokens are UNK.

    Returns:
        list of ``(src_ids, tgt_ids)`` int lists.
    """
    for name, v in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        if not isinstance(v, Vocab):
            raise TypeError(f"{name} must be a Vocab; got {type(v).__name__}")
    if on_long not in ON_LONG:
        raise ValueError(f"on_long must be one of {ON_LONG}; got {on_long!r}")
    if max_len is not None:
        max_len = positive_int("max_len", max_len)
    if extend_oov and src_vocab != tgt_vocab:
        raise ValueError("extend_oov=True needs one vocabulary shared by source and target "
                         "(src_vocab == tgt_vocab); got two different ones")
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__len__"):
        raise TypeError(f"pairs must be a list of (source, target) strings; got "
                        f"{type(pairs).__name__}")

    out = []
    n_long = n_long_src = n_long_tgt = 0
    unk_src, unk_tgt = _UnkTally(), _UnkTally()
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (source, target) pair; got {pair!r}")
        src, tgt = pair
        if not isinstance(src, str) or not isinstance(tgt, str):
            raise TypeError(f"pairs[{i}] must hold two str; got ({type(src).__name__}, "
                            f"{type(tgt).__name__})")
        if extend_oov:
            s, oovs = src_vocab.encode_extended(src)
            t, _ = tgt_vocab.encode_extended(tgt, oovs=oovs)
            unk_src.add_extended(s, len(src_vocab), src_vocab, src)
            unk_tgt.add(t, tgt_vocab, tgt)
        else:
            s = src_vocab.encode(src)
            t = tgt_vocab.encode(tgt)
            unk_src.add(s, src_vocab, src)
            unk_tgt.add(t, tgt_vocab, tgt)
        if not s:
            raise ValueError(f"pairs[{i}] has an empty source {src!r}; every source needs at "
                             "least one token")
        if max_len is not None and (len(s) > max_len or len(t) > max_len):
            if on_long == "error":
                side, length, text = (("source", len(s), src) if len(s) > max_len
                                      else ("target", len(t), tgt))
                shown = text if len(text) <= 60 else text[:57] + "..."
                raise ValueError(f"pairs[{i}]: {side} {shown!r} has {length} tokens > "
                                 f"max_len={max_len} (use on_long='truncate' to cut long "
                                 "examples)")
            n_long += 1
            n_long_src += len(s) > max_len
            n_long_tgt += len(t) > max_len
            s, t = s[:max_len], t[:max_len]
            if extend_oov:  # a cut source keeps a prefix of its OOV list: ids V..V+k'-1
                first_cut = len(src_vocab) + len({i for i in s if i >= len(src_vocab)})
                t = [UNK if i >= first_cut else i for i in t]
        out.append((s, [BOS, *t, EOS]))

    if n_long:
        log.warning("truncated %d of %d examples to max_len=%d tokens (%d sources, %d targets "
                    "were longer)", n_long, len(out), max_len, n_long_src, n_long_tgt)
    for side, tally in (("source", unk_src), ("target", unk_tgt)):
        if tally.count:
            what = "got extended OOV ids" if (extend_oov and side == "source") else \
                "became <unk>"
            log.warning("%d %s tokens (in %d examples) are not in the %s vocabulary and %s; "
                        "most common: %s", tally.count, side, tally.examples, side, what,
                        tally.most_common())
    return out


class _UnkTally:
    """Counts unknown tokens while encoding; only tokenizes again for the rare texts with UNK."""

    def __init__(self):
        self.count = 0
        self.examples = 0
        self.tokens = {}

    def add(self, ids, vocab, text):
        n = ids.count(UNK)
        if n:
            self._record(n, vocab, text)

    def add_extended(self, ids, base, vocab, text):
        n = sum(1 for i in ids if i >= base or i == UNK)
        if n:
            self._record(n, vocab, text)

    def _record(self, n, vocab, text):
        self.count += n
        self.examples += 1
        if len(self.tokens) < 1000:
            for t, c in vocab.unknown_tokens(text).items():
                self.tokens[t] = self.tokens.get(t, 0) + c

    def most_common(self, k=5):
        top = sorted(self.tokens.items(), key=lambda tc: (-tc[1], tc[0]))[:k]
        return ", ".join(f"{t!r} x{c}" for t, c in top)


@dataclass(eq=False)
class Batch:
    """One padded batch, ready for ``model.forward(batch.src, batch.tgt)``.

    Attributes:
        src: (B, S) int64 array of the active backend; right-padded with PAD, no BOS/EOS.
        tgt: (B, T) int64 array of the active backend; ``[BOS] + ids + [EOS]``, then PAD.
        indices: (B,) NumPy int array: the position of each row's example in the dataset.
    """

    src: object
    tgt: object
    indices: np.ndarray
    _n_tokens: int | None = field(default=None, repr=False)

    @property
    def size(self):
        """B, the number of rows."""
        return int(self.src.shape[0])

    @property
    def n_tokens(self):
        """The number of predicted (non-PAD) target tokens, i.e. in ``tgt[:, 1:]``."""
        if self._n_tokens is None:
            self._n_tokens = int((self.tgt[:, 1:] != PAD).sum())
        return self._n_tokens

    @classmethod
    def from_examples(cls, examples, indices):
        """Pad the examples ``examples[i] for i in indices`` and move them to the device."""
        indices = np.asarray(indices, dtype=np.int64)
        src = pad_sequences([examples[i][0] for i in indices])
        tgt = pad_sequences([examples[i][1] for i in indices])
        n_tokens = int((tgt[:, 1:] != PAD).sum())
        # THE crossing to the device.
        return cls(backend.asarray(src), backend.asarray(tgt), indices, n_tokens)


class BatchIterator:
    """Batches over a list of ``(src_ids, tgt_ids)`` examples, epoch after epoch.

    Reproducible shuffling: the order of epoch ``k`` depends only on ``(seed, k)``. The
    iterator counts epochs itself: each ``iter()`` uses the current :attr:`epoch` and then
    advances it by one, so ``for epoch in range(E): for batch in batches: ...`` sees a new order
    every epoch and the same sequence of orders on every run. Call :meth:`set_epoch` to
    resume at a given epoch (after loading a checkpoint, say).

    With ``bucket=True``, each chunk of ``bucket_chunk`` batches' worth of (shuffled) examples
    is sorted by source length (then target length) before it is cut into batches, and the
    batch order is then shuffled: rows of a batch have similar lengths, so there is far less
    padding, while every epoch still sees different batches.

    ``len(iterator)`` is the number of batches per epoch.
    """

    def __init__(self, examples, batch_size, shuffle=True, seed=0, bucket=False,
                 drop_last=False, bucket_chunk=50):
        self.batch_size = positive_int("batch_size", batch_size)
        self.bucket_chunk = positive_int("bucket_chunk", bucket_chunk)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an int >= 0; got {seed!r}")
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.bucket = bool(bucket)
        self.drop_last = bool(drop_last)
        self.examples = _check_examples(examples)
        self.src_lengths = np.fromiter((len(e[0]) for e in self.examples), dtype=np.int64,
                                       count=len(self.examples))
        self.tgt_lengths = np.fromiter((len(e[1]) for e in self.examples), dtype=np.int64,
                                       count=len(self.examples))
        if self.drop_last and len(self.examples) < self.batch_size:
            raise ValueError(f"drop_last=True with {len(self.examples)} examples < batch_size="
                             f"{self.batch_size} would give no batches")
        self.epoch = 0

    def set_epoch(self, epoch):
        """Make the next iteration use the order of epoch ``epoch``."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0; got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self):
        n, b = len(self.examples), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def batch_indices(self, epoch=None):
        """The list of example-index arrays, one per batch, that epoch ``epoch`` yields
        (default: the next one). Does not advance the epoch."""
        epoch = self.epoch if epoch is None else epoch
        n, b = len(self.examples), self.batch_size
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket:
            chunk = b * self.bucket_chunk
            batches = []
            for start in range(0, n, chunk):
                part = order[start:start + chunk]
                part = part[np.lexsort((self.tgt_lengths[part], self.src_lengths[part]))]
                batches.extend(part[j:j + b] for j in range(0, len(part), b))
        else:
            batches = [order[j:j + b] for j in range(0, n, b)]
        if self.drop_last:
            batches = [x for x in batches if len(x) == b]
        if self.bucket and self.shuffle:
            batches = [batches[k] for k in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        plan = self.batch_indices(self.epoch)
        self.epoch += 1
        for idx in plan:
            yield Batch.from_examples(self.examples, idx)


def make_batches(examples, batch_size, shuffle=True, seed=0, bucket=False, drop_last=False,
                 bucket_chunk=50):
    """A :class:`BatchIterator` over ``(src_ids, tgt_ids)`` examples (see its docstring)."""
    return BatchIterator(examples, batch_size, shuffle=shuffle, seed=seed, bucket=bucket,
                         drop_last=drop_last, bucket_chunk=bucket_chunk)


def _check_examples(examples):
    if not isinstance(examples, (list, tuple)):
        raise TypeError(f"examples must be a list of (src_ids, tgt_ids); got "
                        f"{type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError("examples must hold at least one (src_ids, tgt_ids) pair; got none")
    for i, ex in enumerate(examples):
        if not isinstance(ex, (tuple, list)) or len(ex) != 2:
            raise ValueError(f"examples[{i}] must be a (src_ids, tgt_ids) pair")
        src, tgt = ex
        if len(src) == 0:
            raise ValueError(f"examples[{i}] has an empty source")
        if len(tgt) < 2 or tgt[0] != BOS or tgt[-1] != EOS:
            raise ValueError(f"examples[{i}] target must be [BOS] + ids + [EOS] (as "
                             f"encode_pairs makes it); got {list(tgt)[:10]!r}")
    return examples
