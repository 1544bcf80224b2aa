"""The GRU of ``torch.nn.GRU``, the textbook form: one cell step, whole (padded, multi-layer,
bidirectional) sequences as a loop over the cell, and one step through a stack for decoders,
each with its hand-written backward.

The equations (PyTorch's layout: ``W_ih`` (3H, D) and ``W_hh`` (3H, H) hold the gates' rows in
the order r, z, n; ``b_ih``, ``b_hh`` (3H,))::

    r  = σ(W_ir x + b_ir + W_hr h_prev + b_hr)          reset gate
    z  = σ(W_iz x + b_iz + W_hz h_prev + b_hz)          update gate
    hn = W_hn h_prev + b_hn
    n  = tanh(W_in x + b_in + r ⊙ hn)                    candidate
    h  = (1 − z) ⊙ n + z ⊙ h_prev                        new state

A sequence loops over the cell, as CS231n's ``rnn_forward`` loops over ``rnn_step_forward``.
With the mask m_t (1 on real steps, 0 on padding at the right)::

    h_t = m_t ⊙ cell(x_t, h_{t−1}) + (1 − m_t) ⊙ h_{t−1}        out_t = m_t ⊙ h_t

which is PyTorch's packed-sequence behaviour: a padded row gives what it gives alone, ``out``
is 0 on padded steps, and the reverse direction starts from h0 at the row's last real step.

This is the reference tier. :mod:`minis2s.fast.gru` computes the same (sorted batches,
in-place buffers, fused kernels), and tests/test_tiers_gru.py proves it equal.
The public functions check their arguments (:mod:`minis2s._checks`) and call the unchecked
private forms (``_gru_cell_forward``, ...), which is what the functions inside call too.

Derivation: docs/derivations/gru.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend
from .activations import sigmoid

__all__ = [
    "gru_cell_forward",
    "gru_cell_backward",
    "gru_forward",
    "gru_backward",
    "gru_stack_step_forward",
    "gru_stack_step_backward",
    "param_names",
    "GRUCellCache",
    "GRUCache",
    "GRUStackStepCache",
]


def param_names(layer, reverse=False):
    """PyTorch's names of one layer/direction's (W_ih, W_hh, b_ih, b_hh): ``weight_ih_l0``, ...
    (``..._reverse`` for the reverse direction)."""
    k = f"l{layer}{'_reverse' if reverse else ''}"
    return (f"weight_ih_{k}", f"weight_hh_{k}", f"bias_ih_{k}", f"bias_hh_{k}")


# --------------------------------------------------------------------------------------------
# One cell step
# --------------------------------------------------------------------------------------------
class GRUCellCache(NamedTuple):
    x: object  # (B, D) input
    h_prev: object  # (B, H) previous state
    W_ih: object  # (3H, D)
    W_hh: object  # (3H, H)
    r: object  # (B, H) reset gate
    z: object  # (B, H) update gate
    n: object  # (B, H) candidate
    hn: object  # (B, H) W_hn h_prev + b_hn


@backend.device_inputs
def gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One GRU step of one layer::

        r = σ(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = σ(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + r ⊙ hn),   hn = W_hn h_prev + b_hn
        h = (1 − z) ⊙ n + z ⊙ h_prev

    Args:
        x: (B, D) input.
        h_prev: (B, H) previous state.
        W_ih: (3H, D), W_hh: (3H, H), b_ih: (3H,), b_hh: (3H,), gate rows in the order r, z, n.

    Returns:
        h: (B, H) new state, and a :class:`GRUCellCache`.

    Derivation: docs/derivations/gru.md §1.
    """
    _checks.gru_cell(x, h_prev, W_ih, W_hh, b_ih, b_hh)
    return _gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)


