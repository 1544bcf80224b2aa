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

Speed (the sequence functions :func:`gru_forward`, :func:`gru_backward`): the input
projections W_ih x + b_ih of all time steps of a layer/direction are one matrix product before
the time loop; each step then costs one (B, H)×(H, 3H) product plus elementwise math, in place,
on preallocated time-major buffers. The backward keeps the gate gradients of all steps in one
(T, B, 4H) buffer and forms dW_ih, dx and dW_hh with one product each after the loop.

Padding (packed-sequence semantics, as ``torch.nn.utils.rnn.pack_padded_sequence``): inside,
the rows are sorted by length, longest first, so the rows still running at step t are a prefix
``[:active[t]]`` of the batch and each step updates only those. A row of length L thus runs
steps 0..L−1 (its reverse direction L−1..0, from h0) exactly as it would alone; its padded
steps cost nothing, give ``out`` = 0 and gradient 0.

Derivation: docs/derivations/gru.md.
"""

from __future__ import annotations

import functools
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
    "step_kernels",
    "GRUCellCache",
    "GRUBatchOrder",
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
class GRUBatchOrder(NamedTuple):
    """How a padded batch is arranged inside :func:`gru_forward` (packed-sequence style).

    The rows are sorted by length, longest first, so that the rows still running at step t are
    a prefix of the batch: step t updates rows ``[:active[t]]`` only, and padded steps cost
    nothing. Without padding nothing is reordered (``order`` is None).
    """

    order: object  # (B,) int: sorted row i is the caller's row order[i]; None = not reordered
    inverse: object  # (B,) int: the caller's row b is sorted row inverse[b]; None
    lengths: object  # (B,) int row lengths in sorted order, or None (no padding)
    active: tuple  # active[t] = number of rows with length > t (Python ints)
    m: object  # (T, B, 1) float mask in sorted order, 1 on real steps; None (no padding)


def _batch_order(mask, B, T, dtype):
    xp = backend.xp
    if mask is None:
        return GRUBatchOrder(None, None, None, (B,) * T, None)
    mask, lengths = _check_mask(mask, B, T)  # lengths: a NumPy array on the host
    if B == 0 or int(lengths.min()) == T:
        return GRUBatchOrder(None, None, None, (B,) * T, None)
    order = (-lengths).argsort(kind="stable")  # longest first
    sorted_lengths = lengths[order]
    active = tuple(int((sorted_lengths > t).sum()) for t in range(T))
    if bool((order[1:] > order[:-1]).all()):  # already sorted: no reordering
        order_dev = inverse = None
        m = mask.T[:, :, None].astype(dtype)
    else:
        order_dev = backend.asarray(order)
        inverse = xp.empty_like(order_dev)
        inverse[order_dev] = xp.arange(B)
        m = mask[order_dev].T[:, :, None].astype(dtype)
    return GRUBatchOrder(order_dev, inverse, backend.asarray(sorted_lengths), active, m)


@functools.cache
def step_kernels():
    """The fused elementwise kernels of one forward and one backward step of the time loops.

    Used by :func:`gru_forward` and :func:`gru_backward` when ``backend.fused()`` (by default on
    the GPU), in place of the in-place array operations that follow each step's GEMM there. The
    math is the same; each kernel is one launch and one pass over memory. The text is C and
    Python at once (see :class:`minis2s.backend.ElementwiseKernel`), so it is tested on any
    machine.

    - ``forward``: inputs the (b, H) blocks of gi = W_ih x_t + b_ih (+ b_hr, b_hz) and
      gh = W_hh h_prev, with the r and z blocks already halved (σ(a) = 0.5 + 0.5·tanh(a/2)),
      b_hn (H,) and h_prev; outputs r, z, n, hn, r ⊙ hn, z ⊙ (h_prev − n) and h.
    - ``backward``: inputs dh = g (this step's dout plus the carried dh_prev) and the forward's
      r, z, n, hn, r ⊙ hn, z ⊙ (h_prev − n); outputs dh ⊙ z (the direct part of dh_prev) and
      the gate gradients da_n, da_r, da_z, dhn of :func:`gru_cell_backward`.

    Returns:
        (forward, backward), two :class:`minis2s.backend.ElementwiseKernel`.
    """
    ### BEGIN SOLUTION
    forward = backend.ElementwiseKernel(
        "gru_step_forward",
        ("gi_r", "gi_z", "gi_n", "gh_r", "gh_z", "gh_n", "b_hn", "h_prev"),
        ("r", "z", "n_t", "hn", "r_hn", "z_diff", "h"),  # (CuPy reserves the name n)
        """
        r = 0.5 + 0.5 * tanh(gi_r + gh_r);
        z = 0.5 + 0.5 * tanh(gi_z + gh_z);
        hn = gh_n + b_hn;
        r_hn = r * hn;
        n_t = tanh(gi_n + r_hn);
        z_diff = z * (h_prev - n_t);
        h = n_t + z_diff;
        """)
    backward = backend.ElementwiseKernel(
        "gru_step_backward",
        ("g", "r", "z", "n_t", "hn", "r_hn", "z_diff"),
        ("dh_z", "da_n", "da_r", "da_z", "dhn"),
        """
        dh_z = g * z;
        da_n = (g - dh_z) * (1.0 - n_t * n_t);
        dhn = da_n * r;
        da_r = dhn * (hn - r_hn);
        da_z = z_diff * (g - dh_z);
        """)
    return forward, backward
    ### END SOLUTION


class GRUDirectionCache(NamedTuple):
    """One layer/direction of :func:`gru_forward`. Every array is time-major (indexed by time t)
    over the sorted batch; on a padded step only the rows that are running hold values."""

    W_ih: object  # (3H, D_k)
    W_hh: object  # (3H, H)
    r: object  # (T, B, H) reset gate
    z: object  # (T, B, H) update gate
    n: object  # (T, B, H) candidate
    hn: object  # (T, B, H) W_hn h_prev + b_hn
    r_hn: object  # (T, B, H) r ⊙ hn
    z_diff: object  # (T, B, H) z ⊙ (h_prev − n)
    h_prev: object  # (T, B, H) the state step t started from
    reverse: bool  # True: steps run t = T−1, ..., 0


class GRUCache(NamedTuple):
    inputs: tuple  # per layer k, its time-major input (T, B, D_k) (layer k > 0: layer k−1's out)
    directions: tuple  # per layer, a tuple of GRUDirectionCache (forward[, reverse])
    batch: GRUBatchOrder  # the row order and the rows running at each step
    keys: tuple  # per layer, per direction, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)


def _direction_forward(gi, h0, W_hhT, b_hn, batch: GRUBatchOrder, reverse):
    """Run one layer/direction over time: the fast path of :func:`gru_cell_forward`.

    Args:
        gi: (T, B, 3H) input projections W_ih x_t + b_ih, plus b_hr, b_hz; the r and z columns
            are halved (see below).
        h0: (B, H) initial state.
        W_hhT: (H, 3H) contiguous W_hhᵀ with its r and z columns halved; b_hn: (H,).
        batch: the row order; step t updates the rows ``[:batch.active[t]]``.
        reverse: run t = T−1, ..., 0.

    σ(a) = 0.5 + 0.5·tanh(a/2), and a/2 comes straight out of the products because the r and z
    rows of the weights and biases were halved beforehand (exact: a power of two).

    Returns:
        hs: (T + 1, B, H) states: hs[t] is the state before step t and hs[t + 1] the one after
        it (forward); reversed, hs[t + 1] is the state before step t and hs[t] the one after.
        r, z, n, hn, r_hn = r ⊙ hn, z_diff = z ⊙ (h_prev − n): (T, B, H) each;
        h_last: (B, H) the final states.
    """
    xp = backend.xp
    T, B, H3 = gi.shape
    H = H3 // 3
    dtype = gi.dtype
    active = batch.active
    padded = batch.m is not None
    # zeros where padded, so that the states never written (rows that have stopped) are finite
    hs = (xp.zeros if padded else xp.empty)((T + 1, B, H), dtype=dtype)
    rz = xp.empty((T, B, 2 * H), dtype=dtype)  # [r | z] per step: one σ for both
    n, hn, r_hn, z_diff = (xp.empty((T, B, H), dtype=dtype) for _ in range(4))
    gh = xp.empty((B, H3), dtype=dtype)
    fused = step_kernels()[0] if backend.fused() else None
    if reverse:
        hs[T] = h0
        steps, before, after = range(T - 1, -1, -1), 1, 0
    else:
        hs[0] = h0
        steps, before, after = range(T), 0, 1
    for t in steps:
        b = active[t]
        if reverse and t < T - 1 and b > active[t + 1]:
            hs[t + 1, active[t + 1]:b] = h0[active[t + 1]:b]  # rows whose last step is t
        if b == 0:
            continue
        h_prev, h = hs[t + before, :b], hs[t + after, :b]
        ### BEGIN SOLUTION
        xp.matmul(h_prev, W_hhT, out=gh[:b])  # the step's one GEMM: W_hh h_prev
        if fused:  # the same math as below, in one kernel (see step_kernels)
            g_i, g_h = gi[t, :b], gh[:b]
            fused(g_i[:, :H], g_i[:, H:2 * H], g_i[:, 2 * H:],  # inputs
                  g_h[:, :H], g_h[:, H:2 * H], g_h[:, 2 * H:], b_hn, h_prev,
                  rz[t, :b, :H], rz[t, :b, H:], n[t, :b], hn[t, :b], r_hn[t, :b],  # outputs
                  z_diff[t, :b], h)
            continue
        a = xp.add(gi[t, :b, : 2 * H], gh[:b, : 2 * H], out=rz[t, :b])  # a/2 for r and z
        xp.tanh(a, out=a)
        a *= 0.5
        a += 0.5  # [r | z] = σ(a) = 0.5 + 0.5 tanh(a/2)
        r, z = a[:, :H], a[:, H:]
        hn_t = xp.add(gh[:b, 2 * H:], b_hn, out=hn[t, :b])  # hn = W_hn h_prev + b_hn
        u = xp.multiply(r, hn_t, out=r_hn[t, :b])
        n_t = xp.add(gi[t, :b, 2 * H:], u, out=n[t, :b])
        xp.tanh(n_t, out=n_t)  # n = tanh(W_in x + b_in + r ⊙ hn)
        zd = xp.subtract(h_prev, n_t, out=z_diff[t, :b])
        zd *= z  # z ⊙ (h_prev − n)
        xp.add(n_t, zd, out=h)  # h = n + z ⊙ (h_prev − n) = (1 − z) ⊙ n + z ⊙ h_prev
        ### END SOLUTION
    if reverse:
        if active[0] < B:  # rows of length 0 never ran
            hs[0, active[0]:] = h0[active[0]:]
        h_last = hs[0]
    elif padded:
        h_last = hs[batch.lengths, xp.arange(B)]  # row b stopped after step lengths[b] − 1
    else:
        h_last = hs[T]
    return hs, rz[..., :H], rz[..., H:], n, hn, r_hn, z_diff, h_last


@backend.device_inputs
def gru_forward(x, h0, mask, params, num_layers, bidirectional):
    """A multi-layer, optionally bidirectional GRU over padded batch-first sequences.

    Every layer/direction runs the equations of :func:`gru_cell_forward` over time::

        r_t = σ(W_ir x_t + b_ir + W_hr h_prev + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_prev + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_prev + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_prev

    with h_prev = h_{t−1} (forward direction) or h_{t+1} (reverse). Layer k > 0 takes layer
    k−1's ``out`` (both directions concatenated) as its input x.

    Packed-sequence semantics: a row of length L runs steps 0..L−1 only (the reverse direction
    runs L−1..0, starting from h0); ``out`` is exactly 0 at its padded steps and ``h_n`` holds
    the state after its last step, so a padded row gives exactly what it gives alone.

    Implementation (the fast path; equal to a loop of :func:`gru_cell_forward` up to rounding):
    rows sorted by length, longest first, so that step t updates a prefix of the batch (see
    :class:`GRUBatchOrder`); time-major buffers; W_ih x_t + b_ih for all t in one matrix
    product; per step one (B, H)×(H, 3H) product, σ(a) = 0.5 + 0.5 tanh(a/2) and
    h_t = n_t + z_t ⊙ (h_prev − n_t), written in place.

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
    batch = _batch_order(mask, B, T, dtype)
    order, m = batch.order, batch.m
    if order is None:
        inp = xp.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D) time-major
    else:
        inp = xp.ascontiguousarray(x.transpose(1, 0, 2)[:, order])  # and rows sorted
        if h0 is not None:
            h0 = h0[:, order]
    if h0 is None:
        h0 = xp.zeros((num_layers * dirs, B, H), dtype=dtype)
    inputs, directions, keys, h_n = [], [], [], []
    out = None
    for layer in range(num_layers):
        if layer == num_layers - 1 and order is None:
            out = xp.empty((B, T, H * dirs), dtype=dtype)
            out_tm = out.transpose(1, 0, 2)  # a (T, B, H·dirs) view of the batch-first output
        else:
            out_tm = xp.empty((T, B, H * dirs), dtype=dtype)
        inp2 = inp.reshape(T * B, -1)
        layer_caches, layer_keys = [], []
        for d in range(dirs):
            kw = _layer_keys(layer, d == 1)
            W_ih, W_hh, b_ih, b_hh = (params[k] for k in kw)
            ### BEGIN SOLUTION
            half = slice(0, 2 * H)  # the r and z rows, halved for σ(a) = 0.5 + 0.5 tanh(a/2)
            W_ih_s = W_ih.copy()
            W_ih_s[half] *= 0.5
            bias = b_ih.copy()
            bias[half] += b_hh[half]  # b_hr, b_hz join the input projection
            bias[half] *= 0.5
            W_hhT = W_hh.T.copy()  # a copy even when H = 1 (there W_hh.T is already contiguous)
            W_hhT[:, half] *= 0.5
            gi = xp.matmul(inp2, W_ih_s.T).reshape(T, B, 3 * H)  # all steps in one product
            gi += bias
            hs, r, z, n, hn, r_hn, z_diff, h_last = _direction_forward(
                gi, h0[layer * dirs + d], W_hhT, b_hh[2 * H:], batch, d == 1)
            states, h_prev = (hs[:T], hs[1:]) if d == 1 else (hs[1:], hs[:T])
            o = out_tm[:, :, d * H:(d + 1) * H]
            if d == 1 and m is not None:  # out = 0 on padded steps: the reverse direction
                xp.multiply(states, m, out=o)  # left h0 at some (the step after a row's end)
            else:  # forward: the states of padded steps were never written, they are 0
                o[...] = states
            ### END SOLUTION
            h_n.append(h_last)
            layer_caches.append(GRUDirectionCache(W_ih, W_hh, r, z, n, hn, r_hn, z_diff,
                                                  h_prev, d == 1))
            layer_keys.append(kw)
        inputs.append(inp)
        directions.append(tuple(layer_caches))
        keys.append(tuple(layer_keys))
        inp = out_tm
    h_n = xp.stack(h_n)
    if order is not None:  # back to the caller's row order
        out = out_tm.transpose(1, 0, 2)[batch.inverse]
        h_n = h_n[:, batch.inverse]
    return out, h_n, GRUCache(tuple(inputs), tuple(directions), batch, tuple(keys))


def _direction_backward(dout, dh_last, c: GRUDirectionCache, active):
    """Backward through time of one layer/direction.

    Args:
        dout: (T, B, H) gradient of this direction's ``out`` (any strides; only the real steps
            are read), or None.
        dh_last: (B, H) gradient of the final state, or None.
        c: the direction's cache.
        active: active[t] = the number of (sorted) rows running at step t.

    Returns:
        G: (T, B, 4H) the gate gradients [da_n | da_r | da_z | dhn] of every step (0 on the
        rows not running), laid out so that dgh = [da_r, da_z, dhn] = G[..., H:] (the order of
        W_hh's rows) and G[..., :3H] = [da_n, da_r, da_z] is dgi = [da_r, da_z, da_n] with its
        blocks rotated.
        dh0: (B, H) gradient of the initial state.
    """
    xp = backend.xp
    ### BEGIN SOLUTION
    T, B, H = c.h_prev.shape
    dtype = c.h_prev.dtype
    G = xp.empty((T, B, 4 * H), dtype=dtype)
    carry = xp.zeros((B, H), dtype=dtype) if dh_last is None else dh_last.copy()
    dh, dh_z, dh_omz = (xp.empty((B, H), dtype=dtype) for _ in range(3))
    fused = step_kernels()[1] if backend.fused() else None
    for t in range(T) if c.reverse else range(T - 1, -1, -1):
        b = active[t]
        if b < B:
            G[t, b:] = 0  # rows not running at step t
        if b == 0:
            continue
        r, z, n, z_diff = c.r[t, :b], c.z[t, :b], c.n[t, :b], c.z_diff[t, :b]
        g = dh[:b]  # dh_t = dout_t + (dh_prev of the step after t)
        if dout is None:
            g[...] = carry[:b]
        else:
            xp.add(dout[t, :b], carry[:b], out=g)
        da_n, da_r, da_z, dhn = (G[t, :b, i * H:(i + 1) * H] for i in range(4))
        if fused:  # the same math as below, in one kernel (see step_kernels)
            fused(g, r, z, n, c.hn[t, :b], c.r_hn[t, :b], z_diff, dh_z[:b], da_n, da_r, da_z,
                  dhn)
            xp.matmul(G[t, :b, H:], c.W_hh, out=carry[:b])
            carry[:b] += dh_z[:b]
            continue
        gz = xp.multiply(g, z, out=dh_z[:b])  # dh ⊙ z
        g_omz = xp.subtract(g, gz, out=dh_omz[:b])  # dh ⊙ (1 − z)
        xp.multiply(n, n, out=da_n)  # da_n = dh ⊙ (1 − z) ⊙ (1 − n²)
        xp.subtract(1, da_n, out=da_n)
        da_n *= g_omz
        xp.multiply(da_n, r, out=dhn)  # dhn = da_n ⊙ r
        xp.subtract(c.hn[t, :b], c.r_hn[t, :b], out=da_r)  # hn ⊙ (1 − r) = hn − r ⊙ hn
        da_r *= dhn  # da_r = da_n ⊙ hn ⊙ r ⊙ (1 − r) = dhn ⊙ hn ⊙ (1 − r)
        xp.multiply(z_diff, g_omz, out=da_z)  # da_z = dh ⊙ (h_prev − n) ⊙ z ⊙ (1 − z)
        xp.matmul(G[t, :b, H:], c.W_hh, out=carry[:b])  # dh_prev = dgh W_hh + dh ⊙ z
        carry[:b] += gz
    return G, carry
    ### END SOLUTION


def _rotate_blocks(a, k):
    """Rows ``k:`` then rows ``:k`` of ``a`` (moves the n block of a (3H, ...) array between
    the last place, r z n, and the first, n r z)."""
    return backend.xp.concatenate([a[k:], a[:k]])


@backend.device_inputs
def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`.

    Per layer/direction, the cell's backward (see :func:`gru_cell_backward`) runs through time
    in the opposite order of the forward, with dh_t = dout_t + (dh_prev from the step after
    t)::

        dn = dh_t ⊙ (1 − z_t)            dz = dh_t ⊙ (h_prev − n_t)
        da_n = dn ⊙ (1 − n_t²)           dhn = da_n ⊙ r_t        dr = da_n ⊙ hn_t
        da_r = dr ⊙ r_t ⊙ (1 − r_t)      da_z = dz ⊙ z_t ⊙ (1 − z_t)
        dh_prev = dh_t ⊙ z_t + [da_r, da_z, dhn] W_hh

    The gate gradients of all steps are kept in one (T, B, 4H) buffer, so that after the loop::

        dW_ih = Σ_t dgi_tᵀ x_t        dx_t = dgi_t W_ih        db_ih = Σ_t Σ_b dgi_t
        dW_hh = Σ_t dgh_tᵀ h_prev_t   db_hh = Σ_t Σ_b dgh_t

    are one matrix product (or sum) each, with dgi = [da_r, da_z, da_n] and
    dgh = [da_r, da_z, dhn]. A row that is not running at step t (padding) is skipped: its
    gate gradients there are 0, its dout there is ignored (``out`` is the constant 0), and the
    gradient of its final state waits unchanged for its last real step.

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
    batch = cache.batch
    order = batch.order
    d_above = None if dout is None else dout.transpose(1, 0, 2)  # (T, B, H·dirs) view
    if order is not None:  # into the sorted row order of the forward
        d_above = None if dout is None else d_above[:, order]
        dh_n = None if dh_n is None else dh_n[:, order]
    grads = {}
    dh0 = xp.empty((num_layers * dirs, B, H), dtype=dtype)
    for layer in range(num_layers - 1, -1, -1):
        x2 = cache.inputs[layer].reshape(T * B, -1)
        dx2 = None
        for d in range(dirs):
            c = cache.directions[layer][d]
            dout_d = None if d_above is None else d_above[:, :, d * H:(d + 1) * H]
            idx = layer * dirs + d
            G, dh0[idx] = _direction_backward(dout_d, None if dh_n is None else dh_n[idx], c,
                                              batch.active)
            G2 = G.reshape(T * B, 4 * H)
            dgi_nrz = G2[:, : 3 * H]  # [da_n, da_r, da_z]: dgi with its blocks rotated
            dgh = G2[:, H:]  # [da_r, da_z, dhn]
            k_ih, k_hh, kb_ih, kb_hh = cache.keys[layer][d]
            grads[k_ih] = _rotate_blocks(dgi_nrz.T @ x2, H)
            grads[k_hh] = dgh.T @ c.h_prev.reshape(T * B, H)
            colsum = G2.sum(axis=0)
            grads[kb_ih] = _rotate_blocks(colsum[: 3 * H], H)
            grads[kb_hh] = colsum[H:]
            dx_d = dgi_nrz @ _rotate_blocks(c.W_ih, 2 * H)  # W_ih's rows in the order n, r, z
            if dx2 is None:
                dx2 = dx_d
            else:
                dx2 += dx_d
        d_above = dx2.reshape(T, B, -1)
    if order is None:
        dx = xp.ascontiguousarray(d_above.transpose(1, 0, 2))
    else:  # back to the caller's row order
        dx = d_above.transpose(1, 0, 2)[batch.inverse]
        dh0 = dh0[:, batch.inverse]
    return dx, dh0, grads
    ### END SOLUTION


# --------------------------------------------------------------------------------------------
# One step through a unidirectional stack (decoders)
# --------------------------------------------------------------------------------------------
class GRUStackStepCache(NamedTuple):
    cells: tuple  # per layer, its GRUCellCache
    keys: tuple  # per layer, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)


@backend.device_inputs
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


@backend.device_inputs
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
