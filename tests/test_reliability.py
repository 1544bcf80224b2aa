"""Faults and bad input, end to end: what the user sees when something goes wrong.

Complements test_train.py (non-finite stop/skip, Seq2Seq resume, last good checkpoint),
test_checkpoint.py (truncated, corrupt, wrong-version, wrong-model files, killed write),
test_data_io.py (malformed TSV at the API) and test_cli.py (a few one-line errors). The catalogue
of everything tried, with the messages seen, is docs/reliability.md.
"""

import logging
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minis2s
from minis2s import PAD, backend, optim
from minis2s.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minis2s.cli import main
from minis2s.data import Vocab, encode_pairs, make_splits
from minis2s.models import AttentionSeq2Seq, PointerGenerator, Seq2Seq
from minis2s.testing import tiny_batch, tiny_model
from minis2s.train import NonFiniteError, fit, resume
from tests.helpers import rewrite_checkpoint_meta

CLASSES = {"Seq2Seq": Seq2Seq, "AttentionSeq2Seq": AttentionSeq2Seq,
           "PointerGenerator": PointerGenerator}


def params_of(model):
    return {k: backend.to_numpy(p).copy() for k, p in model.params.items()}


def one_line_error(err):
    """The CLI's error contract: exactly one line, ``minis2s: error: ...``, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("minis2s: error: "), err
    assert "Traceback" not in err
    return lines[0]


# =================================================================================================
# 1. Training faults
# =================================================================================================
@pytest.fixture(scope="module")
def reverse_data():
    train, val, _ = make_splits("reverse", (64, 8, 8), seed=0)
    v = Vocab.build([s for s, _ in train])
    return encode_pairs(train, v, v), encode_pairs(val, v, v), v


@pytest.mark.parametrize("opt_cls", [optim.SGD, optim.Adam])
def test_huge_learning_rate_is_caught_naming_step_batch_and_parameter(reverse_data, opt_cls):
    """lr = 1e38 in float32: the first update leaves parameters near float32's limit (3.4e38),
    the next forward overflows, and fit stops there."""
    tr, _, v = reverse_data
    model = Seq2Seq(len(v), len(v), embed_dim=8, hidden_dim=8)
    opt = opt_cls(model.params, model.grads, lr=1e38)
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(NonFiniteError) as info:
        fit(model, opt, tr, epochs=2, batch_size=16, progress=False, log=None)
    msg = str(info.value)
    assert "non-finite training at step 2 (epoch 1, batch 1)" in msg
    assert "loss is" in msg
    named = [k for k in model.params if f"'{k}'" in msg]
    assert len(named) == 1, msg  # exactly one parameter is named


def test_skip_mode_gives_up_when_a_whole_epoch_is_skipped(reverse_data, tmp_path):
    """Skipping rescues a rare bad batch, not diverged parameters: when every batch of an
    epoch is non-finite, fit raises instead of running on (and saving) a broken model."""
    tr, va, v = reverse_data
    model = Seq2Seq(len(v), len(v), embed_dim=8, hidden_dim=8)
    opt = optim.SGD(model.params, model.grads, lr=1e38)
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(NonFiniteError, match=r"all 4 batches of epoch 2 were skipped .*"
                                                r"parameters have diverged"):
        fit(model, opt, tr, va, epochs=5, batch_size=16, progress=False, log=None,
            on_nonfinite="skip", out_dir=tmp_path)
    ck = load_checkpoint(tmp_path / "last.ckpt")
    assert ck.extra["epoch"] == 1  # epoch 2 was not saved
    assert ck.extra["history"]["skipped"] == [2, 3, 4]


def _pointer_data():
    train, val, _ = make_splits("copy", (48, 8, 8), seed=1)
    # a small vocabulary: the rarer characters become per-row OOV words with extended ids
    v = Vocab.build([s for s, _ in train] + [t for _, t in train], max_size=5)
    tr = encode_pairs(train, v, v, extend_oov=True)
    assert any(i >= len(v) for s, _ in tr for i in s)
    return tr, encode_pairs(val, v, v, extend_oov=True), v


@pytest.mark.parametrize("name", ["AttentionSeq2Seq", "PointerGenerator"])
def test_resume_reproduces_an_uninterrupted_run_exactly(name, tmp_path, reverse_data):
    if name == "PointerGenerator":
        tr, va, v = _pointer_data()

        def new():
            m = PointerGenerator(len(v), embed_dim=6, hidden_dim=8, coverage=True, seed=3)
            return m, optim.Adam(m.params, m.grads, lr=0.01)
    else:
        tr, va, v = reverse_data

        def new():
            m = AttentionSeq2Seq(len(v), len(v), embed_dim=6, hidden_dim=8, bidirectional=True,
                                 attention="additive", input_feeding=True, seed=3)
            return m, optim.Adagrad(m.params, m.grads, lr=0.05)

    kw = dict(batch_size=16, progress=False, log=None, vocabs={"src": v, "tgt": v}, seed=5)
    m1, o1 = new()
    r1 = fit(m1, o1, tr, va, epochs=3, out_dir=tmp_path / "a", **kw)
    m2, o2 = new()
    fit(m2, o2, tr, va, epochs=1, out_dir=tmp_path / "b", **kw)  # "interrupted" after epoch 1
    m3, o3, r3 = resume(tmp_path / "b" / "last.ckpt", tr, va, epochs=3, batch_size=16,
                        progress=False, log=None, out_dir=tmp_path / "b")
    assert type(m3) is type(m1) and m3.config == m1.config
    a, c = params_of(m1), params_of(m3)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    assert type(o3) is type(o1) and o3.t == o1.t == 3 * math.ceil(len(tr) / 16)
    assert r3.history["step_loss"] == r1.history["step_loss"]
    assert r3.history["val_exact"] == r1.history["val_exact"]


# =================================================================================================
# 2. Checkpoints
# =================================================================================================
def _saved(tmp_path, name):
    model = tiny_model(name, dtype="float32", seed=2)
    path = tmp_path / f"{name}.ckpt"
    model.save(path)
    return model, path


def test_checkpoint_loaded_as_another_model_class(tmp_path):
    for name, cls in CLASSES.items():
        model, path = _saved(tmp_path, name)
        assert type(load_checkpoint(path, expect=cls).model) is cls
        for other_name, other in CLASSES.items():
            if other is not cls:
                with pytest.raises(CheckpointError, match=f"holds a {name}, not a {other_name}"):
                    load_checkpoint(path, expect=other)
    with pytest.raises(TypeError, match="expect must be a model class or its name"):
        load_checkpoint(path, expect=3)


def test_empty_file_and_directory_as_checkpoint(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt: not a minis2s checkpoint .an empty"):
        minis2s.load(empty)
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="runs is a directory, not a checkpoint file; give"):
        minis2s.load(folder)


def test_saving_onto_a_directory_fails_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    model = tiny_model("Seq2Seq", dtype="float32")
    with pytest.raises(IsADirectoryError):
        model.save(folder)
    assert sorted(os.listdir(tmp_path)) == ["runs"]  # no orphaned temporary file
    assert os.listdir(folder) == ["keep.txt"]


def test_checkpoint_whose_config_does_not_fit(tmp_path):
    """A config edited (or written by another version) so that it builds no model, or builds
    one whose shapes differ from the saved params."""
    _, path = _saved(tmp_path, "Seq2Seq")
    rewrite_checkpoint_meta(path, lambda m: m["config"].update(hidden_dim=7))
    with pytest.raises(CheckpointError, match=r"Seq2Seq.ckpt: state\['.*'\] has shape"):
        minis2s.load(path)
    rewrite_checkpoint_meta(path, lambda m: m["config"].update(hidden_dim=0))
    with pytest.raises(CheckpointError, match="config does not build a Seq2Seq: hidden_dim must"):
        minis2s.load(path)
    rewrite_checkpoint_meta(path, lambda m: m["config"].update(hidden_dim=6,
                                                               dropout_embed=1.5))
    with pytest.raises(CheckpointError, match="config does not build a Seq2Seq: .*dropout"):
        minis2s.load(path)


def test_unsaveable_config_gets_a_clear_error(tmp_path):
    model = Seq2Seq(6, 6, embed_dim=2, hidden_dim=2, seed=np.random.default_rng(0))
    with pytest.raises(TypeError, match="must be JSON-serialisable.*Generator"):
        model.save(tmp_path / "m.ckpt")
    assert not os.listdir(tmp_path)


def test_numpy_int_sizes_round_trip(tmp_path):
    """Sizes that come from NumPy (len of an array, a shape) are fine, saved and loaded."""
    for model in (Seq2Seq(np.int64(9), np.int32(8), embed_dim=np.int64(3),
                          hidden_dim=np.int64(4), seed=np.int64(1)),
                  PointerGenerator(np.int64(9), hidden_dim=np.int64(4), attention_dim=np.int8(3),
                                   embed_dim=3)):
        model.save(tmp_path / "m.ckpt")
        loaded = minis2s.load(tmp_path / "m.ckpt")
        assert loaded.config == model.config
        assert all(type(v) is not np.int64 for v in loaded.config.values())


# =================================================================================================
# 3. Invalid constructor arguments, all three models
# =================================================================================================
def _args(name):
    return dict(vocab_size=9) if name == "PointerGenerator" else dict(src_vocab_size=9,
                                                                       tgt_vocab_size=9)


BAD_ARGS = []
for _name in CLASSES:
    sizes = list(_args(_name)) + ["embed_dim", "hidden_dim", "num_layers"]
    for _size in sizes:
        BAD_ARGS += [(_name, {_size: 0}, ValueError, f"{_size} must be a positive int"),
                     (_name, {_size: -3}, ValueError, f"{_size} must be a positive int"),
                     (_name, {_size: 2.0}, TypeError, f"{_size} must be a positive int"),
                     (_name, {_size: True}, TypeError, f"{_size} must be a positive int")]
    BAD_ARGS += [
        (_name, dict(dtype="float16"), ValueError, "dtype must be 'float32' or 'float64'"),
        (_name, dict(dtype="int32"), ValueError, "dtype must be 'float32' or 'float64'"),
        (_name, dict(dtype=None), ValueError, "dtype must be 'float32' or 'float64'"),
        (_name, dict(bidirectional=1), TypeError, "bidirectional must be a bool"),
        (_name, dict(bidirectional="yes"), TypeError, "bidirectional must be a bool"),
        (_name, dict(seed=-1), ValueError, "seed must be an int >= 0"),
        (_name, dict(seed="0"), TypeError, "seed must be an int or a numpy Generator"),
    ]
BAD_ARGS += [
    ("AttentionSeq2Seq", dict(attention="luong"), ValueError,
     r"attention must be one of \('dot', 'general', 'additive', 'cosine'\); got 'luong'"),
    ("AttentionSeq2Seq", dict(attention="Dot"), ValueError, "attention must be one of"),
    ("AttentionSeq2Seq", dict(input_feeding=1), TypeError, "input_feeding must be a bool"),
    ("AttentionSeq2Seq", dict(attention="additive", attention_dim=0), ValueError,
     "attention_dim must be a positive int"),
    ("AttentionSeq2Seq", dict(attention="general", attention_dim=4), ValueError,
     "attention_dim is the additive score's hidden size"),
    ("PointerGenerator", dict(cov_loss_weight=-0.5), ValueError,
     "cov_loss_weight must be a finite number >= 0; got -0.5"),
    ("PointerGenerator", dict(cov_loss_weight=float("nan")), ValueError, "cov_loss_weight"),
    ("PointerGenerator", dict(cov_loss_weight=float("inf")), ValueError, "cov_loss_weight"),
    ("PointerGenerator", dict(cov_loss_weight="1"), TypeError, "cov_loss_weight must be a number"),
    ("PointerGenerator", dict(coverage=1), TypeError, "coverage must be a bool"),
    ("PointerGenerator", dict(coverage="on"), TypeError, "coverage must be a bool"),
    ("PointerGenerator", dict(attention_dim=-1), ValueError, "attention_dim must be a positive"),
    ("PointerGenerator", dict(vocab_size=3), ValueError,
     r"vocab_size must be >= 4 \(the specials PAD, BOS, EOS, UNK come first\); got 3"),
]


@pytest.mark.parametrize("name, kw, exc, match", BAD_ARGS,
                         ids=[f"{n}-{next(iter(k))}={next(iter(k.values()))!r}"
                              for n, k, _, _ in BAD_ARGS])
def test_invalid_constructor_arguments(name, kw, exc, match):
    with pytest.raises(exc, match=match):
        CLASSES[name](**{**_args(name), **kw})


# =================================================================================================
# 4. Empty input to generate
# =================================================================================================
@pytest.mark.parametrize("name", list(CLASSES))
def test_generate_with_an_all_pad_row(name):
    model = tiny_model(name, dtype="float32")
    src, _ = tiny_batch(model)
    src[1] = PAD
    with pytest.raises(ValueError, match="src row 1 is all PAD; every row needs at least one "
                                         "real token"):
        model.generate(src)
    with pytest.raises(ValueError, match="src must not be empty"):
        model.generate(src[:, :0])
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        model.generate(src[:1], max_len=0)
    with pytest.raises(ValueError, match="beam_size must be a positive int"):
        model.generate(src[:1], beam_size=0)


# =================================================================================================
# 5. User input through the CLI
# =================================================================================================
def _char_ckpt(tmp_path, name="attention"):
    """A checkpoint with vocabularies, as `minis2s train` writes it (untrained: enough here)."""
    v = Vocab(list("abcdefgh"))
    if name == "pointer":
        model = PointerGenerator(len(v), embed_dim=4, hidden_dim=4)
    else:
        model = AttentionSeq2Seq(len(v), len(v), embed_dim=4, hidden_dim=4)
    path = tmp_path / f"{name}.ckpt"
    save_checkpoint(path, model, {"src": v, "tgt": v})
    return path


@pytest.mark.parametrize("content, where", [
    ("ab\tba\ncd dc\nef\tfe\n", "line 2: no tab"),
    ("ab\tba\ncd\tdc\n\tfe\n", "line 3: empty source"),
    ("ab\tba\ncd\t \n", "line 2: empty target"),
    ("ab\tba\ncd\tdc\nef\tf\te\n", "line 3: 2 tabs"),
    ("ab\tba\n\ncd\tdc\n", "line 2: blank line between examples"),
    (b"ab\tba\ncaf\xe9\tefac\n", "line 2: bytes b'\\xe9' cannot be decoded as utf-8"),
    ("", "the file holds no examples"),
    ("\n \n", "the file holds no examples"),
])
def test_malformed_tsv_reaches_the_user_as_one_line(tmp_path, capsys, content, where):
    f = tmp_path / "pairs.tsv"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    for argv in (["train", "--data", str(f), "--model", "seq2seq"],
                 ["eval", "--checkpoint", str(_char_ckpt(tmp_path)), "--data", str(f)]):
        assert main(argv) == 2
        line = one_line_error(capsys.readouterr().err)
        assert f"{f}" in line and where in line, line


# eight examples of 7 to 12 tokens, each of its own letter: whichever rows the shuffle puts in
# the validation split, their letters are unknown to the vocabulary built on the training split
LONG_TSV = "".join(f"{c * n}\t{c * n}\n" for c, n in zip("abcdefgh", [7, 8, 9, 12, 7, 8, 9, 7]))


def _train_argv(f, out, *extra):
    return ["train", "--data", str(f), "--model", "seq2seq", "--epochs", "1", "--embed-dim",
            "2", "--hidden-dim", "3", "--n-val", "1", "--n-test", "1", "--no-progress",
            "--out", str(out), *extra]


def test_train_max_len_truncates_and_unknown_tokens_are_counted(tmp_path, caplog, capsys):
    """`minis2s train --max-len 5`: every example is cut to 5 tokens with one warning per
    encoded split, and the validation split's letters, unseen in training, are counted."""
    f = tmp_path / "long.tsv"
    f.write_text(LONG_TSV)
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        assert main(_train_argv(f, tmp_path / "run", "--max-len", "5")) == 0
    msgs = [r.getMessage() for r in caplog.records]
    cut = [m for m in msgs if m.startswith("truncated")]
    assert cut == ["truncated 6 of 6 examples to max_len=5 tokens (6 sources, 6 targets were "
                   "longer)", "truncated 1 of 1 examples to max_len=5 tokens (1 sources, 1 "
                   "targets were longer)"], msgs
    assert any("source tokens (in 1 examples) are not in the source vocabulary and became "
               "<unk>" in m for m in msgs), msgs
    assert (tmp_path / "run" / "best.ckpt").exists()


