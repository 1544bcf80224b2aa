"""The data layer: text -> vocabulary ids -> padded batches on the active backend.

    from minis2s.data import Vocab, encode_pairs, make_batches, make_splits, task_info

    train, val, test = make_splits("dates", (20000, 1000, 1000), seed=0)
    info = task_info("dates")
    src_vocab = Vocab.build([s for s, _ in train], level=info.level)
    tgt_vocab = Vocab.build([t for _, t in train], level=info.level)
    examples = encode_pairs(train, src_vocab, tgt_vocab)
    for batch in make_batches(examples, batch_size=64, seed=0):
        loss = model.forward(batch.src, batch.tgt)

Real text (the shipped corpora ``tatoeba``, ``dlfs2-date``, ``dlfs2-addition``; users' files),
explicit tokenisation and BLEU/chrF: :mod:`minis2s.data.pipeline`, e.g.
``load_task_data(DataConfig(task="tatoeba"))``, and docs/data.md.

Host-side code (NumPy and Python lists) up to :class:`Batch`, which is where ids move to the
device. Warnings (unknown tokens, truncation) go to the ``"minis2s.data"`` logger.
"""

from .batching import Batch, BatchIterator, encode_pairs, make_batches, pad_sequences
from .io import DataError, load_dlfs2, load_lines, load_pairs, load_parallel, load_tsv, save_tsv
from .pipeline import Codec, DataConfig, TaskData, load_task_data
from .tasks import (
    CORPUS_TASKS,
    DATE_FORMATS,
    TASKS,
    TaskInfo,
    make_pairs,
    make_splits,
    task_info,
    task_names,
)
from .tokenize import Tokenizer
from .vocab import Vocab

__all__ = [
    "Vocab",
    "Tokenizer",
    "pad_sequences",
    "encode_pairs",
    "Batch",
    "BatchIterator",
    "make_batches",
    "TASKS",
    "CORPUS_TASKS",
    "task_names",
    "TaskInfo",
    "DATE_FORMATS",
    "make_pairs",
    "make_splits",
    "task_info",
    "DataError",
    "load_tsv",
    "load_dlfs2",
    "load_parallel",
    "load_pairs",
    "load_lines",
    "save_tsv",
    "DataConfig",
    "Codec",
    "TaskData",
    "load_task_data",
]
