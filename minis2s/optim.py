"""Optimizers, learning-rate schedules, early stopping and gradient clipping.

Each optimizer updates the ``params`` arrays in place. The formulas, in the code's symbols
(docs/derivations/optim.md):

- SGD with momentum:  v ← μ v + g;  θ ← θ − η v
- Adagrad:            G ← G + g²;  θ ← θ − η g / (√G + ε)
- Adam:               m ← β₁ m + (1−β₁) g;  v ← β₂ v + (1−β₂) g²;
                      θ ← θ − η (m̂ / (√v̂ + ε) + λ θ),  m̂ = m / (1−β₁ᵗ),  v̂ = v / (1−β₂ᵗ)
  with the decoupled weight decay λ (AdamW, Loshchilov & Hutter 2019; λ = 0 is plain Adam).
  The decay does not pass through m and v. Biases and embedding tables are not decayed unless
  asked (:func:`is_bias`, :func:`is_embedding`).

Optimizers keep references to the model's ``params`` and ``grads`` dicts and read
``grads[name]`` at every ``step()``, so the same dicts must stay in use (the models guarantee it).

A schedule sets ``optimizer.lr`` (η): :class:`WarmupSchedule` after every optimizer step
(``sched.step()``: linear warmup, then constant, linear, cosine or inverse-square-root decay),
:class:`ReduceLROnPlateau` after every validation (``plateau.step(metric)``).
:class:`EarlyStopping` says when a validation metric has stopped improving. All three have
``state_dict()`` / ``load_state_dict()`` (JSON-safe) for an exact resume, and
:func:`load_schedule` rebuilds one from its state.
"""

from __future__ import annotations

import math
import numbers
import threading

from . import backend
from ._checks import non_negative_float, non_negative_int, one_of, positive_int
from .fast import memory, threads

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "clip_grad_norm", "grad_norm",
           "is_bias", "is_embedding", "WarmupSchedule", "ReduceLROnPlateau", "EarlyStopping",
           "load_schedule", "schedule_rate", "improved", "DECAYS", "METRIC_MODES",
           "TeacherForcing", "teacher_forcing_ratio", "TF_SCHEDULES"]


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
        memory.keep_freed_memory()  # training is about to start: see minis2s/fast/memory.py

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


def is_bias(name):
    """True for a bias by its parameter name: the last part is ``b`` or starts with ``bias``
    or ``b_`` (``out.b``, ``encoder.bias_ih_l0``, ``attn.b_attn``, ``ptr.b_ptr``)."""
    last = name.rsplit(".", 1)[-1]
    return last == "b" or last.startswith(("bias", "b_"))


