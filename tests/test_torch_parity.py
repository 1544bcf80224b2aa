"""Parity with the PyTorch twins of benchmarks/torch_reference.py (skipped without torch).

The twins are written with standard torch ops and autograd; with identical weights (copied by
``copy_to_minis2s`` / ``copy_pg_to_minis2s``) each minis2s model must give the same loss and the
same gradient for every parameter, in float64, on padded batches. This is what lets
benchmarks/vs_torch.py compare the speed of one and the same computation.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minis2s  # noqa: E402
from minis2s import backend  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from torch_reference import (  # noqa: E402
    TorchGreedy,
    TorchPointerGenerator,
    TorchSeq2Seq,
    copy_pg_to_minis2s,
    copy_to_minis2s,
)

pytestmark = pytest.mark.torch

D, H = 5, 4
TOL = 1e-10


@pytest.fixture(autouse=True)
def float64_torch():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def perturb(twin, scale=0.3, seed=0):
    """Non-zero everything (biases, w_c, b_ptr...), so no parameter's path is trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def run_both(twin, model, src, tgt):
    """(minis2s loss, torch loss, minis2s grads as NumPy, torch grads in minis2s layout)."""
    loss = model.forward(src, tgt)
    model.backward()
    twin.zero_grad()
    tloss = twin(torch.from_numpy(src), torch.from_numpy(tgt))
    tloss.backward()
    grads = {k: backend.to_numpy(v) for k, v in model.grads.items()}
    return loss, tloss.item(), grads, twin.minis2s_state(grad=True)


def assert_same(loss, tloss, grads, tgrads, zero_ok=()):
    assert loss == pytest.approx(tloss, rel=TOL, abs=0)
    assert set(grads) == set(tgrads)
    for k, g in grads.items():
        scale = float(np.abs(tgrads[k]).max())
        if k not in zero_ok:
            assert scale > 1e-6, f"{k}: zero gradient, so the comparison proves nothing"
        np.testing.assert_allclose(g, tgrads[k], rtol=TOL, atol=TOL * scale, err_msg=k)


# ------------------------------------------------------------------------------------------
# Seq2Seq and AttentionSeq2Seq (dot) against TorchSeq2Seq
# ------------------------------------------------------------------------------------------
V_SRC, V_TGT = 11, 9
SRC = np.array([[5, 6, 7, 0, 0],  # unsorted lengths, padding on the right
                [4, 8, 9, 10, 6],
                [7, 0, 0, 0, 0],
                [9, 5, 4, 6, 0]])
TGT = np.array([[1, 4, 5, 6, 2, 0],
                [1, 7, 2, 0, 0, 0],
                [1, 8, 8, 4, 5, 2],
                [1, 3, 6, 2, 0, 0]])


@pytest.mark.parametrize("attention", [None, "dot"], ids=["seq2seq", "attention-dot"])
def test_seq2seq_twin_same_loss_and_gradients(attention):
    torch.manual_seed(0)
    twin = TorchSeq2Seq(V_SRC, V_TGT, D, H, attention=attention).double()
    perturb(twin)
    if attention is None:
        model = minis2s.Seq2Seq(V_SRC, V_TGT, D, H, dtype="float64")
    else:
        model = minis2s.AttentionSeq2Seq(V_SRC, V_TGT, D, H, attention="dot", dtype="float64")
    copy_to_minis2s(twin, model)
    # the rows of PAD in the embeddings are used by no token, so they get no gradient
    assert_same(*run_both(twin, model, SRC, TGT))


def padded_batches(n, B=5, S=7, T=6, seed=0):
    """n random (src, tgt) batches with rows of random lengths, PAD on the right."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        src = np.zeros((B, S), dtype=np.int64)
        tgt = np.zeros((B, T + 1), dtype=np.int64)
        for b in range(B):
            ls, lt = rng.integers(1, S + 1), rng.integers(1, T)
            src[b, :ls] = rng.integers(4, V_SRC, ls)
            tgt[b, 0], tgt[b, 1:lt + 1], tgt[b, lt + 1] = 1, rng.integers(3, V_TGT, lt), 2
        out.append((src, tgt))
    return out


@pytest.mark.parametrize("attention", [None, "dot"], ids=["seq2seq", "attention-dot"])
def test_training_follows_the_twin_step_by_step(attention):
    """Thirty steps of forward, backward, clipping and Adam from the same weights on the same
    batches: minis2s's ``train_step`` and the twin's torch.optim.Adam with clip_grad_norm_
    give the same losses and the same parameters (float64), with the clipping both engaged
    and not. The one-step gradient tests above do not cover the optimiser or the clipping."""
    from minis2s import optim
    from minis2s.train import train_step

    torch.manual_seed(0)
    twin = TorchSeq2Seq(V_SRC, V_TGT, D, H, attention=attention).double()
    perturb(twin)
    cls = minis2s.Seq2Seq if attention is None else minis2s.AttentionSeq2Seq
    model = cls(V_SRC, V_TGT, D, H, dtype="float64",
                **({} if attention is None else dict(attention="dot")))
    copy_to_minis2s(twin, model)
    lr, clip = 0.02, 0.4
    opt = optim.Adam(model.params, model.grads, lr=lr)
    topt = torch.optim.Adam(twin.parameters(), lr=lr)
    clipped = []
    for src, tgt in padded_batches(30):
        loss, norm = train_step(model, opt, src, tgt, clip)
        topt.zero_grad()
        tloss = twin(torch.from_numpy(src), torch.from_numpy(tgt))
        tloss.backward()
        tnorm = float(torch.nn.utils.clip_grad_norm_(twin.parameters(), clip))
        topt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-9, abs=0)
        assert norm == pytest.approx(tnorm, rel=1e-9, abs=0)
        clipped.append(norm > clip)
    assert any(clipped) and not all(clipped), clipped
    state = twin.minis2s_state()
    for k, p in model.params.items():
        np.testing.assert_allclose(backend.to_numpy(p), state[k], rtol=1e-8, atol=1e-10,
                                   err_msg=k)


@pytest.mark.parametrize("attention", [None, "dot"], ids=["seq2seq", "attention-dot"])
def test_greedy_decoding_matches_the_twin(attention):
    """At the same weights, minis2s's greedy ``generate`` and the twin's (TorchGreedy, used
    by benchmarks/translation.py to score the twin) give the same ids, padded rows included."""
    torch.manual_seed(1)
    twin = TorchSeq2Seq(V_SRC, V_TGT, D, H, attention=attention).double()
    perturb(twin, scale=1.0, seed=1)
    cls = minis2s.Seq2Seq if attention is None else minis2s.AttentionSeq2Seq
    model = cls(V_SRC, V_TGT, D, H, dtype="float64",
                **({} if attention is None else dict(attention="dot")))
    copy_to_minis2s(twin, model)
    src = np.concatenate([s for s, _ in padded_batches(4, B=8, seed=3)])
    ours = model.generate(src, max_len=9)
    theirs = TorchGreedy(twin).generate(src, max_len=9)
    assert ours == theirs
    lengths = {len(r) for r in ours}
    assert len(lengths) > 1 and max(lengths) > 1, ours  # EOS stops rows at different steps


# ------------------------------------------------------------------------------------------
# PointerGenerator (coverage) against TorchPointerGenerator
# ------------------------------------------------------------------------------------------
V = 12  # ids >= 12 are the row's OOVs
PG_SRC = np.array([[5, 6, 12, 7, 13, 12, 0],  # OOVs 12, 13 (12 twice), a PAD
                   [4, 12, 5, 0, 0, 0, 0],
                   [8, 9, 10, 11, 4, 5, 9],  # no OOV, a repeated in-vocabulary word
                   [12, 7, 0, 0, 0, 0, 0]])
PG_TGT = np.array([[1, 12, 5, 13, 2, 0],  # copies OOVs
                   [1, 4, 12, 6, 2, 0],  # 6 is generated only
                   [1, 3, 9, 2, 0, 0],  # UNK (an OOV of the target absent from the source)
                   [1, 12, 7, 12, 7, 2]])


@pytest.mark.parametrize("coverage,bidirectional,num_layers",
                         [(True, True, 1), (True, False, 2), (False, True, 1)],
                         ids=["coverage-bidir", "coverage-2layers", "no-coverage"])
def test_pointer_twin_same_loss_and_gradients(coverage, bidirectional, num_layers):
    torch.manual_seed(0)
    kw = dict(embed_dim=D, hidden_dim=H, num_layers=num_layers, bidirectional=bidirectional,
              attention_dim=3, coverage=coverage, cov_loss_weight=0.7)
    twin = TorchPointerGenerator(V, **kw).double()
    perturb(twin)
    model = minis2s.PointerGenerator(V, dtype="float64", **kw)
    copy_pg_to_minis2s(twin, model)
    # without coverage, w_c has no effect: exactly zero gradient in both
    assert_same(*run_both(twin, model, PG_SRC, PG_TGT),
                zero_ok=() if coverage else ("attn.w_c",))


def test_pointer_twin_coverage_term_matters():
    """The comparison can fail: the coverage loss weight changes the twin's loss, and a
    minis2s model with another weight then disagrees."""
    torch.manual_seed(0)
    kw = dict(embed_dim=D, hidden_dim=H, coverage=True)
    twin = TorchPointerGenerator(V, cov_loss_weight=1.0, **kw).double()
    perturb(twin)
    model = minis2s.PointerGenerator(V, cov_loss_weight=0.5, dtype="float64", **kw)
    copy_pg_to_minis2s(twin, model)
    loss, tloss, _, _ = run_both(twin, model, PG_SRC, PG_TGT)
    assert abs(loss - tloss) > 1e-3


def test_copy_pg_rejects_mismatched_sizes():
    twin = TorchPointerGenerator(V, embed_dim=D, hidden_dim=H).double()
    model = minis2s.PointerGenerator(V, embed_dim=D, hidden_dim=H + 1, dtype="float64")
    with pytest.raises(ValueError, match="shape"):
        copy_pg_to_minis2s(twin, model)