def _gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One GRU step: r, z, n and h as in gru_cell_forward's docstring (arguments unchecked)."""
    xp = backend.xp
    H = h_prev.shape[1]
    ### BEGIN SOLUTION
    gi = x @ W_ih.T + b_ih  # (B, 3H): blocks gi_r, gi_z, gi_n
    gh = h_prev @ W_hh.T + b_hh  # (B, 3H): blocks gh_r, gh_z, gh_n
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:]
    n = xp.tanh(gi[:, 2 * H:] + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, GRUCellCache(x, h_prev, W_ih, W_hh, r, z, n, hn)
    ### END SOLUTION


@backend.device_inputs
def gru_cell_backward(dh, cache: GRUCellCache):
    """Backward of :func:`gru_cell_forward`.

    With a_r, a_z, a_n the pre-activations of r, z, n::

        dn = dh ⊙ (1 − z)            dz = dh ⊙ (h_prev − n)
        da_n = dn ⊙ (1 − n²)         dhn = da_n ⊙ r       dr = da_n ⊙ hn
        da_r = dr ⊙ r ⊙ (1 − r)      da_z = dz ⊙ z ⊙ (1 − z)
        dgi = [da_r, da_z, da_n]     dgh = [da_r, da_z, dhn]        (B, 3H) each
        dx = dgi W_ih                dW_ih = dgiᵀ x       db_ih = Σ_b dgi
        dh_prev = dh ⊙ z + dgh W_hh  dW_hh = dghᵀ h_prev  db_hh = Σ_b dgh

    Args:
        dh: (B, H) upstream gradient of h.
        cache: from :func:`gru_cell_forward`.

    Returns:
        dx (B, D), dh_prev (B, H), dW_ih (3H, D), dW_hh (3H, H), db_ih (3H,), db_hh (3H,).

    Derivation: docs/derivations/gru.md §1.
    """
    _checks.is_instance("cache", cache, GRUCellCache, "gru_cell_forward")
    h_prev = cache.h_prev
    _checks.shape("dh", _checks.float_array("dh", dh, 2, "(B, H)", h_prev.dtype), h_prev.shape,
                  "(B, H)")
    return _gru_cell_backward(dh, cache)


def _gru_cell_backward(dh, cache: GRUCellCache):
    """The backward of one step, as in gru_cell_backward's docstring (arguments unchecked)."""
    xp = backend.xp
    ### BEGIN SOLUTION
    x, h_prev, W_ih, W_hh, r, z, n, hn = cache
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    dr = da_n * hn
    dhn = da_n * r
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    dgi = xp.concatenate([da_r, da_z, da_n], axis=1)
    dgh = xp.concatenate([da_r, da_z, dhn], axis=1)
    dx = dgi @ W_ih
    dh_prev = dh * z + dgh @ W_hh
    dW_ih = dgi.T @ x
    dW_hh = dgh.T @ h_prev
    return dx, dh_prev, dW_ih, dW_hh, dgi.sum(axis=0), dgh.sum(axis=0)
    ### END SOLUTION


# --------------------------------------------------------------------------------------------
# Whole sequences: a masked loop over the cell
# --------------------------------------------------------------------------------------------
class GRUCache(NamedTuple):
    inputs: tuple  # inputs[k]: (B, T, D_k) the input of layer k (layer k > 0: layer k−1's out)
    m: object  # (B, T, 1) the mask as floats: 1 on real steps, 0 on padding
    weights: tuple  # weights[k][d]: (W_ih, W_hh, b_ih, b_hh) of layer k, direction d
    cells: tuple  # cells[k][d][t]: the GRUCellCache of layer k, direction d, step t
    drop: tuple = ()  # drop[k−1]: (B, T, H·dirs) dropout multiplier of layer k's input, or ()


@backend.device_inputs
def gru_forward(x, h0, mask, params, num_layers, bidirectional, dropout_masks=None):
    """A multi-layer, optionally bidirectional GRU over padded batch-first sequences.

    Each layer/direction loops over :func:`gru_cell_forward` in time (the reverse direction
    t = T−1, ..., 0), with the mask m_t::

        h_t = m_t ⊙ cell(x_t, h_prev) + (1 − m_t) ⊙ h_prev        out_t = m_t ⊙ h_t

    with h_prev = h_{t−1} (forward direction) or h_{t+1} (reverse), starting from h0. Layer
    k > 0 takes layer k−1's ``out`` (both directions concatenated) as its input x.

    Packed-sequence semantics: on a padded step the state is carried unchanged, so a row of
    length L ends (forward) with the state after step L−1 and its reverse direction starts from
    h0 at step L−1; ``out`` is exactly 0 at its padded steps, and a padded row gives exactly
    what it gives alone.

    Args:
        x: (B, T, D) input.
        h0: (L·dirs, B, H) initial states in torch's order (l0, l0_reverse, l1, ...), or None
            (zeros).
        mask: (B, T) bool or int, true on real steps, padding only at the right; or None (all
            steps real).
        params: dict with ``weight_ih_l{k}`` (3H, D_k), ``weight_hh_l{k}`` (3H, H),
            ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3H,) and the ``..._reverse`` ones if
            bidirectional (D_0 = D, D_k = H·dirs); other keys are ignored.
        num_layers: L.
        bidirectional: dirs = 2 if True, else 1.
        dropout_masks: None, or num_layers − 1 arrays (B, T, H·dirs): the inverted-dropout
            multipliers d = keep / (1 − p) (0 or 1/(1 − p)) of the inputs of layers 1 .. L−1,
            which then read layer k−1's out ⊙ d (docs/derivations/dropout.md).

    Returns:
        out: (B, T, H·dirs) top layer's states, forward then reverse direction on the last axis.
        h_n: (L·dirs, B, H) final states (for the reverse direction: the state at t = 0).
        cache: a :class:`GRUCache` for :func:`gru_backward`.

    Derivation: docs/derivations/gru.md §2–§5.
    """
    mask, _ = _checks.gru_sequence(x, h0, mask, params, num_layers, bidirectional)
    _checks.gru_dropout_masks(dropout_masks, num_layers, x.shape[:2] + (
        params["weight_hh_l0"].shape[1] * (2 if bidirectional else 1),), x.dtype)
    return _gru_forward(x, h0, mask, params, num_layers, bidirectional, dropout_masks)


def _gru_forward(x, h0, mask, params, num_layers, bidirectional, dropout_masks=None):
    """The masked loop over the cell of gru_forward's docstring (arguments unchecked)."""
    xp = backend.xp
    B, T, _ = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    m = xp.ones((B, T, 1), x.dtype) if mask is None else mask[:, :, None].astype(x.dtype)
    h0 = xp.zeros((num_layers * dirs, B, H), x.dtype) if h0 is None else h0
    inputs, weights, cells, h_n = [], [], [], []
    inp = x
    drop = tuple(dropout_masks) if dropout_masks else ()
    for layer in range(num_layers):
        if layer > 0 and drop:
            inp = inp * drop[layer - 1]  # inverted dropout between the layers
        inputs.append(inp)
        layer_weights, layer_cells, outs = [], [], []
        for d in range(dirs):
            w = tuple(params[k] for k in param_names(layer, d == 1))
            h = h0[layer * dirs + d]
            out = xp.zeros((B, T, H), x.dtype)
            caches = [None] * T
            ### BEGIN SOLUTION
            for t in range(T - 1, -1, -1) if d == 1 else range(T):
                h_new, caches[t] = _gru_cell_forward(inp[:, t], h, *w)
                h = m[:, t] * h_new + (1 - m[:, t]) * h  # carried unchanged on padding
                out[:, t] = m[:, t] * h
            ### END SOLUTION
            h_n.append(h)
            outs.append(out)
            layer_weights.append(w)
            layer_cells.append(tuple(caches))
        weights.append(tuple(layer_weights))
        cells.append(tuple(layer_cells))
        inp = xp.concatenate(outs, axis=2)  # (B, T, H·dirs): forward | reverse
    return inp, xp.stack(h_n), GRUCache(tuple(inputs), m, tuple(weights), tuple(cells), drop)


@backend.device_inputs
def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`.

    Per layer (top first) and direction, the loop runs the steps in the opposite order of the
    forward, carrying dh, the gradient of the state h_t::

        dh += m_t ⊙ dout_t                              (out_t = m_t ⊙ h_t)
        dx_t, dh_prev, dW... = cell_backward(m_t ⊙ dh)   (the cell ran where m_t = 1)
        dh = dh_prev + (1 − m_t) ⊙ dh                   (carried unchanged on padding)

    The weights' gradients add up over the steps, dx of both directions adds up, and layer
    k's dx is layer k−1's dout. The dh left after step 0 (reverse: step T−1) is dh0.

    Args:
        dout: (B, T, H·dirs) gradient of ``out``, or None (zero).
        dh_n: (L·dirs, B, H) gradient of ``h_n``, or None (zero).
        cache: from :func:`gru_forward`.

    Returns:
        dx: (B, T, D) (0 on padded steps); dh0: (L·dirs, B, H); grads: dict with the PyTorch
        names of the params used (``weight_ih_l0``, ...), same shapes.

    Derivation: docs/derivations/gru.md §2–§5.
    """
    _checks.is_instance("cache", cache, GRUCache, "gru_forward")
    B, T, _ = cache.inputs[0].shape
    L, dirs = len(cache.weights), len(cache.weights[0])
    H = cache.weights[0][0][1].shape[1]
    _checks.gru_sequence_grads(dout, dh_n, (B, T, H * dirs), (L * dirs, B, H), cache.m.dtype)
    return _gru_backward(dout, dh_n, cache)


def _gru_backward(dout, dh_n, cache: GRUCache):
    """The backward loop of gru_backward's docstring (arguments unchecked)."""
    xp = backend.xp
    m = cache.m
    B, T, _ = cache.inputs[0].shape
    L, dirs = len(cache.weights), len(cache.weights[0])
    H = cache.weights[0][0][1].shape[1]
    dout = xp.zeros((B, T, H * dirs), m.dtype) if dout is None else dout
    dh_n = xp.zeros((L * dirs, B, H), m.dtype) if dh_n is None else dh_n
    grads, dh0 = {}, [None] * (L * dirs)
    for layer in range(L - 1, -1, -1):
        dinp = xp.zeros_like(cache.inputs[layer])
        for d in range(dirs):
            caches = cache.cells[layer][d]
            dw = [xp.zeros_like(w) for w in cache.weights[layer][d]]
            dh, dout_d = dh_n[layer * dirs + d], dout[:, :, d * H:(d + 1) * H]
            ### BEGIN SOLUTION
            for t in range(T) if d == 1 else range(T - 1, -1, -1):
                dh = dh + m[:, t] * dout_d[:, t]
                dx_t, dh_prev, *dw_t = _gru_cell_backward(m[:, t] * dh, caches[t])
                dinp[:, t] += dx_t
                dh = dh_prev + (1 - m[:, t]) * dh
                for total, g in zip(dw, dw_t):
                    total += g
            ### END SOLUTION
            dh0[layer * dirs + d] = dh
            grads.update(zip(param_names(layer, d == 1), dw))
        if layer > 0 and cache.drop:
            dinp = dinp * cache.drop[layer - 1]  # the dropout's backward: the same multiplier
        dout = dinp  # layer k's input is layer k−1's out (⊙ its dropout multiplier)
    return dout, xp.stack(dh0), grads


# --------------------------------------------------------------------------------------------
# One step through a unidirectional stack (decoders)
# --------------------------------------------------------------------------------------------
class GRUStackStepCache(NamedTuple):
    cells: tuple  # per layer, its GRUCellCache
    keys: tuple  # per layer, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)
    drop: tuple = ()  # drop[k−1]: (B, H) dropout multiplier of layer k's input, or ()


@backend.device_inputs
def gru_stack_step_forward(x_t, h, params, num_layers, dropout_masks=None):
    """One time step through a unidirectional stack of ``num_layers`` GRU cells.

    Layer 0 reads x_t; layer k > 0 reads layer k−1's new state. Each layer is
    :func:`gru_cell_forward`. Used by decoders (training with input feeding, greedy and beam
    search); T calls equal one :func:`gru_forward` over the sequence (without padding).

    Args:
        x_t: (B, D) input of this step.
        h: (L, B, H) states of the layers.
        params: dict with ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
            ``bias_hh_l{k}`` (other keys are ignored).
        num_layers: L.
        dropout_masks: None, or L − 1 arrays (B, H): the inverted-dropout multipliers of the
            inputs of layers 1 .. L−1 (as in :func:`gru_forward`, one time step of them).

    Returns:
        out_t: (B, H) the top layer's new state; h_new: (L, B, H); a
        :class:`GRUStackStepCache`.

    Derivation: docs/derivations/gru.md §7.
    """
    _checks.gru_stack_step(x_t, h, params, num_layers)
    _checks.gru_dropout_masks(dropout_masks, num_layers, h.shape[1:], x_t.dtype)
    return _gru_stack_step_forward(x_t, h, params, num_layers, dropout_masks)


def _gru_stack_step_forward(x_t, h, params, num_layers, dropout_masks=None):
    """One step up the stack of cells, as in gru_stack_step_forward (arguments unchecked)."""
    keys = tuple(param_names(layer) for layer in range(num_layers))
    if dropout_masks:
        return _gru_stack_step_dropout_forward(x_t, h, params, keys, tuple(dropout_masks))
    h_new, cells = [], []
    inp = x_t
    ### BEGIN SOLUTION
    for layer in range(num_layers):
        inp, cell = _gru_cell_forward(inp, h[layer], *(params[k] for k in keys[layer]))
        h_new.append(inp)
        cells.append(cell)
    ### END SOLUTION
    return inp, backend.xp.stack(h_new), GRUStackStepCache(tuple(cells), keys)


@backend.device_inputs
def gru_stack_step_backward(dout_t, dh_new, cache: GRUStackStepCache):
    """Backward of :func:`gru_stack_step_forward`.

    From the top layer down: dh_k = dh_new[k] + (dout_t for the top layer, the dx of layer k+1
    otherwise); :func:`gru_cell_backward` gives layer k's dx, dh_prev and weight gradients.

    Args:
        dout_t: (B, H) gradient of ``out_t``, or None (zero).
        dh_new: (L, B, H) gradient of ``h_new``, or None (zero).
        cache: from :func:`gru_stack_step_forward`.

    Returns:
        dx_t: (B, D); dh: (L, B, H); grads: dict (PyTorch names) of the weight gradients.

    Derivation: docs/derivations/gru.md §7.
    """
    _checks.is_instance("cache", cache, GRUStackStepCache, "gru_stack_step_forward")
    B, H = cache.cells[0].h_prev.shape
    _checks.gru_stack_step_grads(dout_t, dh_new, len(cache.cells), B, H,
                                 cache.cells[0].h_prev.dtype)
    return _gru_stack_step_backward(dout_t, dh_new, cache)


def _gru_stack_step_backward(dout_t, dh_new, cache: GRUStackStepCache):
    """Down the stack, as in gru_stack_step_backward's docstring (arguments unchecked)."""
    xp = backend.xp
    L = len(cache.cells)
    B, H = cache.cells[0].h_prev.shape
    dtype = cache.cells[0].h_prev.dtype
    d_above = xp.zeros((B, H), dtype) if dout_t is None else dout_t
    dh_new = xp.zeros((L, B, H), dtype) if dh_new is None else dh_new
    if cache.drop:
        return _gru_stack_step_dropout_backward(d_above, dh_new, cache)
    dh, grads = [None] * L, {}
    ### BEGIN SOLUTION
    for layer in range(L - 1, -1, -1):
        d_above, dh[layer], *dw = _gru_cell_backward(dh_new[layer] + d_above,
                                                     cache.cells[layer])
        grads.update(zip(cache.keys[layer], dw))
    ### END SOLUTION
    return d_above, xp.stack(dh), grads


def _gru_stack_step_dropout_forward(x_t, h, params, keys, drop):
    """:func:`_gru_stack_step_forward` with inverted dropout between the layers: layer k > 0
    reads h_new[k−1] ⊙ drop[k−1] (docs/derivations/dropout.md)."""
    h_new, cells = [], []
    inp = x_t
    for layer, names in enumerate(keys):
        if layer > 0:
            inp = inp * drop[layer - 1]
        h_layer, cell = _gru_cell_forward(inp, h[layer], *(params[k] for k in names))
        h_new.append(h_layer)
        cells.append(cell)
        inp = h_layer
    return inp, backend.xp.stack(h_new), GRUStackStepCache(tuple(cells), keys, drop)


def _gru_stack_step_dropout_backward(d_above, dh_new, cache: GRUStackStepCache):
    """Backward of :func:`_gru_stack_step_dropout_forward`: the gradient reaching layer k−1's
    state through layer k's input is dx_k ⊙ drop[k−1], the same multiplier."""
    L = len(cache.cells)
    dh, grads = [None] * L, {}
    for layer in range(L - 1, -1, -1):
        d_above, dh[layer], *dw = _gru_cell_backward(dh_new[layer] + d_above,
                                                     cache.cells[layer])
        grads.update(zip(cache.keys[layer], dw))
        if layer > 0:
            d_above = d_above * cache.drop[layer - 1]
    return d_above, backend.xp.stack(dh), grads
