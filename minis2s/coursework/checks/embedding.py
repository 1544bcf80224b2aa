"""Part ``embedding``: functional/embedding.py (embedding_forward, embedding_backward)."""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, close, dot, gradcheck, learns, rng, student

#: Repeated ids (their gradients add up) and PAD (0) on padded positions.
IDS = np.array([[5, 3, 5, 4], [3, 3, 0, 0], [4, 0, 0, 0]])


def _value_and_grad():
    emb = student("functional.embedding")
    r = rng(5)
    W, dout = r.standard_normal((6, 3)), r.standard_normal((3, 4, 3))
    out, cache = emb.embedding_forward(IDS, W)
    close("embedding_forward out", out, oracle.embedding(IDS, W))
    dW = emb.embedding_backward(dout, cache)
    return gradcheck("embedding_backward", lambda: dot(emb.embedding_forward(IDS, W)[0], dout),
                     {"W": W}, {"W": dW})


def _learns():
    emb = student("functional.embedding")
    target = oracle.embedding(IDS, rng(6).standard_normal((6, 3)))
    p = {"W": np.zeros((6, 3))}
    opt, losses = oracle.Adam(p, 0.1), []
    for _ in range(41):
        out, cache = emb.embedding_forward(IDS, p["W"])
        diff = np.asarray(out) - target
        losses.append(0.5 * float((diff ** 2).sum()))
        opt.step({"W": emb.embedding_backward(diff, cache)})
    return learns("fitting rows with embedding_forward/backward", losses, 0.2)


CHECKS = [
    Check("embedding_forward value and embedding_backward gradient (repeated ids, PAD)",
          _value_and_grad, 2),
    Check("embedding learns", _learns),
]