def test_train_max_len_error_mode_rejects_the_long_example(tmp_path, capsys):
    f = tmp_path / "long.tsv"
    f.write_text(LONG_TSV)
    assert main(_train_argv(f, tmp_path / "run", "--max-len", "5", "--on-long", "error")) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "tokens > --max-len=5" in line and "pairs[" in line and "--on-long=" in line
    # the index is after the shuffle into splits, so the message also shows the example itself
    shown = re.search(r"source '(\w+)' has (\d+) tokens", line)
    assert shown and shown.group(1) + "\t" + shown.group(1) in LONG_TSV
    assert len(shown.group(1)) == int(shown.group(2)) > 5
    assert not (tmp_path / "run" / "best.ckpt").exists()


@pytest.mark.parametrize("name, what", [("attention", "became <unk>"),
                                        ("pointer", "got extended OOV ids")])
def test_unknown_characters_at_generate_time_are_counted_in_the_log(tmp_path, caplog, capsys,
                                                                    name, what):
    path = _char_ckpt(tmp_path, name)
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        assert main(["generate", "--checkpoint", str(path), "--max-len", "3", "abzz", "xa"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    msgs = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("3 input tokens are not in the source vocabulary and " + what)
               and "'z' x2" in m and "'x' x1" in m for m in msgs), msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        assert main(["generate", "--checkpoint", str(path), "--max-len", "3", "abc"]) == 0
    assert not caplog.records  # nothing unknown, nothing logged


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "bad.tsv").write_text("ab\tba\nno tab\n")
    (d / "empty.ckpt").write_bytes(b"")
    (d / "a_file").write_text("x")
    (d / "folder").mkdir()
    tiny_model("Seq2Seq", dtype="float32").save(d / "bare.ckpt")  # no vocabularies
    _char_ckpt(d)
    return d


