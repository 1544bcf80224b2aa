"""Part ``loss``: functional/loss.py (softmax_cross_entropy_forward/backward)."""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, close, gradcheck, learns, rng, student


def _batch(seed):
    """Logits (3, 4, 5), targets and a mask with padded positions (PAD targets there)."""
    r = rng(seed)
    o = r.standard_normal((3, 4, 5))
    mask = oracle.lengths_mask([4, 2, 1], 4)
    y = np.where(mask, r.integers(1, 5, size=(3, 4)), 0)
    return o, y, mask


def _value():
    loss = student("functional.loss")
    o, y, mask = _batch(8)
    L, _ = loss.softmax_cross_entropy_forward(o, y, mask)
    close("softmax_cross_entropy_forward loss", np.reshape(np.asarray(L), ()),
          oracle.cross_entropy(o, y, mask))
    o[0, 0] = [1e4, -1e4, 0.0, 3.0, 1e4]  # extreme logits: still finite and exact
    L, _ = loss.softmax_cross_entropy_forward(o, y, mask)
    close("softmax_cross_entropy_forward loss (logits of ±1e4)", np.reshape(np.asarray(L), ()),
          oracle.cross_entropy(o, y, mask))
    return "mean NLL over the real (mask) tokens, stable for logits of ±1e4"


def _grad():
    loss = student("functional.loss")
    o, y, mask = _batch(9)
    _, cache = loss.softmax_cross_entropy_forward(o, y, mask)
    do = loss.softmax_cross_entropy_backward(cache, 0.7)
    return gradcheck("softmax_cross_entropy_backward",
                     lambda: 0.7 * float(loss.softmax_cross_entropy_forward(o, y, mask)[0]),
                     {"logits": o}, {"logits": do})


def _learns():
    loss = student("functional.loss")
    X = rng(10).standard_normal((3, 4, 6))
    _, y, mask = _batch(11)
    p = {"W": np.zeros((6, 5))}
    opt, losses = oracle.Adam(p, 0.1), []
    for _ in range(41):
        L, cache = loss.softmax_cross_entropy_forward(X @ p["W"], y, mask)
        losses.append(float(L))
        do = np.asarray(loss.softmax_cross_entropy_backward(cache))
        opt.step({"W": np.einsum("btd,btv->dv", X, do)})
    return learns("a softmax classifier with softmax_cross_entropy_forward/backward", losses)


CHECKS = [
    Check("softmax_cross_entropy_forward value", _value),
    Check("softmax_cross_entropy_backward gradient", _grad, 2),
    Check("cross-entropy learns", _learns),
]
