"""Properties every model must have: gradient checks, padding invariance, determinism,
save/load, generation, and clear errors for bad input. Parametrised over the model classes."""

import numpy as np
import pytest

import minis2s
from minis2s import BOS, EOS, PAD, backend, optim
from minis2s.gradcheck import check_model
from minis2s.models import MODELS
from minis2s.testing import random_batch, tiny_batch, tiny_model

# (class name, constructor options) — the gradient-check matrix
CONFIGS = [
    ("Seq2Seq", dict(num_layers=1, bidirectional=False)),
    ("Seq2Seq", dict(num_layers=2, bidirectional=False)),
    ("Seq2Seq", dict(num_layers=1, bidirectional=True)),
    ("Seq2Seq", dict(num_layers=2, bidirectional=True)),
]
for score in ("dot", "general", "additive", "cosine"):
    for feed in (False, True):
        CONFIGS.append(("AttentionSeq2Seq", dict(num_layers=2, bidirectional=True,
                                                 attention=score, input_feeding=feed)))
for cov in (False, True):
    CONFIGS.append(("PointerGenerator", dict(num_layers=1, bidirectional=True, coverage=cov)))
    CONFIGS.append(("PointerGenerator", dict(num_layers=2, bidirectional=True, coverage=cov)))
CONFIGS = [c for c in CONFIGS if c[0] in MODELS]
IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in CONFIGS]
CLASSES = sorted({n for n, _ in CONFIGS})


def make(name, **kw):
    return tiny_model(name, **kw)


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_gradcheck_every_parameter(name, kw):
    model = make(name, **kw)
    src, tgt = tiny_batch(model)
    assert (src == PAD).any() and (tgt == PAD).any()  # the batch really is padded
    # Seq2Seq: every element of every parameter; the larger models: a random sample of 40
    # elements of each parameter (every parameter is still checked).
    sample = None if name == "Seq2Seq" else 40
    report = check_model(model, src, tgt, max_elements=sample)
    assert report.passed, str(report)
    assert {r.name for r in report.rows} == set(model.params)


def _row_alone(src, tgt, b):
    s = src[b][src[b] != PAD][None]
    t = tgt[b][: int((tgt[b] != PAD).sum())][None]
    return s, t


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_padding_invariance(name, kw):
    """Loss and gradients of a padded batch = token-weighted mean over each row run alone."""
    model = make(name, **kw)
    src, tgt = tiny_batch(model, B=4, S=8, T=7)
    loss = model.forward(src, tgt)
    model.backward()
    grads = {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}
    n = (tgt[:, 1:] != PAD).sum(axis=1)
    want_loss, want = 0.0, {k: np.zeros_like(g) for k, g in grads.items()}
    for b in range(src.shape[0]):
        s, t = _row_alone(src, tgt, b)
        lb = model.forward(s, t)
        model.backward()
        want_loss += n[b] * lb
        for k in want:
            want[k] += n[b] * backend.to_numpy(model.grads[k])
    assert loss == pytest.approx(want_loss / n.sum(), abs=1e-10)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k] / n.sum(), atol=1e-10, err_msg=k)


@pytest.mark.parametrize("name", CLASSES)
def test_same_seed_same_params_after_training(name):
    def run():
        model = make(name, seed=3)
        src, tgt = tiny_batch(model, seed=1)
        opt = optim.Adam(model.params, model.grads, lr=0.01)
        for _ in range(5):
            model.forward(src, tgt)
            model.backward()
            optim.clip_grad_norm(model.grads, 1.0)
            opt.step()
        return {k: backend.to_numpy(v).copy() for k, v in model.params.items()}

    a, b = run(), run()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = make(name, seed=4)
    assert any(not np.array_equal(a[k], backend.to_numpy(c.params[k])) for k in a)


@pytest.mark.parametrize("name", CLASSES)
def test_save_load_identical_generate(name, tmp_path):
    model = make(name, seed=5)
    src, tgt = tiny_batch(model)
    opt = optim.Adam(model.params, model.grads, lr=0.05)
    for _ in range(3):
        model.forward(src, tgt)
        model.backward()
        opt.step()
    path = tmp_path / "model.bin"
    model.save(path)
    assert path.exists() and len(list(tmp_path.iterdir())) == 1  # exactly that file
    loaded = minis2s.load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for k in model.params:
        np.testing.assert_array_equal(backend.to_numpy(loaded.params[k]),
                                      backend.to_numpy(model.params[k]))
    for beam in (1, 3):
        assert loaded.generate(src, max_len=8, beam_size=beam) == \
            model.generate(src, max_len=8, beam_size=beam)


