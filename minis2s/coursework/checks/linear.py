"""Part ``linear``: functional/linear.py (linear_forward, linear_backward)."""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, close, dot, gradcheck, learns, rng, student


def _value():
    lin = student("functional.linear")
    r = rng(1)
    x = r.standard_normal((3, 4, 5))
    x[2, 2:] = 0  # padded positions
    W, b = r.standard_normal((5, 4)), r.standard_normal(4)
    close("linear_forward(x, W, b) y", lin.linear_forward(x, W, b)[0], oracle.linear(x, W, b))
    close("linear_forward(x, W) y", lin.linear_forward(x, W, None)[0], oracle.linear(x, W))
    return "y = x W + b, with and without b"


def _grad():
    lin = student("functional.linear")
    r = rng(2)
    x = r.standard_normal((3, 4, 5))
    x[1, 3:] = 0
    W, b = r.standard_normal((5, 4)), r.standard_normal(4)
    dy = r.standard_normal((3, 4, 4))
    _, cache = lin.linear_forward(x, W, b)
    dx, dW, db = lin.linear_backward(dy, cache)
    return gradcheck("linear_backward", lambda: dot(lin.linear_forward(x, W, b)[0], dy),
                     {"x": x, "W": W, "b": b}, {"x": dx, "W": dW, "b": db})


def _learns():
    lin = student("functional.linear")
    r = rng(3)
    X = r.standard_normal((32, 3))
    Y = X @ r.standard_normal((3, 2)) + r.standard_normal(2)
    p = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    opt, losses = oracle.Adam(p, 0.1), []
    for _ in range(41):
        y, cache = lin.linear_forward(X, p["W"], p["b"])
        diff = np.asarray(y) - Y
        losses.append(0.5 * float((diff ** 2).sum()) / len(X))
        _, dW, db = lin.linear_backward(diff / len(X), cache)
        opt.step({"W": dW, "b": db})
    return learns("least squares with linear_forward/backward", losses, 0.2)


CHECKS = [
    Check("linear_forward value", _value),
    Check("linear_backward gradients", _grad, 2),
    Check("linear learns", _learns),
]
