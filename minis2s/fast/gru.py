"""The fast tier of the GRU: the same functions as :mod:`minis2s.functional.gru`, rearranged
for speed, each proven equal to its reference by a float64 test (tests/test_tiers_gru.py).

Read :mod:`minis2s.functional.gru` for the math (the textbook: a masked loop over the cell).
This module computes the same results (to rounding) with:

- **a sorted batch**: rows sorted by length, longest first, so that the rows still running at
  step t are a prefix ``[:active[t]]`` of the batch; a step updates only those, and padded steps
  cost nothing (packed-sequence semantics, as ``torch.nn.utils.rnn.pack_padded_sequence``);
- **packed buffers** (N, ·) over the N real (step, row) positions only, step t's rows at
  ``offsets[t] : offsets[t] + active[t]`` (PyTorch's ``PackedSequence.data`` layout), allocated
  once per call and written in place (``out=``); the states stay time-major (T + 1, B, H);
- **one product for all steps' input projections** W_ih x_t + b_ih (+ b_hr, b_hz) before the
  time loop, on the real positions only, so that a step costs one (B, H)×(H, 3H) product plus
  elementwise math, and padding costs no product before or after the loop;
- **σ(a) = 0.5 + 0.5·tanh(a/2) with halved weights**: the r and z rows of the weights and
  biases are halved once (exact: a power of two), so the products give a/2 directly;
- **one packed (N, 4H) gate-gradient buffer** [da_n | da_r | da_z | dhn] in the backward,
  whose slices are dgh and (blocks rotated) dgi, so that dW_ih, dx and dW_hh are one product
  each after the loop, over the real positions only;
- **fused kernels** (:func:`step_kernels`): on the GPU each step's elementwise math is one
  kernel launch (``backend.fused()``).

These functions are unchecked internals: :class:`minis2s.layers.GRU` checks the arguments
(with :mod:`minis2s._checks`) before it calls them. Derivation: docs/derivations/gru.md (§6).
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

from .. import backend
from ..functional.gru import GRUCellCache, param_names

__all__ = [  # the reference's names (each equals its namesake), the kernels and the caches
    "gru_cell_forward", "gru_cell_backward", "gru_forward", "gru_backward",
    "gru_stack_step_forward", "gru_stack_step_backward",
    "step_kernels", "GRUBatchOrder", "GRUDirectionCache", "GRUCache", "GRUStackStepCache",
]


def _sigmoid_(a):
    """σ(a) = 0.5·(1 + tanh(a/2)), in place in ``a`` (which it returns)."""
    xp = backend.xp
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


# --------------------------------------------------------------------------------------------
# One cell step
# --------------------------------------------------------------------------------------------
def gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One GRU step of one layer: x (B, D), h_prev (B, H) -> h (B, H), a ``GRUCellCache``.

    Equals: minis2s.functional.gru.gru_cell_forward (σ of r and z in one in-place pass over
    the (B, 2H) block [a_r | a_z]).
    """
    xp = backend.xp
    H = h_prev.shape[1]
    gi = xp.matmul(x, W_ih.T)
    gi += b_ih
    gh = xp.matmul(h_prev, W_hh.T)
    gh += b_hh
    rz = _sigmoid_(gi[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    hn = gh[:, 2 * H:]
    n = xp.tanh(gi[:, 2 * H:] + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, GRUCellCache(x, h_prev, W_ih, W_hh, r, z, n, hn)


def gru_cell_backward(dh, cache: GRUCellCache):
    """Backward of :func:`gru_cell_forward`: dh (B, H) -> dx, dh_prev, dW_ih, dW_hh, db_ih,
    db_hh.

    Equals: minis2s.functional.gru.gru_cell_backward, with dh ⊙ z computed once (the direct
    part of dh_prev) and dh ⊙ (1 − z) = dh − dh ⊙ z (as in :func:`gru_backward`).
    """
    xp = backend.xp
    x, h_prev, W_ih, W_hh, r, z, n, hn = cache
    gz = dh * z
    g_omz = dh - gz  # dh ⊙ (1 − z)
    da_n = g_omz * (1 - n * n)
    dhn = da_n * r
    da_r = dhn * hn * (1 - r)  # da_n ⊙ hn ⊙ r ⊙ (1 − r)
    da_z = g_omz * z * (h_prev - n)
    dgi = xp.concatenate([da_r, da_z, da_n], axis=1)
    dgh = xp.concatenate([da_r, da_z, dhn], axis=1)
    dh_prev = dgh @ W_hh
    dh_prev += gz
    return dgi @ W_ih, dh_prev, dgi.T @ x, dgh.T @ h_prev, dgi.sum(axis=0), dgh.sum(axis=0)


# --------------------------------------------------------------------------------------------
# Whole sequences
# --------------------------------------------------------------------------------------------
class GRUBatchOrder(NamedTuple):
    """How a padded batch is arranged inside :func:`gru_forward` (packed-sequence style).

    The rows are sorted by length, longest first, so that the rows still running at step t are
    a prefix of the batch: step t updates rows ``[:active[t]]`` only, and padded steps cost
    nothing. Without padding nothing is reordered (``order`` is None).

    The packed buffers hold the N = Σ_t active[t] real positions, step after step: step t's
    rows are ``offsets[t] : offsets[t] + active[t]`` (:meth:`pack` and :meth:`unpack` convert
    from and to a time-major (T, B, ·) array).
    """

    order: object  # (B,) int: sorted row i is the caller's row order[i]; None = not reordered
    inverse: object  # (B,) int: the caller's row b is sorted row inverse[b]; None
    lengths: object  # (B,) int row lengths in sorted order, or None (no padding)
    active: tuple  # active[t] = number of rows with length > t (Python ints)
    m: object  # (T, B, 1) float mask in sorted order, 1 on real steps; None (no padding)
    offsets: tuple = ()  # offsets[t] = active[0] + ... + active[t − 1]: step t's packed rows
    real: object = None  # (N,) int: packed row i is row real[i] of the flat (T·B) sorted grid;
    #                      None when nothing is padded (then the packed rows are that grid)

    @property
    def n_real(self):
        """N, the number of real (step, row) positions: the packed buffers' rows."""
        return self.offsets[-1] + self.active[-1] if self.active else 0

    def pack(self, a):
        """The real positions of a time-major (T, B, ·) array in the sorted row order, as a
        packed (N, ·) array (a reshape when nothing is padded, else a gather)."""
        a2 = a.reshape(-1, a.shape[-1])
        return a2 if self.real is None else a2[self.real]

    def unpack(self, a_p, B):
        """The inverse of :meth:`pack`: a packed (N, ·) array as a time-major (T, B, ·) one,
        0 on the padded positions."""
        T = len(self.active)
        if self.real is None:
            return a_p.reshape(T, B, a_p.shape[-1])
        a2 = backend.xp.zeros((T * B, a_p.shape[-1]), dtype=a_p.dtype)
        a2[self.real] = a_p
        return a2.reshape(T, B, a_p.shape[-1])


def _batch_order(mask, B, T, dtype, lengths=None):
    """The :class:`GRUBatchOrder` of a right-padded (B, T) mask (bool or int; None: no
    padding); ``lengths``: its row lengths as a NumPy array, if the caller has them already."""
    xp = backend.xp
    full = GRUBatchOrder(None, None, None, (B,) * T, None, tuple(t * B for t in range(T)))
    if mask is None:
        return full
    if mask.dtype != bool:
        mask = mask != 0
    if lengths is None:
        lengths = backend.to_numpy(mask.sum(axis=1))  # on the host
    if B == 0 or int(lengths.min()) == T:
        return full
    order = (-lengths).argsort(kind="stable")  # longest first
    sorted_lengths = lengths[order]
    active = tuple(int((sorted_lengths > t).sum()) for t in range(T))
    offsets = tuple(itertools.accumulate(active[:-1], initial=0))
    if bool((order[1:] > order[:-1]).all()):  # already sorted: no reordering
        order_dev = inverse = None
        m = mask.T[:, :, None].astype(dtype)
    else:
        order_dev = backend.asarray(order)
        inverse = xp.empty_like(order_dev)
        inverse[order_dev] = xp.arange(B)
        m = mask[order_dev].T[:, :, None].astype(dtype)
    # t·B + b of the real positions, step by step. Step t's real rows are its first active[t]
    # (longest first), so packed row i of step t is t·B + (i − offsets[t]). Built from the
    # host's counts in a few whole-array operations: no mask read back from the device, and no
    # operation per step (CuPy's repeat would copy once per step)
    i = xp.arange(sum(active))
    step = xp.searchsorted(backend.asarray(offsets[1:]), i, side="right")  # t of packed row i
    real = i + backend.asarray([t * B - o for t, o in enumerate(offsets)])[step]
    return GRUBatchOrder(order_dev, inverse, backend.asarray(sorted_lengths), active, m, offsets,
                         real)


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


class GRUDirectionCache(NamedTuple):
    """One layer/direction of :func:`gru_forward`, over the sorted batch. The gate arrays are
    packed (N, H): step t's running rows are rows ``offsets[t] : offsets[t] + active[t]`` (see
    :class:`GRUBatchOrder`); the states ``h_prev`` are time-major."""

    W_ih: object  # (3H, D_k)
    W_hh: object  # (3H, H)
    r: object  # (N, H) reset gate
    z: object  # (N, H) update gate
    n: object  # (N, H) candidate
    hn: object  # (N, H) W_hn h_prev + b_hn
    r_hn: object  # (N, H) r ⊙ hn
    z_diff: object  # (N, H) z ⊙ (h_prev − n)
    h_prev: object  # (T, B, H) the state step t started from (rows [:active[t]] are real)
    reverse: bool  # True: steps run t = T−1, ..., 0


class GRUCache(NamedTuple):
    inputs: tuple  # per layer k, its packed input (N, D_k) (layer k > 0: layer k−1's out)
    directions: tuple  # per layer, a tuple of GRUDirectionCache (forward[, reverse])
    batch: GRUBatchOrder  # the row order and the rows running at each step
    keys: tuple  # per layer, per direction, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)
    drop: tuple = ()  # drop[k−1]: (T, B, H·dirs) layer k's dropout multiplier (sorted rows)


def _direction_forward(gi, h0, W_hhT, b_hn, batch: GRUBatchOrder, reverse):
    """Run one layer/direction over time: the time loop of :func:`gru_forward`.

    Args:
        gi: (N, 3H) packed input projections W_ih x_t + b_ih, plus b_hr, b_hz, of the real
            positions (step t's at rows ``batch.offsets[t]`` onwards); the r and z columns are
            halved (see below).
        h0: (B, H) initial state.
        W_hhT: (H, 3H) contiguous W_hhᵀ with its r and z columns halved; b_hn: (H,).
        batch: the row order; step t updates the rows ``[:batch.active[t]]``.
        reverse: run t = T−1, ..., 0.

    σ(a) = 0.5 + 0.5·tanh(a/2), and a/2 comes straight out of the products because the r and z
    rows of the weights and biases were halved beforehand (exact: a power of two).

    Returns:
        hs: (T + 1, B, H) states: hs[t] is the state before step t and hs[t + 1] the one after
        it (forward); reversed, hs[t + 1] is the state before step t and hs[t] the one after.
        r, z, n, hn, r_hn = r ⊙ hn, z_diff = z ⊙ (h_prev − n): (N, H) each, packed;
        h_last: (B, H) the final states.
    """
    xp = backend.xp
    N, H3 = gi.shape
    H = H3 // 3
    B = h0.shape[0]
    T = len(batch.active)
    dtype = gi.dtype
    active, offsets = batch.active, batch.offsets
    padded = batch.m is not None
    # zeros where padded, so that the states never written (rows that have stopped) are finite
    hs = (xp.zeros if padded else xp.empty)((T + 1, B, H), dtype=dtype)
    rz = xp.empty((N, 2 * H), dtype=dtype)  # [r | z] per position: one σ for both
    n, hn, r_hn, z_diff = (xp.empty((N, H), dtype=dtype) for _ in range(4))
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
        p = slice(offsets[t], offsets[t] + b)  # step t's rows of the packed arrays
        h_prev, h = hs[t + before, :b], hs[t + after, :b]
        xp.matmul(h_prev, W_hhT, out=gh[:b])  # the step's one GEMM: W_hh h_prev
        if fused:  # the same math as below, in one kernel (see step_kernels)
            g_i, g_h = gi[p], gh[:b]
            fused(g_i[:, :H], g_i[:, H:2 * H], g_i[:, 2 * H:],  # inputs
                  g_h[:, :H], g_h[:, H:2 * H], g_h[:, 2 * H:], b_hn, h_prev,
                  rz[p, :H], rz[p, H:], n[p], hn[p], r_hn[p], z_diff[p], h)  # outputs
            continue
        a = xp.add(gi[p, : 2 * H], gh[:b, : 2 * H], out=rz[p])  # a/2 for r and z
        xp.tanh(a, out=a)
        a *= 0.5
        a += 0.5  # [r | z] = σ(a) = 0.5 + 0.5 tanh(a/2)
        r, z = a[:, :H], a[:, H:]
        hn_t = xp.add(gh[:b, 2 * H:], b_hn, out=hn[p])  # hn = W_hn h_prev + b_hn
        u = xp.multiply(r, hn_t, out=r_hn[p])
        n_t = xp.add(gi[p, 2 * H:], u, out=n[p])
        xp.tanh(n_t, out=n_t)  # n = tanh(W_in x + b_in + r ⊙ hn)
        zd = xp.subtract(h_prev, n_t, out=z_diff[p])
        zd *= z  # z ⊙ (h_prev − n)
        xp.add(n_t, zd, out=h)  # h = n + z ⊙ (h_prev − n) = (1 − z) ⊙ n + z ⊙ h_prev
    if reverse:
        if T and active[0] < B:  # rows of length 0 never ran
            hs[0, active[0]:] = h0[active[0]:]
        h_last = hs[0]
    elif padded:
        h_last = hs[batch.lengths, xp.arange(B)]  # row b stopped after step lengths[b] − 1
    else:
        h_last = hs[T]
    return hs, rz[:, :H], rz[:, H:], n, hn, r_hn, z_diff, h_last


def gru_forward(x, h0, mask, params, num_layers, bidirectional, lengths=None,
                dropout_masks=None):
    """A multi-layer, optionally bidirectional GRU over padded batch-first sequences.

    Equals: minis2s.functional.gru.gru_forward (same arguments and results, to rounding; the
    cache is this module's :class:`GRUCache`, for this module's :func:`gru_backward`).

    Implementation: rows sorted by length, longest first, so that step t updates a prefix of
    the batch (see :class:`GRUBatchOrder`); time-major buffers; W_ih x_t + b_ih for all t in one
    matrix product; per step one (B, H)×(H, 3H) product, σ(a) = 0.5 + 0.5 tanh(a/2) with the r
    and z rows of the weights halved beforehand, and h_t = n_t + z_t ⊙ (h_prev − n_t), written
    in place (:func:`_direction_forward`).

    Args and results: those of the reference (x (B, T, D), h0 (L·dirs, B, H) or None, mask
    (B, T) or None, params, num_layers, bidirectional -> out (B, T, H·dirs), h_n (L·dirs, B, H),
    cache), plus ``lengths``: the rows' lengths as a NumPy array if the caller has them (the
    layer's mask check computes them), or None (computed here from ``mask``); and
    ``dropout_masks`` as in the reference (batch-first multipliers of layers 1 .. L−1).

    Derivation: docs/derivations/gru.md (§6).
    """
    B, T, D = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    xp = backend.xp
    dtype = x.dtype
    batch = _batch_order(mask, B, T, dtype, lengths)
    order, m = batch.order, batch.m
    if order is None:
        inp = xp.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D) time-major
    else:
        inp = xp.ascontiguousarray(x.transpose(1, 0, 2)[:, order])  # and rows sorted
        if h0 is not None:
            h0 = h0[:, order]
    if h0 is None:
        h0 = xp.zeros((num_layers * dirs, B, H), dtype=dtype)
    drop = ()  # the dropout multipliers, time-major in the sorted row order
    if dropout_masks:
        drop = tuple(d.transpose(1, 0, 2) if order is None else d.transpose(1, 0, 2)[:, order]
                     for d in dropout_masks)
    inputs, directions, keys, h_n = [], [], [], []
    out = None
    for layer in range(num_layers):
        if layer > 0 and drop:
            inp = inp * drop[layer - 1]  # inverted dropout between the layers
        if layer == num_layers - 1 and order is None:
            out = xp.empty((B, T, H * dirs), dtype=dtype)
            out_tm = out.transpose(1, 0, 2)  # a (T, B, H·dirs) view of the batch-first output
        else:
            out_tm = xp.empty((T, B, H * dirs), dtype=dtype)
        x_p = batch.pack(inp)  # (N, D_k): the real positions only
        layer_caches, layer_keys = [], []
        for d in range(dirs):
            kw = param_names(layer, d == 1)
            W_ih, W_hh, b_ih, b_hh = (params[k] for k in kw)
            half = slice(0, 2 * H)  # the r and z rows, halved for σ(a) = 0.5 + 0.5 tanh(a/2)
            W_ih_s = W_ih.copy()
            W_ih_s[half] *= 0.5
            bias = b_ih.copy()
            bias[half] += b_hh[half]  # b_hr, b_hz join the input projection
            bias[half] *= 0.5
            W_hhT = W_hh.T.copy()  # a copy even when H = 1 (there W_hh.T is already contiguous)
            W_hhT[:, half] *= 0.5
            gi = xp.matmul(x_p, W_ih_s.T)  # (N, 3H): all steps in one product
            gi += bias
            hs, r, z, n, hn, r_hn, z_diff, h_last = _direction_forward(
                gi, h0[layer * dirs + d], W_hhT, b_hh[2 * H:], batch, d == 1)
            states, h_prev = (hs[:T], hs[1:]) if d == 1 else (hs[1:], hs[:T])
            o = out_tm[:, :, d * H:(d + 1) * H]
            if d == 1 and m is not None:  # out = 0 on padded steps: the reverse direction
                xp.multiply(states, m, out=o)  # left h0 at some (the step after a row's end)
            else:  # forward: the states of padded steps were never written, they are 0
                o[...] = states
            h_n.append(h_last)
            layer_caches.append(GRUDirectionCache(W_ih, W_hh, r, z, n, hn, r_hn, z_diff,
                                                  h_prev, d == 1))
            layer_keys.append(kw)
        inputs.append(x_p)
        directions.append(tuple(layer_caches))
        keys.append(tuple(layer_keys))
        inp = out_tm
    h_n = xp.stack(h_n)
    if order is not None:  # back to the caller's row order
        out = out_tm.transpose(1, 0, 2)[batch.inverse]
        h_n = h_n[:, batch.inverse]
    return out, h_n, GRUCache(tuple(inputs), tuple(directions), batch, tuple(keys), drop)


def _direction_backward(dout, dh_last, c: GRUDirectionCache, batch: GRUBatchOrder):
    """Backward through time of one layer/direction (the time loop of :func:`gru_backward`).

    Args:
        dout: (T, B, H) gradient of this direction's ``out`` (any strides; only the real steps
            are read), or None.
        dh_last: (B, H) gradient of the final state, or None.
        c: the direction's cache.
        batch: the row order; step t ran the rows ``[:batch.active[t]]``.

    Returns:
        G: (N, 4H) the gate gradients [da_n | da_r | da_z | dhn] of the real positions, packed
        as the cache (step t's at rows ``batch.offsets[t]`` onwards), laid out so that
        dgh = [da_r, da_z, dhn] = G[:, H:] (the order of W_hh's rows) and
        G[:, :3H] = [da_n, da_r, da_z] is dgi = [da_r, da_z, da_n] with its blocks rotated.
        dh0: (B, H) gradient of the initial state.
    """
    xp = backend.xp
    T, B, H = c.h_prev.shape
    dtype = c.h_prev.dtype
    active, offsets = batch.active, batch.offsets
    G = xp.empty((c.r.shape[0], 4 * H), dtype=dtype)
    carry = xp.zeros((B, H), dtype=dtype) if dh_last is None else dh_last.copy()
    dh, dh_z, dh_omz = (xp.empty((B, H), dtype=dtype) for _ in range(3))
    fused = step_kernels()[1] if backend.fused() else None
    for t in range(T) if c.reverse else range(T - 1, -1, -1):
        b = active[t]
        if b == 0:
            continue
        p = slice(offsets[t], offsets[t] + b)  # step t's rows of the packed arrays
        r, z, n, z_diff = c.r[p], c.z[p], c.n[p], c.z_diff[p]
        g = dh[:b]  # dh_t = dout_t + (dh_prev of the step after t)
        if dout is None:
            g[...] = carry[:b]
        else:
            xp.add(dout[t, :b], carry[:b], out=g)
        da_n, da_r, da_z, dhn = (G[p, i * H:(i + 1) * H] for i in range(4))
        if fused:  # the same math as below, in one kernel (see step_kernels)
            fused(g, r, z, n, c.hn[p], c.r_hn[p], z_diff, dh_z[:b], da_n, da_r, da_z, dhn)
            xp.matmul(G[p, H:], c.W_hh, out=carry[:b])
            carry[:b] += dh_z[:b]
            continue
        gz = xp.multiply(g, z, out=dh_z[:b])  # dh ⊙ z
        g_omz = xp.subtract(g, gz, out=dh_omz[:b])  # dh ⊙ (1 − z)
        xp.multiply(n, n, out=da_n)  # da_n = dh ⊙ (1 − z) ⊙ (1 − n²)
        xp.subtract(1, da_n, out=da_n)
        da_n *= g_omz
        xp.multiply(da_n, r, out=dhn)  # dhn = da_n ⊙ r
        xp.subtract(c.hn[p], c.r_hn[p], out=da_r)  # hn ⊙ (1 − r) = hn − r ⊙ hn
        da_r *= dhn  # da_r = da_n ⊙ hn ⊙ r ⊙ (1 − r) = dhn ⊙ hn ⊙ (1 − r)
        xp.multiply(z_diff, g_omz, out=da_z)  # da_z = dh ⊙ (h_prev − n) ⊙ z ⊙ (1 − z)
        xp.matmul(G[p, H:], c.W_hh, out=carry[:b])  # dh_prev = dgh W_hh + dh ⊙ z
        carry[:b] += gz
    return G, carry


def _rotate_blocks(a, k):
    """Rows ``k:`` then rows ``:k`` of ``a`` (moves the n block of a (3H, ...) array between
    the last place, r z n, and the first, n r z)."""
    return backend.xp.concatenate([a[k:], a[:k]])


def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`.

    Equals: minis2s.functional.gru.gru_backward (to rounding).

    Per layer/direction, the cell's backward runs through time in the opposite order of the
    forward (:func:`_direction_backward`), with dh_t = dout_t + (dh_prev from the step after
    t), in the factored form of docs/derivations/gru.md §6. The gate gradients of all steps
    are kept in one packed (N, 4H) buffer (the real positions only), so that after the loop::

        dW_ih = Σ_t dgi_tᵀ x_t        dx_t = dgi_t W_ih        db_ih = Σ_t Σ_b dgi_t
        dW_hh = Σ_t dgh_tᵀ h_prev_t   db_hh = Σ_t Σ_b dgh_t

    are one matrix product (or sum) each, with dgi = [da_r, da_z, da_n] and
    dgh = [da_r, da_z, dhn]. A row that is not running at step t (padding) is skipped: its
    gate gradients there are 0, its dout there is ignored (``out`` is the constant 0), and the
    gradient of its final state waits unchanged for its last real step.

    Args and results: those of the reference (dout (B, T, H·dirs) or None, dh_n (L·dirs, B, H)
    or None, this module's cache -> dx (B, T, D), dh0 (L·dirs, B, H), grads).

    Derivation: docs/derivations/gru.md (§2–§6).
    """
    num_layers, dirs = len(cache.inputs), len(cache.directions[0])
    T, B, H = cache.directions[0][0].h_prev.shape
    dtype = cache.inputs[0].dtype
    xp = backend.xp
    batch = cache.batch
    order = batch.order
    d_above = None if dout is None else dout.transpose(1, 0, 2)  # (T, B, H·dirs) view
    if order is not None:  # into the sorted row order of the forward
        d_above = None if dout is None else d_above[:, order]
        dh_n = None if dh_n is None else dh_n[:, order]
    grads = {}
    dh0 = xp.empty((num_layers * dirs, B, H), dtype=dtype)
    for layer in range(num_layers - 1, -1, -1):
        x_p = cache.inputs[layer]  # (N, D_k), packed
        dx_p = None
        for d in range(dirs):
            c = cache.directions[layer][d]
            dout_d = None if d_above is None else d_above[:, :, d * H:(d + 1) * H]
            idx = layer * dirs + d
            G, dh0[idx] = _direction_backward(dout_d, None if dh_n is None else dh_n[idx], c,
                                              batch)
            dgi_nrz = G[:, : 3 * H]  # [da_n, da_r, da_z]: dgi with its blocks rotated
            dgh = G[:, H:]  # [da_r, da_z, dhn]
            k_ih, k_hh, kb_ih, kb_hh = cache.keys[layer][d]
            grads[k_ih] = _rotate_blocks(dgi_nrz.T @ x_p, H)
            grads[k_hh] = dgh.T @ batch.pack(c.h_prev)
            colsum = G.sum(axis=0)
            grads[kb_ih] = _rotate_blocks(colsum[: 3 * H], H)
            grads[kb_hh] = colsum[H:]
            dx_d = dgi_nrz @ _rotate_blocks(c.W_ih, 2 * H)  # W_ih's rows in the order n, r, z
            if dx_p is None:
                dx_p = dx_d
            else:
                dx_p += dx_d
        d_above = batch.unpack(dx_p, B)  # (T, B, D_k), 0 where padded
        if layer > 0 and cache.drop:
            d_above = d_above * cache.drop[layer - 1]  # the dropout's backward
    if order is None:
        dx = xp.ascontiguousarray(d_above.transpose(1, 0, 2))
    else:  # back to the caller's row order
        dx = d_above.transpose(1, 0, 2)[batch.inverse]
        dh0 = dh0[:, batch.inverse]
    return dx, dh0, grads


# --------------------------------------------------------------------------------------------
# One step through a unidirectional stack (decoders)
# --------------------------------------------------------------------------------------------
class GRUStackStepCache(NamedTuple):
    cells: tuple  # per layer, its GRUCellCache
    keys: tuple  # per layer, the PyTorch names of (W_ih, W_hh, b_ih, b_hh)
    drop: tuple = ()  # drop[k−1]: (B, H) dropout multiplier of layer k's input, or ()


def gru_stack_step_forward(x_t, h, params, num_layers, dropout_masks=None):
    """One time step through a unidirectional stack of ``num_layers`` GRU cells (decoders):
    x_t (B, D), h (L, B, H) -> out_t (B, H), h_new (L, B, H), a :class:`GRUStackStepCache`.

    Equals: minis2s.functional.gru.gru_stack_step_forward (each layer is this module's
    :func:`gru_cell_forward`).
    """
    h_new = backend.xp.empty_like(h)
    cells, keys = [], []
    inp = x_t
    drop = tuple(dropout_masks) if dropout_masks else ()
    for layer in range(num_layers):
        if layer > 0 and drop:
            inp = inp * drop[layer - 1]  # inverted dropout between the layers
        kw = param_names(layer)
        h_new[layer], cell = gru_cell_forward(inp, h[layer], *(params[k] for k in kw))
        inp = h_new[layer]
        cells.append(cell)
        keys.append(kw)
    return h_new[num_layers - 1], h_new, GRUStackStepCache(tuple(cells), tuple(keys), drop)


def gru_stack_step_backward(dout_t, dh_new, cache: GRUStackStepCache):
    """Backward of :func:`gru_stack_step_forward`: dout_t (B, H) or None, dh_new (L, B, H) or
    None -> dx_t (B, D), dh (L, B, H), grads (PyTorch names).

    Equals: minis2s.functional.gru.gru_stack_step_backward.
    """
    xp = backend.xp
    L = len(cache.cells)
    B, H = cache.cells[0].h_prev.shape
    dtype = cache.cells[0].h_prev.dtype
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
        if layer > 0 and cache.drop:
            d_above = d_above * cache.drop[layer - 1]  # the dropout's backward
    return d_above, dh, grads