def is_embedding(name):
    """True for an embedding table by its parameter name: ``W`` of a layer whose name ends in
    ``embed`` (``src_embed.W``, ``tgt_embed.W``, ``embed.W``)."""
    layer, _, last = name.rpartition(".")
    return last == "W" and layer.rsplit(".", 1)[-1].endswith("embed")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, and decoupled weight decay (AdamW).

    Args:
        params, grads: the model's dicts (``model.params``, ``model.grads``).
        lr: η. betas: (β₁, β₂), each in [0, 1). eps: ε.
        weight_decay: λ >= 0, decoupled as in AdamW (Loshchilov & Hutter, 2019):
            θ ← θ − η (m̂ / (√v̂ + ε) + λ θ). The decay is not added to the gradient, so it
            does not pass through m and v, and it scales with η (a schedule scales both).
            0 (the default) is plain Adam, bit for bit.
        decay_biases: decay the biases too (:func:`is_bias`; default no).
        decay_embeddings: decay the embedding tables too (:func:`is_embedding`; default no:
            a rare token's row would shrink towards 0 between its few gradients).

    ``decayed`` is the frozenset of the parameter names that weight decay applies to.

    The update runs in place: no temporaries of the parameter's size are made per step, and no
    value is read back from the device. On NumPy it runs over blocks of ``block_size`` elements
    with one small scratch array, so that a block's five arrays (θ, g, m, v, scratch) stay in
    the cache through the update's twelve passes instead of streaming each whole parameter from
    memory twelve times, and the blocks of all parameters are spread over the cores
    (:func:`minis2s.fast.threads.run`: NumPy's ufuncs release the GIL). The arithmetic is the
    same, element for element, so the result is bit-identical to the whole-array update on one
    thread (tests check this). CuPy takes each array whole.
    """

    #: elements per block of the NumPy update (5 arrays × 64 Ki float32 = 1.25 MiB, within L2)
    block_size = 1 << 16
    #: the blocks of all parameters are spread over the cores (:mod:`minis2s.fast.threads`)

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decay_biases=False, decay_embeddings=False):
        super().__init__(params, grads, lr)
        b1, b2 = betas
        for nm, b in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0 <= b < 1:
                raise ValueError(f"{nm} must be in [0, 1); got {b}")
        self.beta1, self.beta2 = float(b1), float(b2)
        self.eps = non_negative_float("eps", eps)
        self.weight_decay = non_negative_float("weight_decay", weight_decay)
        for nm, flag in (("decay_biases", decay_biases), ("decay_embeddings", decay_embeddings)):
            if not isinstance(flag, bool):
                raise TypeError(f"{nm} must be True or False; got {flag!r}")
        self.decay_biases, self.decay_embeddings = decay_biases, decay_embeddings
        self.decayed = frozenset(
            n for n in params
            if (decay_biases or not is_bias(n)) and (decay_embeddings or not is_embedding(n)))

    def step(self):
        self.t += 1
        # fold both bias corrections into one step size: η √(1−β₂ᵗ) / (1−β₁ᵗ)
        self._step_size = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        self._eps_hat = self.eps * math.sqrt(1 - self.beta2**self.t)
        self._shrink = 1 - self.lr * self.weight_decay  # θ ← (1 − ηλ) θ before the Adam step
        if self.weight_decay and self._shrink <= 0:
            raise ValueError(f"lr * weight_decay must be < 1 (else the decay flips the "
                             f"parameters' sign); got lr={self.lr}, "
                             f"weight_decay={self.weight_decay}")
        jobs = []
        for name, p in self.params.items():
            jobs.extend(self._blocks(name, p, self.grads[name]))
        threads.run(self._update_block, jobs)  # the blocks are independent

    def update(self, name, p, g):
        """The update of one parameter (``step`` does every parameter's blocks at once)."""
        for job in self._blocks(name, p, g):
            self._update_block(job)

    def _blocks(self, name, p, g):
        """The jobs of one parameter: (decayed?, θ, g, m, v) over blocks of ``block_size``
        elements (views of the same memory), or the whole arrays on CuPy."""
        decay = bool(self.weight_decay) and name in self.decayed
        m, v = self._slot("m", name), self._slot("v", name)
        arrays = (p, g, m, v)
        if backend.name == "cupy" or not all(a.flags.c_contiguous for a in arrays):
            return [(decay, *arrays)]
        p, g, m, v = (a.reshape(-1) for a in arrays)
        n, k = p.size, self.block_size
        return [(decay, p[i:i + k], g[i:i + k], m[i:i + k], v[i:i + k]) for i in range(0, n, k)]

    def _update_block(self, job):
        # The textbook lines, in place with one scratch array (no temporaries):
        #   θ ← θ − η λ θ = (1 − ηλ) θ  (decoupled decay, on the θ of before the step)
        #   m ← β₁ m + (1−β₁) g  =  m + (1−β₁)(g − m)
        #   v ← β₂ v + (1−β₂) g² =  v + (1−β₂)(g² − v)
        #   θ ← θ − step · m / (√v + ε̂)
        decay, p, g, m, v = job
        xp = backend.xp
        if decay:
            p *= self._shrink
        tmp = self._scratch(p)
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

    def _scratch(self, like):
        """A scratch array shaped like ``like``: a view of one buffer per thread, reused from
        step to step (grown when a larger block comes)."""
        key = (threading.get_ident(), backend.name, like.dtype)
        buffers = self.__dict__.setdefault("_tmp", {})
        buf = buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = buffers[key] = backend.xp.empty(like.size, dtype=like.dtype)
        return buf[:like.size].reshape(like.shape)


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


# --- argument checks of the schedules (built on minis2s._checks) -----------------------------
def _optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a minis2s.optim optimizer (SGD, Adagrad, Adam); got "
                        f"{type(optimizer).__name__}")
    return optimizer


#: the validation metrics that fit records (as ``val_<metric>``) and whether lower or higher
#: is better: the teacher-forced loss, exact match, token accuracy and corpus BLEU.
METRIC_MODES = {"loss": "min", "exact": "max", "token_acc": "max", "bleu": "max"}


def _mode(metric, mode):
    if metric is not None:
        one_of("metric", metric, tuple(METRIC_MODES))
    if mode is None:
        return METRIC_MODES[metric] if metric is not None else "min"
    return one_of("mode", mode, ("min", "max"))


def improved(value, best, mode, threshold=0.0, threshold_mode="abs"):
    """Whether ``value`` beats ``best`` (None: nothing yet, so yes) by more than ``threshold``:
    ``abs``: value < best − threshold (mode min) or value > best + threshold (max); ``rel``:
    value < best·(1 − threshold) or value > best·(1 + threshold). A tie is no improvement, and
    NaN never is one."""
    if best is None:
        return not math.isnan(value)
    if threshold_mode == "rel":
        bound = best * (1 - threshold) if mode == "min" else best * (1 + threshold)
    else:
        bound = best - threshold if mode == "min" else best + threshold
    return value < bound if mode == "min" else value > bound


# --- learning-rate schedules -----------------------------------------------------------------
#: the decays of :class:`WarmupSchedule` after its warmup
DECAYS = ("constant", "linear", "cosine", "inverse-sqrt")


def schedule_rate(t, base_lr, decay="constant", warmup_steps=0, total_steps=None, min_lr=0.0):
    """The rate η(t) of optimizer step ``t`` (1, 2, ...), with W = ``warmup_steps``,
    T = ``total_steps``, η₀ = ``base_lr`` and η_min = ``min_lr``:

    - warmup, t <= W:   η(t) = η₀ t / W
    - constant:         η(t) = η₀
    - linear:           η(t) = η_min + (η₀ − η_min) (T − t) / (T − W)           (η_min for t >= T)
    - cosine:           η(t) = η_min + ½ (η₀ − η_min) (1 + cos(π (t − W) / (T − W)))  (idem)
    - inverse-sqrt:     η(t) = max(η_min, η₀ √(max(W, 1) / t))
    """
    if t <= warmup_steps:
        return base_lr * t / warmup_steps
    if decay == "constant":
        return base_lr
    if decay == "inverse-sqrt":
        return max(min_lr, base_lr * math.sqrt(max(warmup_steps, 1) / t))
    if total_steps is None:
        raise ValueError(f"decay {decay!r} needs total_steps (fit sets it to epochs x batches "
                         "per epoch when it is None)")
    if t >= total_steps:
        return min_lr
    frac = (t - warmup_steps) / (total_steps - warmup_steps)  # 0 → 1 over the decay
    if decay == "linear":
        return min_lr + (base_lr - min_lr) * (1 - frac)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * frac))


class WarmupSchedule:
    """Linear warmup over ``warmup_steps``, then a constant, linear, cosine or
    inverse-square-root decay of ``optimizer.lr`` (formulas: :func:`schedule_rate`).

    Call ``step()`` after every ``optimizer.step()``. The schedule sets ``optimizer.lr`` at
    once to the rate of the first step, η(1), and each ``step()`` sets the rate of the next
    one, η(t + 1), where ``t`` counts the steps taken (as in PyTorch's schedulers)::

        sched = WarmupSchedule(opt, "cosine", warmup_steps=100, total_steps=5000)
        for batch in batches:
            train_step(model, opt, batch.src, batch.tgt)   # uses opt.lr
            sched.step()

    Args:
        optimizer: a minis2s.optim optimizer; its ``lr`` at construction is η₀ (unless
            ``base_lr`` is given).
        decay: one of :data:`DECAYS`.
        warmup_steps: W >= 0 (0: no warmup).
        total_steps: T > W, the step at which linear and cosine reach ``min_lr`` (they stay
            there after). None: set later (``minis2s.train.fit`` sets it to epochs × batches,
            and sets it again when a resumed run asks for another number of epochs);
            constant and inverse-sqrt do not use it.
        min_lr: η_min, 0 <= η_min <= η₀ (constant ignores it).
        base_lr: η₀ (default: ``optimizer.lr``).
    """

    per = "step"  # minis2s.train.fit calls step() after every optimizer step

    def __init__(self, optimizer, decay="constant", warmup_steps=0, total_steps=None,
                 min_lr=0.0, base_lr=None):
        self.optimizer = _optimizer(optimizer)
        self.decay = one_of("decay", decay, DECAYS)
        self.warmup_steps = non_negative_int("warmup_steps", warmup_steps)
        self.base_lr = non_negative_float(
            "base_lr", optimizer.lr if base_lr is None else base_lr)
        self.min_lr = non_negative_float("min_lr", min_lr)
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr must be <= the base rate {self.base_lr}; got {min_lr}")
        self.total_steps, self.total_steps_auto = None, False
        if total_steps is not None:
            self.set_total_steps(total_steps)
        self.t = 0
        # the rate of step 1 (until T is known, linear and cosine without warmup keep η₀)
        needs_T = self.decay in ("linear", "cosine") and self.warmup_steps == 0
        self.optimizer.lr = self.base_lr if needs_T and self.total_steps is None else self.rate(1)

    def set_total_steps(self, total_steps, auto=False):
        """Set T. ``auto``: T was not given but derived (``fit`` does so when it was None, and
        ``total_steps_auto`` lets it derive T again for a resumed run's new length)."""
        total_steps = positive_int("total_steps", total_steps)
        if total_steps <= self.warmup_steps and self.decay in ("linear", "cosine"):
            raise ValueError(f"total_steps must be > warmup_steps={self.warmup_steps} for "
                             f"{self.decay!r} decay; got {total_steps}")
        self.total_steps, self.total_steps_auto = total_steps, bool(auto)
        if hasattr(self, "t"):  # the next step's rate under the new T
            self.optimizer.lr = self.rate(self.t + 1)

    def rate(self, t):
        """η(t), the rate of optimizer step t (1, 2, ...)."""
        return schedule_rate(t, self.base_lr, self.decay, self.warmup_steps, self.total_steps,
                             self.min_lr)

    def step(self):
        """After an optimizer step: count it and set ``optimizer.lr`` to the next step's rate."""
        lr = self.rate(self.t + 2)  # first, so that an error leaves the count as it was
        self.t += 1
        self.optimizer.lr = lr
        return lr

    def state_dict(self):
        """A JSON-safe dict: the class, its arguments and the step count."""
        return {"class": type(self).__name__, "decay": self.decay,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "total_steps_auto": self.total_steps_auto, "min_lr": self.min_lr,
                "base_lr": self.base_lr, "t": self.t}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s arguments and step count, and set the optimizer's rate
        to the next step's."""
        _same_class(self, state)
        self.__init__(self.optimizer, state["decay"], state["warmup_steps"],
                      state["total_steps"], state["min_lr"], state["base_lr"])
        self.total_steps_auto = bool(state.get("total_steps_auto", False))
        self.t = non_negative_int("t", state["t"])
        self.optimizer.lr = self.rate(self.t + 1)

    def __repr__(self):
        return (f"WarmupSchedule(decay={self.decay!r}, warmup_steps={self.warmup_steps}, "
                f"total_steps={self.total_steps}, min_lr={self.min_lr}, "
                f"base_lr={self.base_lr}, t={self.t})")


