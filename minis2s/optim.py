"""Optimizers and gradient clipping. Each optimizer updates the ``params`` arrays in place.

Optimizers keep references to the model's ``params`` and ``grads`` dicts and read
``grads[name]`` at every ``step()``, so the same dicts must stay in use (the models guarantee it).

- SGD with momentum:  v ← μ v + g;  θ ← θ − η v
- Adagrad:            G ← G + g²;  θ ← θ − η g / (√G + ε)
- Adam:               m ← β₁ m + (1−β₁) g;  v ← β₂ v + (1−β₂) g²;
                      θ ← θ − η m̂ / (√v̂ + ε),  m̂ = m / (1−β₁ᵗ),  v̂ = v / (1−β₂ᵗ)
"""

from __future__ import annotations

import math

from . import backend
from ._checks import non_negative_float

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "clip_grad_norm", "grad_norm"]


class Optimizer:
    """Base class: holds ``params`` and ``grads`` and a dict of per-parameter ``state`` arrays."""

    def __init__(self, params, grads, lr):
        if not isinstance(params, dict) or not isinstance(grads, dict):
            raise TypeError("params and grads must be dicts name -> array (model.params, "
                            "model.grads)")
        if set(params) != set(grads):
            raise ValueError(f"params and grads must have the same keys; differing: "
                             f"{sorted(set(params) ^ set(grads))}")
        self.params, self.grads = params, grads
        self.lr = non_negative_float("lr", lr)
        self.t = 0  # number of steps taken
        self.state = {}

    def _slot(self, slot, name):
        key = (slot, name)
        if key not in self.state:
            self.state[key] = backend.xp.zeros_like(self.params[name])
        return self.state[key]

    def step(self):
        self.t += 1
        for name, p in self.params.items():
            self.update(name, p, self.grads[name])

    def update(self, name, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self):
        """Host (NumPy) copies of the optimizer state, for checkpoints."""
        return {
            "t": self.t,
            "lr": self.lr,
            "slots": {f"{s}/{n}": backend.to_numpy(a).copy() for (s, n), a in self.state.items()
                      if s != "tmp"},  # "tmp" is scratch space, not state
        }

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.lr = float(state["lr"])
        self.state = {}
        for key, a in state["slots"].items():
            slot, name = key.split("/", 1)
            if name not in self.params:
                raise ValueError(f"optimizer state names unknown parameter {name!r}")
            self.state[(slot, name)] = backend.asarray(a, dtype=self.params[name].dtype)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (heavy-ball) momentum μ."""

    def __init__(self, params, grads, lr, momentum=0.0):
        super().__init__(params, grads, lr)
        self.momentum = non_negative_float("momentum", momentum)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")

    def update(self, name, p, g):
        if self.momentum:
            v = self._slot("v", name)
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adagrad(Optimizer):
    """Adagrad: per-element step sizes shrinking with the sum of squared gradients."""

    def __init__(self, params, grads, lr=1e-2, eps=1e-8):
        super().__init__(params, grads, lr)
        self.eps = non_negative_float("eps", eps)

    def update(self, name, p, g):
        xp = backend.xp
        G = self._slot("G", name)
        G += g * g
        p -= self.lr * g / (xp.sqrt(G) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction."""

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, grads, lr)
        b1, b2 = betas
        for nm, b in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0 <= b < 1:
                raise ValueError(f"{nm} must be in [0, 1); got {b}")
        self.beta1, self.beta2 = float(b1), float(b2)
        self.eps = non_negative_float("eps", eps)

    def step(self):
        self.t += 1
        # fold both bias corrections into one step size: η √(1−β₂ᵗ) / (1−β₁ᵗ)
        self._step_size = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        self._eps_hat = self.eps * math.sqrt(1 - self.beta2**self.t)
        for name, p in self.params.items():
            self.update(name, p, self.grads[name])

    def update(self, name, p, g):
        # The textbook lines, in place with one scratch array (no temporaries):
        #   m ← β₁ m + (1−β₁) g  =  m + (1−β₁)(g − m)
        #   v ← β₂ v + (1−β₂) g² =  v + (1−β₂)(g² − v)
        #   θ ← θ − step · m / (√v + ε̂)
        xp = backend.xp
        m, v, tmp = self._slot("m", name), self._slot("v", name), self._slot("tmp", name)
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta2
        v += tmp
        xp.sqrt(v, out=tmp)
        tmp += self._eps_hat
        xp.divide(m, tmp, out=tmp)
        tmp *= self._step_size
        p -= tmp


def grad_norm(grads):
    """The global L2 norm sqrt(Σ_k ||g_k||²) over all gradient arrays, as a Python float."""
    xp = backend.xp
    total = sum(xp.vdot(g.ravel(), g.ravel()) for g in grads.values())
    return math.sqrt(float(total))


def clip_grad_norm(grads, max_norm):
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (a Python float; may be inf or nan, in which case nothing is
    scaled and the caller should decide what to do).
    """
    max_norm = non_negative_float("max_norm", max_norm)
    norm = grad_norm(grads)
    if math.isfinite(norm) and norm > max_norm > 0:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm
