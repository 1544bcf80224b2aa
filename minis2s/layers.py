"""Layers: small classes that own named ``params`` and ``grads`` and call ``minis2s.functional``.

Every layer keeps ``params`` and ``grads`` as dicts with the same keys and shapes. ``backward``
*adds* into ``grads`` (so a layer used twice, or step by step, sums its gradients); call
``zero_grad()`` before a new backward pass. Models do that for you.

One convention for all three layers (Embedding, Linear, GRU):

- ``forward(...)`` / ``backward(...)`` keep their cache on the layer (``self.cache``): one call
  in flight, e.g. ``out, h_n = gru.forward(x, h0, mask)`` then ``dx, dh0 = gru.backward(dout)``;
- ``step_forward(...) -> (..., cache)`` / ``step_backward(..., cache)`` return and take an
  explicit cache: many calls in flight (a step-by-step decoder, a shared embedding used twice).
"""

from __future__ import annotations

from . import _checks, backend
from . import init as initlib
from ._checks import positive_int
from .fast import gru as fast_gru
from .functional import embedding as F_emb
from .functional import gru as F_gru
from .functional import linear as F_lin

__all__ = ["Module", "Embedding", "Linear", "GRU"]


class Module:
    """Owns ``params`` and ``grads`` (dicts name -> array of the active backend)."""

    def __init__(self, dtype="float32"):
        self.dtype = backend.resolve_dtype(dtype)
        self.params = {}
        self.grads = {}

    def add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = backend.xp.zeros_like(value)
        return value

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def accumulate(self, name, g):
        """grads[name] += g, the rule for a parameter used more than once."""
        self.grads[name] += g


class Embedding(Module):
    """Token embedding ``out = W[ids]`` with ``W`` (V, D): ids (...) -> out (..., D).

    Two ways to call it (the layer convention of minis2s.layers):

    - ``out = forward(ids)``, then ``backward(dout)``: the cache stays on the layer (one call in
      flight);
    - ``out, cache = step_forward(ids)``, then ``step_backward(dout, cache)``: an explicit cache,
      for a layer used several times before its backward (an embedding shared by the encoder and
      the decoder, a step-by-step decoder).

    Either backward *adds* dW into ``grads["W"]``. The ids are not range-checked here (that
    would read a value back from the device); the models check their batches.
    """

    def __init__(self, vocab_size, embed_dim, dtype="float32", seed=0):
        super().__init__(dtype)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.embed_dim = positive_int("embed_dim", embed_dim)
        rng = initlib.as_rng(seed)
        self.add_param("W", initlib.normal(rng, initlib.EMBEDDING_STD, (vocab_size, embed_dim),
                                           self.dtype))
        self.cache = None  # from the last forward, for backward

    @backend.device_inputs
    def forward(self, ids):
        """ids (...) int -> out (..., D); the cache for :meth:`backward` is kept on the layer."""
        out, self.cache = self.step_forward(ids)
        return out

    @backend.device_inputs
    def backward(self, dout):
        """dout (..., D) -> None; adds dW into ``grads["W"]``."""
        if self.cache is None:
            raise RuntimeError("Embedding.backward() called before forward()")
        self.step_backward(dout, self.cache)

    @backend.device_inputs
    def step_forward(self, ids):
        """ids (...) int -> (out (..., D), cache)."""
        ids = _checks.int_array("ids", ids)
        return F_emb._embedding_forward(ids, self.params["W"])

    @backend.device_inputs
    def step_backward(self, dout, cache):
        """Backward of :meth:`step_forward`: dout (..., D) -> None; adds dW into ``grads``."""
        _checks.is_instance("cache", cache, F_emb.EmbeddingCache, "Embedding.step_forward")
        _checks.shape("dout", _checks.features("dout", dout, self.embed_dim, self.dtype,
                                               "ids.shape + (D,)"),
                      cache.ids.shape + (self.embed_dim,), "ids.shape + (D,)")
        if backend.impl() == "fast":  # the same sums, added straight into grads["W"]
            backend.scatter_add(self.grads["W"], cache.ids, dout)
        else:  # the textbook: dW (V, D), then grads["W"] += dW
            self.accumulate("W", F_emb._embedding_backward(dout, cache))


class Linear(Module):
    """Affine map ``y = x W + b`` with ``W`` (D_in, D_out) and ``b`` (D_out,): x (..., D_in) ->
    y (..., D_out).

    ``y = forward(x)`` / ``dx = backward(dy)`` keep the cache on the layer;
    ``y, cache = step_forward(x)`` / ``dx = step_backward(dy, cache)`` take an explicit one (see
    :class:`Embedding`). Either backward adds dW (and db) into ``grads``. Initialisation: W and
    b U(±1/√D_in), as ``torch.nn.Linear`` (see :mod:`minis2s.init`).
    """

    def __init__(self, in_dim, out_dim, bias=True, dtype="float32", seed=0):
        super().__init__(dtype)
        self.in_dim = positive_int("in_dim", in_dim)
        self.out_dim = positive_int("out_dim", out_dim)
        rng = initlib.as_rng(seed)
        # PyTorch's nn.Linear: W and b ~ U(±1/√in_dim) (minis2s.init.SCHEME)
        self.add_param("W", initlib.fan_in_uniform(rng, in_dim, (in_dim, out_dim), self.dtype))
        if bias:
            self.add_param("b", initlib.fan_in_uniform(rng, in_dim, (out_dim,), self.dtype))
        self.cache = None  # from the last forward, for backward

    @backend.device_inputs
    def forward(self, x):
        """x (..., D_in) -> y (..., D_out); the cache for :meth:`backward` stays on the layer."""
        y, self.cache = self.step_forward(x)
        return y

    @backend.device_inputs
    def backward(self, dy):
        """dy (..., D_out) -> dx (..., D_in); adds dW, db into ``grads``."""
        if self.cache is None:
            raise RuntimeError("Linear.backward() called before forward()")
        return self.step_backward(dy, self.cache)

    @backend.device_inputs
    def step_forward(self, x):
        """x (..., D_in) -> (y (..., D_out), cache)."""
        _checks.features("x", x, self.in_dim, self.dtype, "(..., D_in)")
        return F_lin._linear_forward(x, self.params["W"], self.params.get("b"))

    @backend.device_inputs
    def step_backward(self, dy, cache):
        """Backward of :meth:`step_forward`: dy (..., D_out) -> dx (..., D_in); adds dW, db."""
        _checks.is_instance("cache", cache, F_lin.LinearCache, "Linear.step_forward")
        _checks.shape("dy", _checks.features("dy", dy, self.out_dim, self.dtype, "(..., D_out)"),
                      cache.x.shape[:-1] + (self.out_dim,), "(..., D_out)")
        dx, dW, db = F_lin._linear_backward(dy, cache)
        self.accumulate("W", dW)
        if "b" in self.params:
            self.accumulate("b", db)
        return dx


class GRU(Module):
    """A multi-layer, optionally bidirectional GRU with the equations of ``torch.nn.GRU``.

    Batch-first: x (B, T, D) -> out (B, T, H·dirs), h_n (num_layers·dirs, B, H). Parameters use
    PyTorch's names and layouts (``weight_ih_l0`` (3H, D), ``weight_hh_l0`` (3H, H),
    ``bias_ih_l0`` (3H,), ``bias_hh_l0`` (3H,), ``..._reverse``), gate order r, z, n::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)
        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    ``mask`` (B, T), true on real steps with padding only at the right, gives PyTorch's
    packed-sequence behaviour: a padded row's outputs and final state equal the row's run alone,
    and ``out`` is 0 at padded steps. Initialisation: every weight and bias U(±1/√H), as
    ``torch.nn.GRU`` (see :mod:`minis2s.init`).

    Each call computes on the tier that ``backend.impl()`` names at that moment: ``"fast"`` (the
    default) runs :mod:`minis2s.fast.gru`, after the layer has checked the arguments;
    ``"reference"`` runs the textbook :mod:`minis2s.functional.gru`, which checks them itself.
    A backward runs on the tier whose forward made its cache.
    """

    def __init__(self, input_dim, hidden_dim, num_layers=1, bidirectional=False,
                 dtype="float32", seed=0):
        super().__init__(dtype)
        self.input_dim = positive_int("input_dim", input_dim)
        self.hidden_dim = H = positive_int("hidden_dim", hidden_dim)
        self.num_layers = positive_int("num_layers", num_layers)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool; got {bidirectional!r}")
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        rng = initlib.as_rng(seed)
        for layer in range(num_layers):
            d_in = input_dim if layer == 0 else H * self.num_directions
            for suffix in ("", "_reverse")[: self.num_directions]:
                k = f"l{layer}{suffix}"
                # PyTorch's nn.GRU: every weight and bias ~ U(±1/√H) (minis2s.init.SCHEME)
                for name, shape in ((f"weight_ih_{k}", (3 * H, d_in)),
                                    (f"weight_hh_{k}", (3 * H, H)),
                                    (f"bias_ih_{k}", (3 * H,)), (f"bias_hh_{k}", (3 * H,))):
                    self.add_param(name, initlib.fan_in_uniform(rng, H, shape, self.dtype))
        self.cache = None  # from the last forward, for backward

    # --- whole sequences -------------------------------------------------------------------
    @backend.device_inputs
    def forward(self, x, h0=None, mask=None, dropout_masks=None):
        """x (B, T, D), h0 (L·dirs, B, H) or None, mask (B, T) or None -> (out, h_n).

        ``dropout_masks``: None, or num_layers − 1 arrays (B, T, H·dirs), the inverted-dropout
        multipliers keep / (1 − p) of the inputs of layers 1 .. L−1
        (:func:`minis2s.functional.gru.gru_forward`). The cache for :meth:`backward` is kept
        on the layer (``self.cache``).
        """
        args = (self.params, self.num_layers, self.bidirectional)
        if backend.impl() == "fast":  # checked here: the fast tier does not check
            mask, lengths = _checks.gru_sequence(x, h0, mask, *args)
            _checks.gru_dropout_masks(dropout_masks, self.num_layers, x.shape[:2] + (
                self.hidden_dim * self.num_directions,), x.dtype)
            out, h_n, self.cache = fast_gru.gru_forward(x, h0, mask, *args, lengths=lengths,
                                                        dropout_masks=dropout_masks)
        else:  # the textbook loop over the cell (it checks its arguments)
            out, h_n, self.cache = F_gru.gru_forward(x, h0, mask, *args, dropout_masks)
        return out, h_n

    @backend.device_inputs
    def backward(self, dout, dh_n=None):
        """dout (B, T, H·dirs) and dh_n (L·dirs, B, H), either None for zero -> (dx, dh0).

        Adds the parameter gradients into ``grads``.
        """
        cache = self.cache
        if isinstance(cache, fast_gru.GRUCache):  # made by the fast tier's forward
            T, B, _ = cache.directions[0][0].h_prev.shape
            L, H = self.num_layers * self.num_directions, self.hidden_dim
            _checks.gru_sequence_grads(dout, dh_n, (B, T, H * self.num_directions), (L, B, H),
                                       cache.inputs[0].dtype)
            dx, dh0, grads = fast_gru.gru_backward(dout, dh_n, cache)
        else:  # the textbook (it checks the cache and its arguments)
            dx, dh0, grads = F_gru.gru_backward(dout, dh_n, cache)
        for k, g in grads.items():
            self.accumulate(k, g)
        return dx, dh0

    # --- one time step of a unidirectional stack (decoders) ---------------------------------
    @backend.device_inputs
    def step_forward(self, x_t, h, dropout_masks=None):
        """One step through all layers: x_t (B, D), h (L, B, H) -> (out_t (B, H), h' (L, B, H),
        cache). Unidirectional only (a decoder cannot look ahead). ``dropout_masks``: None, or
        L − 1 arrays (B, H), the dropout multipliers of the inputs of layers 1 .. L−1."""
        if self.bidirectional:
            raise ValueError("step_forward needs a unidirectional GRU (bidirectional=False)")
        if backend.impl() == "fast":  # checked here: the fast tier does not check
            _checks.gru_stack_step(x_t, h, self.params, self.num_layers)
            _checks.gru_dropout_masks(dropout_masks, self.num_layers, h.shape[1:], x_t.dtype)
            return fast_gru.gru_stack_step_forward(x_t, h, self.params, self.num_layers,
                                                   dropout_masks)
        return F_gru.gru_stack_step_forward(x_t, h, self.params, self.num_layers,
                                            dropout_masks)

    @backend.device_inputs
    def step_backward(self, dout_t, dh_new, cache):
        """Backward of :meth:`step_forward`: dout_t (B, H) or None, dh_new (L, B, H) or None ->
        (dx_t (B, D), dh (L, B, H)); adds the parameter gradients into ``grads``."""
        if isinstance(cache, fast_gru.GRUStackStepCache):  # made by the fast tier's step
            h_prev = cache.cells[0].h_prev
            _checks.gru_stack_step_grads(dout_t, dh_new, len(cache.cells), *h_prev.shape,
                                         h_prev.dtype)
            dx, dh, grads = fast_gru.gru_stack_step_backward(dout_t, dh_new, cache)
        else:  # the textbook (it checks the cache and its arguments)
            dx, dh, grads = F_gru.gru_stack_step_backward(dout_t, dh_new, cache)
        for k, g in grads.items():
            self.accumulate(k, g)
        return dx, dh

    def load_torch_weights(self, state):
        """Copy weights from a ``torch.nn.GRU`` state dict (NumPy arrays or tensors under
        PyTorch's names: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
        ``..._reverse``)."""
        missing = [k for k in self.params if k not in state]
        if missing:
            raise ValueError(f"state is missing keys {missing}; it has {sorted(state)}")
        for k, p in self.params.items():
            v = state[k]
            v = v.detach().cpu().numpy() if hasattr(v, "detach") else v
            v = backend.asarray(v, dtype=p.dtype)
            if v.shape != p.shape:
                raise ValueError(f"state[{k!r}] has shape {tuple(v.shape)}; expected {p.shape}")
            p[...] = v
