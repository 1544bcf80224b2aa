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
