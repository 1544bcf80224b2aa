"""The public gradcheck API: its report names the wrong parameter and element."""

import numpy as np
import pytest

from minis2s import backend
from minis2s.gradcheck import check_model, numerical_gradient, rel_error
from minis2s.testing import tiny_batch, tiny_model


def test_numerical_gradient_of_a_known_function():
    x = backend.asarray(np.array([1.0, -2.0, 0.5]))
    g = numerical_gradient(lambda v: float((v**3).sum()), x)
    np.testing.assert_allclose(g, 3 * np.array([1.0, 4.0, 0.25]), rtol=1e-8)
    np.testing.assert_array_equal(backend.to_numpy(x), [1.0, -2.0, 0.5])  # restored


def test_rel_error():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 2.2)
    with pytest.raises(ValueError, match="shapes"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_needs_df_for_array_outputs():
    x = backend.asarray(np.ones(2))
    with pytest.raises(ValueError, match="df"):
        numerical_gradient(lambda v: v * 2, x)


class Sabotaged:
    """Wraps a model and corrupts one element of one gradient after backward."""

    def __init__(self, model, name, index, delta):
        self.m, self.name, self.index, self.delta = model, name, index, delta
        self.params, self.grads = model.params, model.grads

    def forward(self, src, tgt):
        return self.m.forward(src, tgt)

    def backward(self):
        self.m.backward()
        self.grads[self.name][self.index] += self.delta


def test_report_points_at_the_wrong_parameter_and_element():
    model = tiny_model("Seq2Seq", num_layers=1, bidirectional=False)
    src, tgt = tiny_batch(model)
    bad = Sabotaged(model, "decoder.weight_hh_l0", (4, 2), 0.05)
    report = check_model(bad, src, tgt)
    assert not report.passed
    assert [r.name for r in report.failed] == ["decoder.weight_hh_l0"]
    assert report.worst.worst_index == (4, 2)
    text = str(report)
    assert "FAIL" in text and "decoder.weight_hh_l0[4, 2]" in text


def test_report_table_lists_every_parameter():
    model = tiny_model("Seq2Seq", num_layers=1, bidirectional=True)
    src, tgt = tiny_batch(model)
    report = check_model(model, src, tgt, max_elements=5)
    assert report.passed, str(report)
    assert {r.name for r in report.rows} == set(model.params)
    assert all(r.checked <= 5 for r in report.rows)
    assert "PASSED" in str(report)
    with pytest.raises(ValueError, match="unknown parameter"):
        check_model(model, src, tgt, params=["nope"])


def test_check_function_accepts_scalar_and_multi_output_forwards(rng):
    from minis2s.functional import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    from minis2s.functional.gru import gru_backward, gru_forward
    from minis2s.gradcheck import check_function
    from minis2s.layers import GRU

    y = rng.integers(0, 5, (2, 3))
    m = np.ones((2, 3), bool)
    m[1, 2] = False
    r = check_function(lambda logits: softmax_cross_entropy_forward(logits, y, m),
                       lambda d, c: {"logits": softmax_cross_entropy_backward(c, d)},
                       {"logits": backend.asarray(rng.standard_normal((2, 3, 5)))})
    assert r.passed, str(r)
    gru = GRU(3, 4, dtype="float64", seed=0)
    mask = np.array([[1, 1, 1], [1, 1, 0]], bool)

    def fwd(x):
        return gru_forward(x, None, mask, gru.params, 1, False)  # (out, h_n, cache)

    def bwd(d, cache):
        dx, _, _ = gru_backward(d[0], d[1], cache)
        return {"x": dx}

    r = check_function(fwd, bwd, {"x": backend.asarray(rng.standard_normal((2, 3, 3)))})
    assert r.passed, str(r)