def cli_cases(d):
    """(argv, what the one line must contain) for user errors through `python -m minis2s`."""
    good = str(d / "attention.ckpt")
    return [
        (["train", "--attention", "luong"], "train: --attention: unknown choice 'luong'; choose "
                                            "one of: dot, general, additive, cosine"),
        (["train", "--dtype", "float16"], "--dtype: unknown choice 'float16'; choose one of: "
                                          "float32, float64 (did you mean float64?)"),
        (["train", "--on-long", "drop"], "--on-long: unknown choice 'drop'; choose one of: "
                                         "truncate, error"),
        (["train", "--model", "seq2seq", "--max-len", "0"], "--max-len must be > 0; got 0"),
        (["train", "--model", "seq2seq", "--clip", "-1"], "--clip must be >= 0"),
        (["train", "--model", "seq2seq", "--n-train", "0"], "--n-train must be > 0; got 0"),
        (["train", "--model", "seq2seq", "--layers", "abc"], "invalid int value: 'abc'"),
        (["train", "--model", "seq2seq", "--data", str(d / "bad.tsv")], "line 2: no tab"),
        (["train", "--model", "seq2seq", "--data", str(d / "folder")],
         "folder is a directory; --data expects a file of"),
        (["train", "--model", "seq2seq", "--out", str(d / "a_file")],
         "exists and is not a directory"),
        (["train", "--task", "reverse", "--model", "seq2seq", "--n-train", "64", "--n-val", "4",
          "--epochs", "2", "--batch-size", "16", "--embed-dim", "4", "--hidden-dim", "4",
          "--lr", "1e38", "--no-progress", "--out", str(d / "run")],
         "non-finite training at step 2 (epoch 1, batch 1)"),
        (["generate", "--checkpoint", str(d / "empty.ckpt"), "ab"],
         "not a minis2s checkpoint (an empty file"),
        (["generate", "--checkpoint", str(d / "folder"), "ab"], "is a directory, not a checkpoint"),
        (["generate", "--checkpoint", str(d / "bare.ckpt"), "ab"], "has no vocabularies"),
        (["generate", "--checkpoint", str(d / "missing.ckpt"), "ab"], "checkpoint not found"),
        (["generate", "--checkpoint", good, ""], "input is empty"),
        (["generate", "--checkpoint", good, "--beam-size", "0", "ab"],
         "--beam-size must be a positive int"),
        (["generate", "--checkpoint", good, "--max-len", "-1", "ab"],
         "--max-len must be a positive int"),
        (["eval", "--checkpoint", good, "--data", str(d / "bad.tsv")], "line 2: no tab"),
        (["gradcheck", "--model", "pointer", "--layers", "0"], "num_layers must be a positive"),
        (["assignment"], "assignment needs an action"),
    ]


def test_every_cli_user_error_is_one_line_and_status_2(cli_files):
    """Each case runs `python -m minis2s` in its own process (all at once, to save time)."""
    cases = cli_cases(cli_files)
    # the cases run at once: each train run gets its own --out, so that none waits on another's
    # run lock (one --out per run is what the CLI asks for)
    cases = [([*argv, "--out", str(cli_files / f"out{i}")]
              if argv[0] == "train" and "--out" not in argv else argv, want)
             for i, (argv, want) in enumerate(cases)]
    env = {k: v for k, v in os.environ.items() if k != "MINIS2S_DEBUG"}
    procs = [subprocess.Popen([sys.executable, "-m", "minis2s", *argv], cwd=cli_files, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv, _ in cases]
    failures = []
    for (argv, want), p in zip(cases, procs):
        out, err = p.communicate(timeout=240)
        try:
            assert p.returncode == 2, f"status {p.returncode}"
            line = one_line_error(err)
            assert want in line, f"expected {want!r}"
        except AssertionError as e:
            failures.append(f"{argv}: {e}\n  stderr: {err[-500:]!r}")
    assert not failures, "\n".join(failures)