class ReduceLROnPlateau:
    """Multiply ``optimizer.lr`` by ``factor`` when a validation metric has not improved for
    more than ``patience`` validations (the rule of PyTorch's ``ReduceLROnPlateau``).

    Call ``step(metric)`` after every validation. A value improves on the best so far when it
    is better by more than ``threshold`` (:func:`improved`: relative, ``best·(1 ∓ threshold)``,
    or absolute, ``best ∓ threshold``). Each validation without improvement counts one bad
    epoch; when the count exceeds ``patience``, η ← max(η · factor, min_lr), the count restarts
    and the next ``cooldown`` validations are not counted.

    Args:
        optimizer: a minis2s.optim optimizer.
        metric: which of fit's validation metrics to follow (:data:`METRIC_MODES`; fit feeds
            ``val_<metric>``), or None when you call ``step`` yourself.
        mode: "min" or "max" (default: the metric's, "min" when metric is None).
        factor: in (0, 1). patience, cooldown: ints >= 0. threshold >= 0.
        threshold_mode: "rel" (default) or "abs". min_lr: the floor, >= 0.
    """

    per = "validation"  # minis2s.train.fit calls step(metric) after every validation

    def __init__(self, optimizer, metric="loss", mode=None, factor=0.1, patience=10,
                 threshold=1e-4, threshold_mode="rel", min_lr=0.0, cooldown=0):
        self.optimizer = _optimizer(optimizer)
        self.metric = metric
        self.mode = _mode(metric, mode)
        self.factor = non_negative_float("factor", factor)
        if not 0 < self.factor < 1:
            raise ValueError(f"factor must be in (0, 1); got {factor}")
        self.patience = non_negative_int("patience", patience)
        self.threshold = non_negative_float("threshold", threshold)
        self.threshold_mode = one_of("threshold_mode", threshold_mode, ("rel", "abs"))
        self.min_lr = non_negative_float("min_lr", min_lr)
        self.cooldown = non_negative_int("cooldown", cooldown)
        self.best = None
        self.num_bad = 0
        self.cooldown_left = 0
        self.n_reductions = 0

    def step(self, metric):
        """After a validation with value ``metric``: update the count and maybe reduce the
        rate. Returns ``optimizer.lr``."""
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            raise TypeError(f"metric must be a number; got {metric!r}")
        metric = float(metric)
        if improved(metric, self.best, self.mode, self.threshold, self.threshold_mode):
            self.best, self.num_bad = metric, 0
        else:
            self.num_bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.num_bad = 0
        if self.num_bad > self.patience:
            new = max(self.optimizer.lr * self.factor, self.min_lr)
            if new < self.optimizer.lr:
                self.optimizer.lr = new
                self.n_reductions += 1
            self.cooldown_left, self.num_bad = self.cooldown, 0
        return self.optimizer.lr

    def state_dict(self):
        """A JSON-safe dict: the class, its arguments, the counters and the current rate."""
        return {"class": type(self).__name__, "metric": self.metric, "mode": self.mode,
                "factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "threshold_mode": self.threshold_mode, "min_lr": self.min_lr,
                "cooldown": self.cooldown, "best": self.best, "num_bad": self.num_bad,
                "cooldown_left": self.cooldown_left, "n_reductions": self.n_reductions,
                "lr": self.optimizer.lr}

    def load_state_dict(self, state):
        _same_class(self, state)
        self.__init__(self.optimizer, state["metric"], state["mode"], state["factor"],
                      state["patience"], state["threshold"], state["threshold_mode"],
                      state["min_lr"], state["cooldown"])
        self.best = None if state["best"] is None else float(state["best"])
        self.num_bad = non_negative_int("num_bad", state["num_bad"])
        self.cooldown_left = non_negative_int("cooldown_left", state["cooldown_left"])
        self.n_reductions = non_negative_int("n_reductions", state["n_reductions"])
        self.optimizer.lr = non_negative_float("lr", state["lr"])

    def __repr__(self):
        return (f"ReduceLROnPlateau(metric={self.metric!r}, mode={self.mode!r}, "
                f"factor={self.factor}, patience={self.patience}, best={self.best}, "
                f"num_bad={self.num_bad}, lr={self.optimizer.lr})")


class EarlyStopping:
    """Stop training when a validation metric has not improved for more than ``patience``
    validations in a row.

    ``step(value)`` after each validation returns True when training should stop. A value
    improves on the best when it is better by more than ``min_delta`` (a tie is no
    improvement).

    Args:
        patience: int >= 0, the validations without improvement that are tolerated.
        metric: which of fit's validation metrics to follow: "loss" (lower is better),
            "exact", "token_acc" or "bleu" (higher is better); see :data:`METRIC_MODES`.
        mode: "min" or "max" (default: the metric's).
        min_delta: the smallest change that counts as an improvement, >= 0.

    Attributes: ``best``, ``best_epoch`` (the count of ``step`` calls at the best, from 1),
    ``num_bad``, ``stopped``, ``epochs_seen``.
    """

    def __init__(self, patience, metric="loss", mode=None, min_delta=0.0):
        self.patience = non_negative_int("patience", patience)
        self.metric = one_of("metric", metric, tuple(METRIC_MODES))
        self.mode = _mode(metric, mode)
        self.min_delta = non_negative_float("min_delta", min_delta)
        self.best, self.best_epoch, self.num_bad = None, 0, 0
        self.epochs_seen, self.stopped = 0, False

    def step(self, value):
        """After a validation: record ``value``; True when training should stop."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"value must be a number; got {value!r}")
        value = float(value)
        self.epochs_seen += 1
        if improved(value, self.best, self.mode, self.min_delta, "abs"):
            self.best, self.best_epoch, self.num_bad = value, self.epochs_seen, 0
        else:
            self.num_bad += 1
        self.stopped = self.num_bad > self.patience
        return self.stopped

    def state_dict(self):
        return {"class": type(self).__name__, "patience": self.patience, "metric": self.metric,
                "mode": self.mode, "min_delta": self.min_delta, "best": self.best,
                "best_epoch": self.best_epoch, "num_bad": self.num_bad,
                "epochs_seen": self.epochs_seen, "stopped": self.stopped}

    def load_state_dict(self, state):
        _same_class(self, state)
        self.__init__(state["patience"], state["metric"], state["mode"], state["min_delta"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = non_negative_int("best_epoch", state["best_epoch"])
        self.num_bad = non_negative_int("num_bad", state["num_bad"])
        self.epochs_seen = non_negative_int("epochs_seen", state["epochs_seen"])
        self.stopped = bool(state["stopped"])

    @classmethod
    def from_state_dict(cls, state):
        es = cls(state["patience"], state["metric"], state["mode"], state["min_delta"])
        es.load_state_dict(state)
        return es

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, metric={self.metric!r}, "
                f"best={self.best}, num_bad={self.num_bad}, stopped={self.stopped})")


def _same_class(obj, state):
    if not isinstance(state, dict) or state.get("class") != type(obj).__name__:
        got = state.get("class") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state is not a {type(obj).__name__}'s state_dict(); got {got!r}")


SCHEDULES = {"WarmupSchedule": WarmupSchedule, "ReduceLROnPlateau": ReduceLROnPlateau}


def load_schedule(optimizer, state):
    """Rebuild the schedule of ``state`` (a ``state_dict()``) over ``optimizer``: the same
    class, arguments and counters, and the optimizer's rate set as the schedule had it."""
    if not isinstance(state, dict) or state.get("class") not in SCHEDULES:
        got = state.get("class") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state must be the state_dict() of one of {tuple(SCHEDULES)}; "
                         f"got {got!r}")
    if state["class"] == "WarmupSchedule":
        sched = WarmupSchedule(optimizer, state["decay"], state["warmup_steps"],
                               base_lr=state["base_lr"])
    else:
        sched = ReduceLROnPlateau(optimizer, state["metric"], state["mode"])
    sched.load_state_dict(state)
    return sched


