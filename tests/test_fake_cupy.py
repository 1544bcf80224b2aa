"""minis2s on a stand-in for CuPy (tests/fake_cupy): NumPy underneath, CuPy's rules on top.

No GPU is needed. The stand-in refuses what real CuPy refuses: an implicit conversion of a
device array to NumPy (``np.asarray``) and a NumPy array mixed into a device operation. So
these runs find code that would mix NumPy and CuPy arrays on a GPU. They run in a child process
(``MINIS2S_BACKEND=cupy`` is read at import). The whole suite can be run the same way, with
absolute paths (some tests start processes in other folders):

    PYTHONPATH=$PWD/tests/fake_cupy:$PWD MINIS2S_BACKEND=cupy python -m pytest -n auto
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_cupy"


def run_on_fake_cupy(code, timeout=300):
    env = dict(os.environ, MINIS2S_BACKEND="cupy", MINIS2S_FUSED="",
               PYTHONPATH=os.pathsep.join([str(FAKE), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_stand_in_refuses_what_cupy_refuses():
    r = run_on_fake_cupy("""
        import numpy as np, cupy
        a = cupy.asarray(np.ones(3))
        refused = []
        for name, f in [("np.asarray", lambda: np.asarray(a)),
                        ("mixed add", lambda: a + np.ones(3)),
                        ("mixed concatenate", lambda: cupy.concatenate([a, np.ones(3)])),
                        ("np.testing", lambda: np.testing.assert_allclose(a, a))]:
            try:
                f()
            except TypeError:
                refused.append(name)
        assert len(refused) == 4, refused
        assert type(np.tanh(a)) is cupy.ndarray and float(a.sum()) == 3.0
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_models_train_decode_and_gradcheck_on_the_stand_in():
    """Every model: a training step (fused GRU kernels on, as on a GPU), greedy and beam
    search, a gradient check (3 sampled elements per parameter: the stand-in is slow; the
    suite checks every element on NumPy), save and load, with NumPy ids given as input."""
    r = run_on_fake_cupy("""
        import numpy as np
        import minis2s
        from minis2s import backend, optim
        from minis2s.gradcheck import check_model
        from minis2s.testing import tiny_batch, tiny_model
        from minis2s.train import train_step
        assert backend.name == "cupy" and backend.xp.FAKE and backend.fused()
        for cls, kw in [("Seq2Seq", {}), ("AttentionSeq2Seq", {}),
                        ("AttentionSeq2Seq", dict(input_feeding=True, attention="additive")),
                        ("PointerGenerator", dict(coverage=True))]:
            m = tiny_model(cls, **kw)
            src, tgt = tiny_batch(m)
            src, tgt = backend.to_numpy(src), backend.to_numpy(tgt)  # host ids are accepted
            loss, _ = train_step(m, optim.Adam(m.params, m.grads, lr=1e-2), src, tgt, 5.0)
            assert np.isfinite(loss)
            assert all(isinstance(row, list) for row in m.generate(src, max_len=5))
            assert all(isinstance(row, list) for row in m.generate(src, max_len=5, beam_size=3))
            report = check_model(m, src, tgt, max_elements=3, stencil=2)
            assert report.passed, str(report)
            m.save("/tmp/fake_cupy_model.npz")
            m2 = minis2s.load("/tmp/fake_cupy_model.npz")
            for k in m.params:
                assert (backend.to_numpy(m2.params[k]) == backend.to_numpy(m.params[k])).all()
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


#: models whose output layer is wide enough that NumPy runs the loss's row-wise passes in many
#: blocks of rows (about 5 rows a block at V = 6,000 in float64), while CuPy takes all rows at once
WIDE_MODELS = [("Seq2Seq", {}), ("AttentionSeq2Seq", dict(label_smoothing=0.1)),
               ("PointerGenerator", dict(coverage=True))]


def _wide_gradients(cls, kw):
    from minis2s import backend
    from minis2s.testing import tiny_batch, tiny_model

    m = tiny_model(cls, vocab_size=6000, num_layers=1, **kw)
    src, tgt = tiny_batch(m, B=4)
    loss = m.forward(src, tgt)
    m.backward()
    return loss, {k: backend.to_numpy(g) for k, g in m.grads.items()}


def test_gradients_on_the_stand_in_equal_numpys_at_a_wide_vocabulary(tmp_path):
    """The CuPy branches of the fast tier (the loss's rows all at once, Adam's whole arrays,
    the fused GRU kernels) compute what NumPy computes. A tiny vocabulary hides a branch that
    handles only the first block of rows, so V = 6,000 here: each model's loss and every
    gradient on the stand-in equal NumPy's, in float64."""
    out = tmp_path / "grads.npz"
    r = run_on_fake_cupy(f"""
        import numpy as np
        from tests.test_fake_cupy import WIDE_MODELS, _wide_gradients
        arrays = {{}}
        for i, (cls, kw) in enumerate(WIDE_MODELS):
            loss, grads = _wide_gradients(cls, kw)
            arrays[f"{{i}}:loss"] = np.array(loss)
            arrays.update({{f"{{i}}:{{k}}": g for k, g in grads.items()}})
        np.savez("{out}", **arrays)
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    on_stand_in = np.load(out)
    for i, (cls, kw) in enumerate(WIDE_MODELS):
        loss, grads = _wide_gradients(cls, kw)
        np.testing.assert_allclose(on_stand_in[f"{i}:loss"], loss, rtol=1e-12, err_msg=cls)
        for k, g in grads.items():
            np.testing.assert_allclose(on_stand_in[f"{i}:{k}"], g, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{cls}: {k}")


def test_the_loss_takes_batches_without_real_tokens_on_the_stand_in():
    """A batch whose targets are all PAD: a loss of 0 and zero gradients, as on NumPy."""
    r = run_on_fake_cupy("""
        import numpy as np
        from minis2s import backend
        from minis2s.fast import output
        rng = np.random.default_rng(0)
        r = backend.asarray(rng.normal(size=(2, 3, 4)))
        W, b = backend.asarray(rng.normal(size=(4, 50))), backend.asarray(np.zeros(50))
        y = backend.asarray(np.zeros((2, 3), dtype=np.int64))
        mask = backend.asarray(np.zeros((2, 3), dtype=bool))
        loss, cache = output.readout_loss_forward(r, W, b, y, mask)
        dr, dW, db = output.readout_loss_backward(cache)
        assert float(loss) == 0 and not backend.to_numpy(dr).any()
        assert not backend.to_numpy(dW).any() and not backend.to_numpy(db).any()
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.parametrize("model", ["attention", "pointer"])
def test_cli_trains_on_the_stand_in(tmp_path, model):
    task = "dates" if model == "attention" else "entities"
    r = run_on_fake_cupy(f"""
        from minis2s.cli import main
        raise SystemExit(main(["train", "--task", "{task}", "--model", "{model}",
                               "--backend", "cupy", "--n-train", "64", "--n-val", "8",
                               "--epochs", "1", "--embed-dim", "4", "--hidden-dim", "6",
                               "--batch-size", "16", "--no-progress", "--out", "{tmp_path}"]))
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "best.ckpt").exists() and (tmp_path / "loss_curve.png").exists()
    if model == "attention":  # heatmaps: device arrays brought to the host for matplotlib
        assert (tmp_path / "attention_0.png").exists()


def test_functional_ops_and_layers_take_host_arrays_on_the_stand_in():
    r = run_on_fake_cupy("""
        import numpy as np
        from minis2s import backend, layers
        from minis2s.functional import attention as A, gru as F
        rng = np.random.default_rng(0)
        gru = layers.GRU(3, 4, dtype="float64")
        params = {k: backend.to_numpy(v) for k, v in gru.params.items()}  # host weights
        x, mask = rng.normal(size=(2, 5, 3)), np.array([[1] * 5, [1, 1, 0, 0, 0]])
        out, h_n, cache = F.gru_forward(x, None, mask, params, 1, False)
        dx, dh0, grads = F.gru_backward(rng.normal(size=out.shape), None, cache)
        out2, _ = gru.forward(x, None, mask)
        assert isinstance(out, backend.xp.ndarray) and isinstance(dx, backend.xp.ndarray)
        assert np.allclose(backend.to_numpy(out), backend.to_numpy(out2))
        c, alpha, _ = A.attention_forward(rng.normal(size=(2, 1, 4)), backend.to_numpy(out),
                                          mask != 0, "dot", {})
        assert np.allclose(backend.to_numpy(alpha).sum(-1), 1)
        gru2 = layers.GRU(3, 4, num_layers=2, dtype="float64")  # host dropout masks in a list
        params2 = {k: backend.to_numpy(v) for k, v in gru2.params.items()}
        out_d, _, _ = F.gru_forward(x, None, mask, params2, 2, False, [np.full((2, 5, 4), 2.0)])
        assert isinstance(out_d, backend.xp.ndarray)
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_the_articles_step_methods_take_host_arrays_on_the_stand_in():
    """The notebooks call the article's steps one by one, often with NumPy data."""
    r = run_on_fake_cupy("""
        import numpy as np
        from minis2s import backend
        from minis2s.testing import tiny_batch, tiny_model
        m = tiny_model("AttentionSeq2Seq", bidirectional=False)
        src = backend.to_numpy(tiny_batch(m)[0])
        enc_out, s0, _ = m.encode(src)
        memory, _ = m.transform_encoder_states(backend.to_numpy(enc_out), src)
        s = np.random.default_rng(0).normal(size=(src.shape[0], 2, m.hidden_dim))
        c, alpha, _ = m.attend(s, memory)
        logits, _ = m.readout(m.attentional_vector(backend.to_numpy(c), s))
        assert isinstance(logits, backend.xp.ndarray) and logits.shape[:2] == (src.shape[0], 2)
        pg = tiny_model("PointerGenerator", coverage=True)
        src = backend.to_numpy(tiny_batch(pg)[0])
        state = pg.init_decoder(src)
        logp, state = pg.decode_step(state, np.full(src.shape[0], 1))
        assert isinstance(logp, backend.xp.ndarray)
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