@pytest.mark.parametrize("name", CLASSES)
def test_generate_returns_clean_id_lists(name):
    model = make(name, seed=1)
    src, _ = tiny_batch(model)
    for beam in (1, 2, 4):
        out = model.generate(src, max_len=6, beam_size=beam)
        assert isinstance(out, list) and len(out) == src.shape[0]
        for row in out:
            assert all(isinstance(i, int) for i in row)
            assert not {PAD, BOS, EOS} & set(row)
            assert len(row) <= 6


@pytest.mark.parametrize("name", CLASSES)
def test_float32_default_has_no_upcast(name):
    model = tiny_model(name, dtype="float32")
    src, tgt = tiny_batch(model)
    loss = model.forward(src, tgt)
    model.backward()
    assert isinstance(loss, float) and np.isfinite(loss)
    for k in model.params:
        assert model.params[k].dtype == np.float32, k
        assert model.grads[k].dtype == np.float32, k


@pytest.mark.parametrize("name", CLASSES)
def test_bad_inputs_get_clear_errors(name):
    model = make(name)
    src, tgt = tiny_batch(model)
    V = model.src_vocab_size
    high = V + 50  # beyond even a pointer's extended ids
    cases = [
        (dict(src=np.where(src == PAD, PAD, high), tgt=tgt), ValueError, "src.*outside"),
        (dict(src=src[0], tgt=tgt), ValueError, "src must have shape"),
        (dict(src=np.zeros_like(src), tgt=tgt), ValueError, "src row 0 is all PAD"),
        (dict(src=src, tgt=np.where(tgt == BOS, 5, tgt)), ValueError, "BOS"),
        (dict(src=src, tgt=np.where(tgt == EOS, 5, tgt)), ValueError, "EOS"),
        (dict(src=src[:2], tgt=tgt), ValueError, "same batch size"),
        (dict(src=src.astype(np.float64), tgt=tgt), TypeError, "src must hold integer"),
        (dict(src=src, tgt=tgt.astype(np.float32)), TypeError, "tgt must hold integer"),
        (dict(src="hello", tgt=tgt), TypeError, "src must be an int array"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            model.forward(**args)
    holey = src.copy()
    holey[0, 1] = PAD
    with pytest.raises(ValueError, match="pad only at the right"):
        model.forward(holey, tgt)
    with pytest.raises(ValueError, match="src"):
        model.generate(np.zeros_like(src))


def test_backward_before_forward_is_an_error():
    model = make("Seq2Seq")
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward()


@pytest.mark.parametrize("kw, exc, match", [
    (dict(hidden_dim=0), ValueError, "hidden_dim"),
    (dict(embed_dim=-3), ValueError, "embed_dim"),
    (dict(num_layers=1.5), TypeError, "num_layers"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(bidirectional="yes"), TypeError, "bidirectional"),
])
def test_invalid_constructor_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        minis2s.Seq2Seq(10, 10, **kw)


def test_random_batch_is_well_formed():
    src, tgt = random_batch(4, 9, 6, 12, 13, seed=2)
    assert (tgt[:, 0] == BOS).all()
    lengths = (tgt != PAD).sum(1)
    assert (tgt[np.arange(4), lengths - 1] == EOS).all()
    assert (src[:, 0] != PAD).all() and (src == PAD).any()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_generate_trace_is_the_base_models_for_every_model(name):
    """One generate, in the base model: trace=True returns one dict of NumPy arrays per row
    (alpha for the attention models, also coverage and p_gen for the pointer); Seq2Seq has no
    attention to trace."""
    from minis2s.models.base import Model

    model = tiny_model(name, seed=3)
    assert type(model).generate is Model.generate
    src, _ = tiny_batch(model, B=3)
    if name == "Seq2Seq":
        with pytest.raises(ValueError, match="no attention"):
            model.generate(src, max_len=4, trace=True)
        return
    for beam in (1, 2):
        ids, traces = model.generate(src, max_len=4, beam_size=beam, trace=True)
        assert ids == model.generate(src, max_len=4, beam_size=beam)
        want = {"alpha", "coverage", "p_gen"} if name == "PointerGenerator" else {"alpha"}
        for row, t in zip(ids, traces):
            assert set(t) == want
            assert all(isinstance(a, np.ndarray) for a in t.values())
            assert t["alpha"].shape[0] in (len(row), len(row) + 1)
            assert t["alpha"].shape[1] == src.shape[1]