# --- teacher forcing and scheduled sampling (Bengio et al. 2015) -----------------------------
#: the schedules of the teacher-forcing ratio ε_i over the training steps i
TF_SCHEDULES = ("constant", "linear", "exponential", "inverse-sigmoid")


def teacher_forcing_ratio(i, schedule="constant", ratio=1.0, k=None, c=None, min_ratio=0.0):
    """ε_i, the probability that decoder input t >= 1 of training step i (0, 1, ...) is the
    gold token y_{t-1} rather than the model's own previous prediction (Bengio et al. 2015,
    docs/derivations/scheduled_sampling.md):

    - constant:         ε_i = ratio
    - linear:           ε_i = max(ε_min, k − c·i)             (k: the start, default 1)
    - exponential:      ε_i = max(ε_min, k^i),  0 < k < 1
    - inverse-sigmoid:  ε_i = max(ε_min, k / (k + exp(i / k))),  k >= 1

    with ε_min = ``min_ratio``. The arguments are those of :class:`TeacherForcing` (checked
    there).
    """
    if schedule == "constant":
        return ratio
    if schedule == "linear":
        value = k - c * i
    elif schedule == "exponential":
        value = k ** i
    else:  # inverse-sigmoid; exp(i / k) overflows to inf for huge i, and k / inf = 0
        value = k / (k + math.exp(min(i / k, 700.0)))
    return max(min_ratio, value)


