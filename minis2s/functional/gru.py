"""The GRU of ``torch.nn.GRU``: one cell step, whole (padded, multi-layer, bidirectional)
sequences, and one step through a stack for decoders, each with its hand-written backward.

The equations (PyTorch's layout: ``W_ih`` (3H, D) and ``W_hh`` (3H, H) hold the gates' rows in
the order r, z, n; ``b_ih``, ``b_hh`` (3H,))::

    r  = σ(W_ir x + b_ir + W_hr h_prev + b_hr)          reset gate
    z  = σ(W_iz x + b_iz + W_hz h_prev + b_hz)          update gate
    hn = W_hn h_prev + b_hn
    n  = tanh(W_in x + b_in + r ⊙ hn)                    candidate
    h  = (1 − z) ⊙ n + z ⊙ h_prev                        new state

σ is computed as σ(a) = 0.5·(1 + tanh(a/2)), which equals 1/(1 + e^{−a}) but cannot overflow.

Speed (the sequence functions): the input projections W_ih x + b_ih of all time steps of a
layer/direction are one matrix product before the time loop; each step then costs one
(B, H)×(H, 3H) product plus elementwise math on preallocated time-major buffers. The backward
stores the per-step gate gradients in (T, B, 3H) buffers and forms dW_ih, dx and dW_hh with one
product each after the loop.

Padding (packed-sequence semantics): on a padded step the state is carried unchanged,
h = h_prev, and the output is 0. The forward records z = 1 on those rows, which makes
h = (1 − z) ⊙ n + z ⊙ h_prev hold there too, so the backward needs no special case: every gate
gradient of a padded row is exactly 0 and dh_prev = dh.

Derivation: docs/derivations/gru.md.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import NamedTuple

from .. import backend

__all__ = [
    "sigmoid",
    "gru_cell_forward",
    "gru_cell_backward",
    "gru_forward",
    "gru_backward",
    "gru_stack_step_forward",
    "gru_stack_step_backward",
    "GRUCellCache",
    "GRUDirectionCache",
    "GRUCache",
    "GRUStackStepCache",
]


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _array(name, a, ndim, dtype=None):
    if not backend.is_array(a):
        raise TypeError(f"{name} must be a float array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array; got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the dtype of x); got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {tuple(a.shape)}")
    return a


def _shape(name, a, shape, what):
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {what} = {tuple(shape)}; got {tuple(a.shape)}")


def _check_weights(names, W_ih, W_hh, b_ih, b_hh, D, dtype):
    """Validate one layer/direction's weights (``names``: how to call them); return H."""
    n_ih, n_hh, nb_ih, nb_hh = names
    W_hh = _array(n_hh, W_hh, 2, dtype)
    H = W_hh.shape[1]
    _shape(n_hh, W_hh, (3 * H, H), "(3H, H)")
    _shape(n_ih, _array(n_ih, W_ih, 2, dtype), (3 * H, D), "(3H, D)")
    _shape(nb_ih, _array(nb_ih, b_ih, 1, dtype), (3 * H,), "(3H,)")
    _shape(nb_hh, _array(nb_hh, b_hh, 1, dtype), (3 * H,), "(3H,)")
    return H


def _layer_keys(layer, reverse):
    k = f"l{layer}{'_reverse' if reverse else ''}"
    return (f"weight_ih_{k}", f"weight_hh_{k}", f"bias_ih_{k}", f"bias_hh_{k}")