def _unit(name, value):
    value = non_negative_float(name, value)
    if value > 1:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value}")
    return value


class TeacherForcing:
    """The teacher-forcing ratio ε_i over the training steps (a schedule of
    :func:`teacher_forcing_ratio`) and the draw of which decoder inputs are gold.

    ``use_gold(tgt_shape)`` returns the boolean (B, T − 1) mask that ``model.forward(src, tgt,
    use_gold=mask)`` takes: True where decoder input t reads the gold token tgt[:, t], False
    where it reads the model's own greedy prediction of the step before (column 0, BOS, is
    always True), each drawn True with probability ε_i. The draw comes from
    ``numpy.random.default_rng([seed, i])`` on the host, so step i's pattern depends only on
    (seed, i): a resumed run draws what an uninterrupted one would. ``use_gold`` returns None
    when ε_i = 1 (every input gold: the model's all-at-once teacher-forced path, unchanged).
    Call ``step()`` after every training step (``minis2s.train.fit`` does both)::

        tf = TeacherForcing("inverse-sigmoid", k=500, seed=0)
        for batch in batches:
            train_step(model, opt, batch.src, batch.tgt, use_gold=tf.use_gold(batch.tgt.shape))
            tf.step()

    Args:
        schedule: one of :data:`TF_SCHEDULES`.
        ratio: ε of the constant schedule, in [0, 1] (default 1: teacher forcing throughout);
            the other schedules take ``k`` (and ``c``) instead.
        k: linear: the start value in [0, 1] (default 1); exponential: the base, in (0, 1);
            inverse-sigmoid: k >= 1 (larger k stays near 1 for longer).
        c: linear only: the decrease per step, > 0.
        min_ratio: ε_min in [0, 1], the floor of every non-constant schedule (default 0).
        seed: an int >= 0, with the step the seed of each mask.
    """

    def __init__(self, schedule="constant", ratio=None, k=None, c=None, min_ratio=0.0, seed=0):
        self.schedule = one_of("schedule", schedule, TF_SCHEDULES)
        constant = schedule == "constant"
        if not constant and ratio is not None:
            raise ValueError(f"ratio is the constant schedule's ε; the {schedule!r} schedule "
                             f"takes k (and c); got ratio={ratio!r}")
        self.ratio = _unit("ratio", 1.0 if ratio is None else ratio) if constant else None
        if constant and k is not None:
            raise ValueError(f"k is for the linear, exponential and inverse-sigmoid schedules; "
                             f"the constant schedule takes ratio; got k={k!r}")
        if schedule != "linear" and c is not None:
            raise ValueError(f"c is the linear schedule's slope; got c={c!r} with schedule "
                             f"{schedule!r}")
        if schedule == "linear":
            k = _unit("k", 1.0 if k is None else k)
            if c is None:
                raise ValueError("the linear schedule ε_i = max(min_ratio, k - c·i) needs c > 0, "
                                 "the decrease per step")
            c = non_negative_float("c", c)
            if c == 0:
                raise ValueError("c must be > 0 (the decrease per step); got 0 (use the constant "
                                 "schedule)")
        elif schedule == "exponential":
            if k is None:
                raise ValueError("the exponential schedule ε_i = k^i needs k in (0, 1)")
            k = non_negative_float("k", k)
            if not 0 < k < 1:
                raise ValueError(f"k must be in (0, 1) for the exponential schedule; got {k}")
        elif schedule == "inverse-sigmoid":
            if k is None:
                raise ValueError("the inverse-sigmoid schedule ε_i = k / (k + exp(i / k)) needs "
                                 "k >= 1")
            k = non_negative_float("k", k)
            if k < 1:
                raise ValueError(f"k must be >= 1 for the inverse-sigmoid schedule; got {k}")
        self.k, self.c = k, c
        self.min_ratio = _unit("min_ratio", min_ratio)
        if constant and min_ratio:
            raise ValueError(f"min_ratio is the floor of a decaying schedule; the constant "
                             f"schedule has none; got min_ratio={min_ratio!r}")
        self.seed = non_negative_int("seed", seed)
        self.t = 0  # training steps taken

    def ratio_at(self, i):
        """ε_i of training step i (0, 1, ...)."""
        return teacher_forcing_ratio(non_negative_int("i", i), self.schedule, self.ratio,
                                     self.k, self.c, self.min_ratio)

    @property
    def current(self):
        """ε of the next training step (step ``t``)."""
        return self.ratio_at(self.t)

    def use_gold(self, tgt_shape, step=None):
        """The (B, T − 1) boolean mask of training step ``step`` (default: the next, ``t``)
        for a target batch of shape ``tgt_shape`` (B, T): a host NumPy array, or None when
        ε = 1 (all gold). Column 0 is True (the first input is BOS)."""
        from . import init as initlib  # host side: the draw is the same on NumPy and CuPy

        i = self.t if step is None else non_negative_int("step", step)
        eps = self.ratio_at(i)
        if eps >= 1.0:
            return None
        B, T = (int(n) for n in tgt_shape)
        gold = initlib.host_rng([self.seed, i]).random((B, T - 1)) < eps
        gold[:, 0] = True
        return gold

    def step(self):
        """After a training step: count it. Returns ε of the next step."""
        self.t += 1
        return self.current

    def state_dict(self):
        """A JSON-safe dict: the class, its arguments and the step count."""
        return {"class": type(self).__name__, "schedule": self.schedule, "ratio": self.ratio,
                "k": self.k, "c": self.c, "min_ratio": self.min_ratio, "seed": self.seed,
                "t": self.t}

    def load_state_dict(self, state):
        _same_class(self, state)
        self.__init__(state["schedule"], state["ratio"], state["k"], state["c"],
                      state["min_ratio"], state["seed"])
        self.t = non_negative_int("t", state["t"])

    @classmethod
    def from_state_dict(cls, state):
        tf = cls()
        tf.load_state_dict(state)
        return tf

    def __repr__(self):
        args = {"constant": f"ratio={self.ratio}", "linear": f"k={self.k}, c={self.c}"}.get(
            self.schedule, f"k={self.k}")
        floor = f", min_ratio={self.min_ratio}" if self.schedule != "constant" else ""
        return (f"TeacherForcing({self.schedule!r}, {args}{floor}, seed={self.seed}, "
                f"t={self.t}, current={self.current:.4g})")