def _check_params(params, num_layers, dirs, D, dtype):
    """Validate the params dict of a stack; return H."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays under PyTorch's names; got "
                        f"{type(params).__name__}")
    H = None
    for layer in range(num_layers):
        for d in range(dirs):
            keys = _layer_keys(layer, d == 1)
            missing = [k for k in keys if k not in params]
            if missing:
                raise ValueError(f"params is missing {missing} (num_layers={num_layers}, "
                                 f"bidirectional={dirs == 2}); it has {sorted(params)}")
            if H is None:
                H = _array(f"params[{keys[1]!r}]", params[keys[1]], 2, dtype).shape[1]
            d_in = D if layer == 0 else H * dirs
            h = _check_weights([f"params[{k!r}]" for k in keys], *(params[k] for k in keys),
                               d_in, dtype)
            if h != H:
                raise ValueError(f"params[{keys[1]!r}] has hidden size {h}; layer 0 has {H}")
    return H


def _check_config(num_layers, bidirectional):
    if isinstance(num_layers, bool) or not isinstance(num_layers, numbers.Integral):
        raise TypeError(f"num_layers must be a positive int; got {num_layers!r}")
    if num_layers <= 0:
        raise ValueError(f"num_layers must be a positive int (> 0); got {num_layers}")
    if not isinstance(bidirectional, bool):
        raise TypeError(f"bidirectional must be a bool; got {bidirectional!r}")
    return int(num_layers), 2 if bidirectional else 1


def _check_mask(mask, B, T):
    """Validate a right-padded (B, T) mask; return it as bool and the row lengths on the host."""
    xp = backend.xp
    if not backend.is_array(mask):
        raise TypeError(f"mask must be a bool or int array of shape (B, T); got "
                        f"{type(mask).__name__}")
    if mask.dtype.kind not in "biu":
        raise TypeError(f"mask must be a bool or int array; got dtype {mask.dtype}")
    _shape("mask", mask, (B, T), "(B, T)")
    mask = xp.asarray(mask) != 0
    lengths = mask.sum(axis=1)
    prefix = xp.arange(T)[None, :] < lengths[:, None]
    if not bool((prefix == mask).all()):
        raise ValueError("mask must be true on a prefix of each row (padding only at the "
                         "right); got a row with a false before a true")
    return mask, backend.to_numpy(lengths)


# --------------------------------------------------------------------------------------------
# σ
# --------------------------------------------------------------------------------------------
def sigmoid(a, out=None):
    """σ(a) = 1 / (1 + e^{−a}), computed as 0.5·(1 + tanh(a/2)): no overflow for any a.

    ``out`` may be ``a`` itself (in place). Keeps the dtype of ``a``.
    """
    xp = backend.xp
    out = xp.multiply(a, 0.5, out=out)
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


# --------------------------------------------------------------------------------------------
# One cell step (textbook form)
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

    Derivation: docs/derivations/gru.md.
    """
    x = _array("x", x, 2)
    h_prev = _array("h_prev", h_prev, 2, x.dtype)
    H = _check_weights(("W_ih", "W_hh", "b_ih", "b_hh"), W_ih, W_hh, b_ih, b_hh, x.shape[1],
                       x.dtype)
    _shape("h_prev", h_prev, (x.shape[0], H), "(B, H)")
    xp = backend.xp
    ### BEGIN SOLUTION
    gi = xp.matmul(x, W_ih.T)
    gi += b_ih
    gh = xp.matmul(h_prev, W_hh.T)
    gh += b_hh
    rz = sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    hn = gh[:, 2 * H:]
    n = xp.tanh(gi[:, 2 * H:] + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, GRUCellCache(x, h_prev, W_ih, W_hh, r, z, n, hn)
    ### END SOLUTION


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

    Returns:
        dx (B, D), dh_prev (B, H), dW_ih (3H, D), dW_hh (3H, H), db_ih (3H,), db_hh (3H,).

    Derivation: docs/derivations/gru.md.
    """
    dh = _array("dh", dh, 2, cache.h_prev.dtype)
    _shape("dh", dh, cache.h_prev.shape, "(B, H)")
    xp = backend.xp
    ### BEGIN SOLUTION
    x, h_prev, W_ih, W_hh, r, z, n, hn = cache
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    da_r = da_n * hn * r * (1 - r)
    da_z = dz * z * (1 - z)
    dgi = xp.concatenate([da_r, da_z, da_n], axis=1)
    dgh = xp.concatenate([da_r, da_z, da_n * r], axis=1)
    dx = dgi @ W_ih
    dh_prev = dh * z + dgh @ W_hh
    dW_ih = dgi.T @ x
    dW_hh = dgh.T @ h_prev
    return dx, dh_prev, dW_ih, dW_hh, dgi.sum(axis=0), dgh.sum(axis=0)
    ### END SOLUTION


# --------------------------------------------------------------------------------------------
# Whole sequences (fast path)
# --------------------------------------------------------------------------------------------
class GRUDirectionCache(NamedTuple):
    """One layer/direction of :func:`gru_forward`; every array is time-major, indexed by time t."""

    W_ih: object  # (3H, D_k)
    W_hh: object  # (3H, H)
    r: object  # (T, B, H) reset gate
    z: object  # (T, B, H) update gate; exactly 1 on padded steps (h = h_prev there)
    n: object  # (T, B, H) candidate
    hn: object  # (T, B, H) W_hn h_prev + b_hn
    h_prev: object  # (T, B, H) the state step t started from
    h_prev_minus_n: object  # (T, B, H) h_prev − n (= dh/dz)
    reverse: bool  # True: steps run t = T−1, ..., 0


class GRUCache(NamedTuple):
    inputs: tuple  # per layer k, its time-major input (T, B, D_k) (layer k > 0: layer k−1's out)
    directions: tuple  # per layer, a tuple of GRUDirectionCache (forward[, reverse])
    m: object  # (T, B, 1) float mask, 1 on real steps; None if there is no padding
    keys: tuple  # per layer, per direction, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)


def _direction_forward(gi, h0, W_hh, b_hn, pad, first_pad, reverse):
    """Run one layer/direction over time (the fast path of :func:`gru_cell_forward`).

    Args:
        gi: (T, B, 3H) input projections W_ih x_t + b_ih, with b_hr, b_hz already added.
        h0: (B, H) initial state.
        W_hh: (3H, H); b_hn: (H,).
        pad: (T, B, 1) bool, true on padded steps, or None.
        first_pad: the first t at which some row is padded (T if none).
        reverse: run t = T−1, ..., 0.

    Returns:
        hs: (T + 1, B, H): hs[t] is the state before step t and hs[t + 1] the one after it
        (forward); reversed, hs[t + 1] is the state before step t and hs[t] the one after.
        r, z, n, hn, h_prev − n: (T, B, H) each.
    """
    xp = backend.xp
    T, B, H3 = gi.shape
    H = H3 // 3
    dtype = gi.dtype
    hs = xp.empty((T + 1, B, H), dtype=dtype)
    rz = xp.empty((T, B, 2 * H), dtype=dtype)  # [r | z] per step: one σ call for both
    n = xp.empty((T, B, H), dtype=dtype)
    hn = xp.empty((T, B, H), dtype=dtype)
    hmn = xp.empty((T, B, H), dtype=dtype)
    gh = xp.empty((B, H3), dtype=dtype)
    tmp = xp.empty((B, H), dtype=dtype)
    W_hhT = W_hh.T  # a view: BLAS reads it transposed, no copy
    if reverse:
        hs[T] = h0
        steps, before, after = range(T - 1, -1, -1), 1, 0
    else:
        hs[0] = h0
        steps, before, after = range(T), 0, 1
    for t in steps:
        h_prev, h = hs[t + before], hs[t + after]
        ### BEGIN SOLUTION
        xp.matmul(h_prev, W_hhT, out=gh)  # the step's one GEMM: W_hh h_prev
        a = xp.add(gi[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t])
        sigmoid(a, out=a)  # [r | z]
        r, z = a[:, :H], a[:, H:]
        xp.add(gh[:, 2 * H:], b_hn, out=hn[t])  # hn = W_hn h_prev + b_hn
        xp.multiply(r, hn[t], out=tmp)
        tmp += gi[t, :, 2 * H:]
        xp.tanh(tmp, out=n[t])  # n = tanh(W_in x + b_in + r ⊙ hn)
        xp.subtract(h_prev, n[t], out=hmn[t])  # h = n + z ⊙ (h_prev − n)
        xp.multiply(z, hmn[t], out=h)  #   = (1 − z) ⊙ n + z ⊙ h_prev
        h += n[t]
        if t >= first_pad:  # padded rows: keep the state (h = h_prev) and record z = 1
            xp.copyto(h, h_prev, where=pad[t])
            xp.copyto(z, 1, where=pad[t])
        ### END SOLUTION
    return hs, rz[..., :H], rz[..., H:], n, hn, hmn


def gru_forward(x, h0, mask, params, num_layers, bidirectional):
    """A multi-layer, optionally bidirectional GRU over padded batch-first sequences.

    Every layer/direction runs the equations of :func:`gru_cell_forward` over time::

        r_t = σ(W_ir x_t + b_ir + W_hr h_prev + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_prev + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_prev + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_prev

    with h_prev = h_{t−1} (forward direction) or h_{t+1} (reverse). Layer k > 0 takes layer
    k−1's ``out`` (both directions concatenated) as its input x.

    Packed-sequence semantics: on a padded step (``mask`` false) the state is carried unchanged
    and ``out`` is exactly 0, so a padded row gives the same ``out`` (real steps) and ``h_n`` as
    the row run alone; the reverse direction of a row of length L starts at t = L−1 from h0.

    Implementation (the fast path; equal to a loop of :func:`gru_cell_forward` up to rounding):
    time-major buffers; W_ih x_t + b_ih for all t in one matrix product; per step one
    (B, H)×(H, 3H) product and h_t = n_t + z_t ⊙ (h_prev − n_t), written in place.

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

    Returns:
        out: (B, T, H·dirs) top layer's states, forward then reverse direction on the last axis.
        h_n: (L·dirs, B, H) final states (for the reverse direction: the state at t = 0).
        cache: a :class:`GRUCache` for :func:`gru_backward`.

    Derivation: docs/derivations/gru.md.
    """
    x = _array("x", x, 3)
    num_layers, dirs = _check_config(num_layers, bidirectional)
    B, T, D = x.shape
    H = _check_params(params, num_layers, dirs, D, x.dtype)
    xp = backend.xp
    dtype = x.dtype
    if h0 is not None:
        h0 = _array("h0", h0, 3, dtype)
        _shape("h0", h0, (num_layers * dirs, B, H), "(num_layers·dirs, B, H)")
    m = pad = None
    first_pad = T
    if mask is not None:
        mask, lengths = _check_mask(mask, B, T)
        first_pad = int(lengths.min()) if B else T
        if first_pad < T:
            m = mask.T[:, :, None].astype(dtype)  # (T, B, 1)
            pad = ~mask.T[:, :, None]
    zeros = None
    inp = xp.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D) time-major
    inputs, directions, keys, h_n = [], [], [], []
    out = None
    for layer in range(num_layers):
        if layer == num_layers - 1:
            out = xp.empty((B, T, H * dirs), dtype=dtype)
            out_tm = out.transpose(1, 0, 2)  # a (T, B, H·dirs) view of the batch-first output
        else:
            out_tm = xp.empty((T, B, H * dirs), dtype=dtype)
        inp2 = inp.reshape(T * B, -1)
        layer_caches, layer_keys = [], []
        for d in range(dirs):
            kw = _layer_keys(layer, d == 1)
            W_ih, W_hh, b_ih, b_hh = (params[k] for k in kw)
            if h0 is None:
                if zeros is None:
                    zeros = xp.zeros((B, H), dtype=dtype)
                h_init = zeros
            else:
                h_init = h0[layer * dirs + d]
            ### BEGIN SOLUTION
            gi = xp.matmul(inp2, W_ih.T).reshape(T, B, 3 * H)  # all steps at once
            bias = b_ih.copy()
            bias[: 2 * H] += b_hh[: 2 * H]  # b_hr, b_hz join the input projection
            gi += bias
            hs, r, z, n, hn, hmn = _direction_forward(gi, h_init, W_hh, b_hh[2 * H:], pad,
                                                      first_pad, d == 1)
            if d == 1:
                states, h_prev, h_last = hs[:T], hs[1:], hs[0]
            else:
                states, h_prev, h_last = hs[1:], hs[:T], hs[T]
            o = out_tm[:, :, d * H:(d + 1) * H]
            if m is None:
                o[...] = states
            else:
                xp.multiply(states, m, out=o)  # out = 0 on padded steps
            ### END SOLUTION
            h_n.append(h_last)
            layer_caches.append(GRUDirectionCache(W_ih, W_hh, r, z, n, hn, h_prev, hmn, d == 1))
            layer_keys.append(kw)
        inputs.append(inp)
        directions.append(tuple(layer_caches))
        keys.append(tuple(layer_keys))
        inp = out_tm
    cache = GRUCache(tuple(inputs), tuple(directions), m, tuple(keys))
    return out, xp.stack(h_n), cache


def _direction_backward(dh, dh_last, c: GRUDirectionCache):
    """Backward through time of one layer/direction.

    Args:
        dh: (T, B, H) gradient reaching the states from ``out``, already zero on padded steps.
            It is the work buffer: on return dh[t] holds the total gradient of the state after
            step t (from ``out`` and from the later steps).
        dh_last: (B, H) gradient of the final state, or None.
        c: the direction's cache.

    Returns:
        G: (T, B, 4H) the gate gradients [da_n | da_r | da_z | dhn] of every step, laid out so
        that dgh = [da_r, da_z, dhn] = G[..., H:] (the order of W_hh's rows) and
        dgi = [da_r, da_z, da_n] is G[..., :3H] with its blocks in the order n, r, z.
        dh0: (B, H) gradient of the initial state.
    """
    xp = backend.xp
    ### BEGIN SOLUTION
    T, B, H = c.h_prev.shape
    dtype = c.h_prev.dtype
    r, z, n, hn, hmn, W_hh = c.r, c.z, c.n, c.hn, c.h_prev_minus_n, c.W_hh
    G = xp.empty((T, B, 4 * H), dtype=dtype)
    carry = xp.zeros((B, H), dtype=dtype) if dh_last is None else dh_last.copy()
    one_minus_z = xp.empty((B, H), dtype=dtype)
    tmp = xp.empty((B, H), dtype=dtype)
    steps = range(T) if c.reverse else range(T - 1, -1, -1)
    for t in steps:
        g = dh[t]
        g += carry  # dh_t = dout_t + (dh_prev of the step after t)
        da_n, da_r, da_z, dhn = (G[t, :, i * H:(i + 1) * H] for i in range(4))
        xp.subtract(1, z[t], out=one_minus_z)
        xp.multiply(n[t], n[t], out=da_n)  # da_n = dh ⊙ (1 − z) ⊙ (1 − n²)
        xp.subtract(1, da_n, out=da_n)
        da_n *= one_minus_z
        da_n *= g
        xp.multiply(da_n, r[t], out=dhn)  # dhn = da_n ⊙ r
        xp.subtract(1, r[t], out=da_r)  # da_r = da_n ⊙ hn ⊙ r ⊙ (1 − r) = dhn ⊙ hn ⊙ (1 − r)
        da_r *= hn[t]
        da_r *= dhn
        xp.multiply(z[t], one_minus_z, out=da_z)  # da_z = dh ⊙ (h_prev − n) ⊙ z ⊙ (1 − z)
        da_z *= hmn[t]
        da_z *= g
        xp.matmul(G[t, :, H:], W_hh, out=carry)  # dh_prev = dgh W_hh + dh ⊙ z
        xp.multiply(g, z[t], out=tmp)
        carry += tmp
    return G, carry
    ### END SOLUTION


def _nrz(a, H):
    """Reorder the 3H blocks of axis 0 from (n, r, z) to (r, z, n)."""
    return backend.xp.concatenate([a[H:], a[:H]])


def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`.

    Per layer/direction, the cell's backward (see :func:`gru_cell_backward`) runs through time
    in the opposite order of the forward, with dh_t = dout_t ⊙ m_t + (dh_prev from the step
    after t)::

        dn = dh_t ⊙ (1 − z_t)            dz = dh_t ⊙ (h_prev − n_t)
        da_n = dn ⊙ (1 − n_t²)           dhn = da_n ⊙ r_t        dr = da_n ⊙ hn_t
        da_r = dr ⊙ r_t ⊙ (1 − r_t)      da_z = dz ⊙ z_t ⊙ (1 − z_t)
        dh_prev = dh_t ⊙ z_t + [da_r, da_z, dhn] W_hh

    The gate gradients of all steps are kept in one (T, B, 4H) buffer, so that after the loop::

        dW_ih = Σ_t dgi_tᵀ x_t        dx_t = dgi_t W_ih        db_ih = Σ_t Σ_b dgi_t
        dW_hh = Σ_t dgh_tᵀ h_prev_t   db_hh = Σ_t Σ_b dgh_t

    are one matrix product (or sum) each, with dgi = [da_r, da_z, da_n] and
    dgh = [da_r, da_z, dhn]. On padded steps the forward recorded z = 1, so every gate gradient
    of a padded row is 0 and the state's gradient passes through unchanged.

    Args:
        dout: (B, T, H·dirs) gradient of ``out``, or None (zero).
        dh_n: (L·dirs, B, H) gradient of ``h_n``, or None (zero).
        cache: from :func:`gru_forward`.

    Returns:
        dx: (B, T, D) (0 on padded steps); dh0: (L·dirs, B, H); grads: dict with the PyTorch
        names of the params used (``weight_ih_l0``, ...), same shapes.

    Derivation: docs/derivations/gru.md.
    """
    if not isinstance(cache, GRUCache):
        raise TypeError(f"cache must be the GRUCache returned by gru_forward; got "
                        f"{type(cache).__name__}")
    T, B, D = cache.inputs[0].shape
    num_layers, dirs = len(cache.inputs), len(cache.directions[0])
    H = cache.directions[0][0].W_hh.shape[1]
    dtype = cache.inputs[0].dtype
    if dout is not None:
        dout = _array("dout", dout, 3, dtype)
        _shape("dout", dout, (B, T, H * dirs), "(B, T, H·dirs)")
    if dh_n is not None:
        dh_n = _array("dh_n", dh_n, 3, dtype)
        _shape("dh_n", dh_n, (num_layers * dirs, B, H), "(num_layers·dirs, B, H)")
    xp = backend.xp
    ### BEGIN SOLUTION
    grads = {}
    dh0 = xp.empty((num_layers * dirs, B, H), dtype=dtype)
    m = cache.m
    d_above = None if dout is None else dout.transpose(1, 0, 2)  # (T, B, H·dirs) view
    for layer in range(num_layers - 1, -1, -1):
        x2 = cache.inputs[layer].reshape(T * B, -1)
        dx2 = None
        for d in range(dirs):
            c = cache.directions[layer][d]
            dh = xp.empty((T, B, H), dtype=dtype)
            if d_above is None:
                dh.fill(0)
            elif m is None:
                dh[...] = d_above[:, :, d * H:(d + 1) * H]
            else:  # out is 0 on padded steps: their dout does not reach the state
                xp.multiply(d_above[:, :, d * H:(d + 1) * H], m, out=dh)
            idx = layer * dirs + d
            G, dh0[idx] = _direction_backward(dh, None if dh_n is None else dh_n[idx], c)
            G2 = G.reshape(T * B, 4 * H)
            dgi_nrz = G2[:, : 3 * H]  # [da_n, da_r, da_z]: dgi with its blocks reordered
            dgh = G2[:, H:]  # [da_r, da_z, dhn]
            k_ih, k_hh, kb_ih, kb_hh = cache.keys[layer][d]
            grads[k_ih] = _nrz(dgi_nrz.T @ x2, H)
            grads[k_hh] = dgh.T @ c.h_prev.reshape(T * B, H)
            colsum = G2.sum(axis=0)
            grads[kb_ih] = _nrz(colsum[: 3 * H], H)
            grads[kb_hh] = colsum[H:]
            dx_d = dgi_nrz @ _nrz(c.W_ih, 2 * H)  # W_ih's rows in the order n, r, z
            if dx2 is None:
                dx2 = dx_d
            else:
                dx2 += dx_d
        d_above = dx2.reshape(T, B, -1)
    dx = xp.ascontiguousarray(d_above.transpose(1, 0, 2))
    return dx, dh0, grads
    ### END SOLUTION


# --------------------------------------------------------------------------------------------
# One step through a unidirectional stack (decoders)
# --------------------------------------------------------------------------------------------
class GRUStackStepCache(NamedTuple):
    cells: tuple  # per layer, its GRUCellCache
    keys: tuple  # per layer, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)


def gru_stack_step_forward(x_t, h, params, num_layers):
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

    Returns:
        out_t: (B, H) the top layer's new state; h_new: (L, B, H); a
        :class:`GRUStackStepCache`.

    Derivation: docs/derivations/gru.md.
    """
    x_t = _array("x_t", x_t, 2)
    num_layers, _ = _check_config(num_layers, False)
    B, D = x_t.shape
    H = _check_params(params, num_layers, 1, D, x_t.dtype)
    h = _array("h", h, 3, x_t.dtype)
    _shape("h", h, (num_layers, B, H), "(num_layers, B, H)")
    xp = backend.xp
    h_new = xp.empty_like(h)
    cells, keys = [], []
    inp = x_t
    for layer in range(num_layers):
        kw = _layer_keys(layer, False)
        ### BEGIN SOLUTION
        h_new[layer], cell = gru_cell_forward(inp, h[layer], *(params[k] for k in kw))
        inp = h_new[layer]
        ### END SOLUTION
        cells.append(cell)
        keys.append(kw)
    return h_new[num_layers - 1], h_new, GRUStackStepCache(tuple(cells), tuple(keys))


def gru_stack_step_backward(dout_t, dh_new, cache: GRUStackStepCache):
    """Backward of :func:`gru_stack_step_forward`.

    From the top layer down: dh_k = dh_new[k] (+ dout_t for the top layer, + dx of layer k+1
    otherwise); :func:`gru_cell_backward` gives layer k's dx, dh_prev and weight gradients.

    Args:
        dout_t: (B, H) gradient of ``out_t``, or None (zero).
        dh_new: (L, B, H) gradient of ``h_new``, or None (zero).
        cache: from :func:`gru_stack_step_forward`.

    Returns:
        dx_t: (B, D); dh: (L, B, H); grads: dict (PyTorch names) of the weight gradients.

    Derivation: docs/derivations/gru.md.
    """
    if not isinstance(cache, GRUStackStepCache):
        raise TypeError(f"cache must be the GRUStackStepCache returned by "
                        f"gru_stack_step_forward; got {type(cache).__name__}")
    L = len(cache.cells)
    B, H = cache.cells[0].h_prev.shape
    dtype = cache.cells[0].h_prev.dtype
    if dout_t is not None:
        dout_t = _array("dout_t", dout_t, 2, dtype)
        _shape("dout_t", dout_t, (B, H), "(B, H)")
    if dh_new is not None:
        dh_new = _array("dh_new", dh_new, 3, dtype)
        _shape("dh_new", dh_new, (L, B, H), "(num_layers, B, H)")
    xp = backend.xp
    ### BEGIN SOLUTION
    dh = xp.empty((L, B, H), dtype=dtype)
    grads = {}
    d_above = dout_t
    for layer in range(L - 1, -1, -1):
        g = xp.zeros((B, H), dtype=dtype) if dh_new is None else dh_new[layer].copy()
        if d_above is not None:
            g += d_above
        d_above, dh[layer], *dW = gru_cell_backward(g, cache.cells[layer])
        for k, v in zip(cache.keys[layer], dW):
            grads[k] = v
    return d_above, dh, grads
    ### END SOLUTION
