"""PyTorch twins of the minis2s models, for benchmarks and parity checks only.

PyTorch is never a dependency of minis2s: this module is imported only by benchmarks (and tests
that skip without torch). Each twin computes the same function as its minis2s model with standard
torch ops and autograd, and a copy function puts its weights into a minis2s model so both start
from identical params:

* :class:`TorchSeq2Seq` and :func:`copy_to_minis2s`: ``minis2s.Seq2Seq`` and
  ``minis2s.AttentionSeq2Seq(attention="dot")`` (unidirectional, no input feeding), with
  :class:`TorchGreedy`, its greedy decoding;
* :class:`TorchPointerGenerator` and :func:`copy_pg_to_minis2s`: ``minis2s.PointerGenerator``
  (with or without coverage).

Each twin's ``minis2s_state(grad=False)`` gives its weights (or, with ``grad=True``, their
``.grad``) as NumPy arrays under the minis2s parameter names and layouts (a Linear's ``W`` is
``weight.T``), which is what the copy functions write and what the parity tests compare.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, BOS, EOS = 0, 1, 2
UNK = 3  # minis2s.constants.UNK: the pointer-generator looks OOV ids (>= V) up as UNK


def _np(t, grad=False):
    """A tensor's value (or its .grad; zeros when it has none) as a NumPy array."""
    if grad:
        return (np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().cpu().numpy())
    return t.detach().cpu().numpy()


def _gru_state(prefix, gru, grad=False):
    return {f"{prefix}.{k}": _np(v, grad) for k, v in gru.named_parameters()}


def _linear_state(prefix, lin, grad=False):
    return {f"{prefix}.W": _np(lin.weight, grad).T, f"{prefix}.b": _np(lin.bias, grad)}


def _put_all(model, state):
    """Write ``state`` (minis2s names -> NumPy arrays) into ``model.params`` in place; the two
    must have the same keys and shapes."""
    from minis2s import backend

    missing = sorted(set(model.params) ^ set(state))
    if missing:
        raise ValueError(f"the twin and the model disagree on the parameters {missing}")
    for name, value in state.items():
        p = model.params[name]
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{name}: the twin has shape {tuple(value.shape)}, the model "
                             f"{tuple(p.shape)}")
        p[...] = backend.asarray(np.ascontiguousarray(value), dtype=p.dtype)


class TorchSeq2Seq(nn.Module):
    """Embedding → GRU encoder (packed) → GRU decoder (teacher forcing) → [attention] → Linear.

    With ``attention="dot"``: e = s h̄ᵀ masked, α = softmax(e), c = α h̄, logits = [c; s] W + b,
    as ``minis2s.AttentionSeq2Seq(attention="dot", input_feeding=False)`` with a
    unidirectional encoder. With ``attention=None``: logits = s W + b, as ``minis2s.Seq2Seq``.
    """

    def __init__(self, src_vocab, tgt_vocab, embed_dim, hidden_dim, attention="dot"):
        super().__init__()
        self.attention = attention
        self.src_embed = nn.Embedding(src_vocab, embed_dim)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim)
        self.decoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        readout = 2 * hidden_dim if attention else hidden_dim
        self.out = nn.Linear(readout, tgt_vocab)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)

    def forward(self, src, tgt):
        lengths = (src != PAD).sum(1)
        packed = pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        enc_packed, h_n = self.encoder(packed)
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        s, _ = self.decoder(self.tgt_embed(y_in), h_n)
        if self.attention == "dot":
            enc_out, _ = pad_packed_sequence(enc_packed, batch_first=True,
                                             total_length=src.shape[1])
            e = torch.bmm(s, enc_out.transpose(1, 2))
            e = e.masked_fill((src == PAD)[:, None, :], float("-inf"))
            alpha = torch.softmax(e, dim=-1)
            c = torch.bmm(alpha, enc_out)
            r = torch.cat([c, s], dim=-1)
        else:
            r = s
        logits = self.out(r)
        return self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def minis2s_state(self, grad=False):
        """Weights (or gradients) under the minis2s names and layouts."""
        state = {"src_embed.W": _np(self.src_embed.weight, grad),
                 "tgt_embed.W": _np(self.tgt_embed.weight, grad)}
        state.update(_gru_state("encoder", self.encoder, grad))
        state.update(_gru_state("decoder", self.decoder, grad))
        state.update(_linear_state("out", self.out, grad))
        return state


def gru_state(gru):
    return {k: v.detach().numpy() for k, v in gru.state_dict().items()}


def copy_to_minis2s(tm, model):
    """Copy the :class:`TorchSeq2Seq` twin's weights into the minis2s ``model`` (in place)."""
    _put_all(model, tm.minis2s_state())


class TorchGreedy:
    """Greedy decoding of a :class:`TorchSeq2Seq` behind minis2s's ``generate`` interface, as
    ``minis2s.decoding.greedy_decode``: from BOS, the most probable token with PAD and BOS
    excluded, fed back, until EOS or ``max_len`` tokens; each row's ids without EOS."""

    def __init__(self, twin):
        self.twin = twin

    def generate(self, src, max_len=50, beam_size=None):
        if beam_size not in (None, 1):
            raise ValueError("the twin decodes greedily only (beam_size None or 1)")
        m = self.twin
        with torch.no_grad():
            src = torch.from_numpy(np.asarray(src)).long()
            packed = pack_padded_sequence(m.src_embed(src), (src != PAD).sum(1), batch_first=True,
                                          enforce_sorted=False)
            enc, h = m.encoder(packed)
            enc, _ = pad_packed_sequence(enc, batch_first=True, total_length=src.shape[1])
            y = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
            steps = []
            for _ in range(max_len):
                s, h = m.decoder(m.tgt_embed(y), h)
                if m.attention == "dot":
                    e = torch.bmm(s, enc.transpose(1, 2))
                    e = e.masked_fill((src == PAD)[:, None, :], float("-inf"))
                    s = torch.cat([torch.bmm(torch.softmax(e, -1), enc), s], -1)
                logits = m.out(s)
                logits[..., [PAD, BOS]] = float("-inf")
                y = logits.argmax(-1)
                steps.append(y[:, 0])
            ids = torch.stack(steps, 1).numpy()
        return [row[:row.index(EOS)] if EOS in row else row for row in ids.tolist()]


class TorchPointerGenerator(nn.Module):
    """The twin of ``minis2s.PointerGenerator`` (See et al. 2017, on GRUs), with coverage.

    One vocabulary of size V and one embedding E for source and decoder inputs; ids >= V (the
    row's OOVs) are looked up as UNK. With y_in = tgt[:, :-1], y = tgt[:, 1:]:

        h, h_n = GRU_enc(E[src])                  bidirectional nn.GRU over packed sequences
        s_0 = tanh([h_n→; h_n←] W_b + b_b)        (the bridge; unidirectional: s_0 = h_n)
        for t:  s_t = GRU_dec(E[y_in_t], s_{t−1})     (torch.gru_cell on the nn.GRU's weights)
                e_i = vᵀ tanh(h_i W_h + s_t W_s + c_i w_c + b_attn),  a = masked softmax(e)
                c ← c + a                                            (coverage; c starts at 0)
        h*_t = Σ_i a_i h_i,   P_vocab = softmax(out(out_hidden([s_t; h*_t])))
        p_gen = σ(h*_t·w_h + s_t·w_s + x_t·w_x + b_ptr)
        P(y) = p_gen P_vocab(y) + (1 − p_gen) P_copy(y),  P_copy = scatter_add_ of a over src
        loss = mean over non-PAD y of −log P(y) + λ · mean over non-PAD y of Σ_i min(a_i, c_i)

    log P(y) is taken stably as logaddexp(log σ(l) + log_softmax[y], log σ(−l) + log P_copy(y))
    (each branch −inf where its probability is 0, and P_copy of an OOV target floored at the
    dtype's smallest normal number), exactly as ``minis2s.functional.pointer.pointer_nll_forward``.

    Parameter layouts follow minis2s where they are raw parameters (``W_h`` (Hs, A), ``W_s``
    (H, A), ``w_c``, ``b_attn``, ``v`` (A,), ``w_h`` (Hs,), ``w_s`` (H,), ``w_x`` (D,),
    ``b_ptr`` (1,)); ``bridge``, ``out_hidden`` and ``out`` are nn.Linear (weight = W.T).
    """

    def __init__(self, vocab_size, embed_dim=64, hidden_dim=128, num_layers=1,
                 bidirectional=True, attention_dim=None, coverage=True, cov_loss_weight=1.0):
        super().__init__()
        V, D, H, L = vocab_size, embed_dim, hidden_dim, num_layers
        A = H if attention_dim is None else attention_dim
        dirs = 2 if bidirectional else 1
        Hs = H * dirs
        self.vocab_size, self.hidden_dim, self.num_layers = V, H, L
        self.bidirectional, self.coverage, self.cov_loss_weight = (
            bidirectional, coverage, float(cov_loss_weight))
        self.embed = nn.Embedding(V, D)
        self.encoder = nn.GRU(D, H, L, batch_first=True, bidirectional=bidirectional)
        self.bridge = nn.Linear(2 * H, H) if bidirectional else None
        self.decoder = nn.GRU(D, H, L, batch_first=True)

        def param(*shape, fan_in):
            bound = fan_in**-0.5
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

        self.W_h = param(Hs, A, fan_in=Hs)
        self.W_s = param(H, A, fan_in=H)
        self.w_c = nn.Parameter(torch.zeros(A))  # as minis2s: coverage starts neutral
        self.b_attn = nn.Parameter(torch.zeros(A))
        self.v = param(A, fan_in=A)
        self.out_hidden = nn.Linear(H + Hs, H)
        self.out = nn.Linear(H, V)
        self.w_h = param(Hs, fan_in=Hs)
        self.w_s = param(H, fan_in=H)
        self.w_x = param(D, fan_in=D)
        self.b_ptr = nn.Parameter(torch.zeros(1))

    def _unk(self, ids):
        return ids.masked_fill(ids >= self.vocab_size, UNK)

    def _decoder_step(self, x_t, s):
        """One step of the decoder stack: x_t (B, D), s (L, B, H) -> s_new (L, B, H)."""
        new, inp = [], x_t
        for layer in range(self.num_layers):
            k = f"l{layer}"
            inp = torch.gru_cell(inp, s[layer], getattr(self.decoder, f"weight_ih_{k}"),
                                 getattr(self.decoder, f"weight_hh_{k}"),
                                 getattr(self.decoder, f"bias_ih_{k}"),
                                 getattr(self.decoder, f"bias_hh_{k}"))
            new.append(inp)
        return torch.stack(new)

    def forward(self, src, tgt):
        """src (B, S), tgt (B, T + 1) int64 extended ids, PAD-padded -> the scalar loss."""
        V, H, L = self.vocab_size, self.hidden_dim, self.num_layers
        B, S = src.shape
        mask = src != PAD
        packed = pack_padded_sequence(self.embed(self._unk(src)), mask.sum(1).cpu(),
                                      batch_first=True, enforce_sorted=False)
        enc_packed, h_n = self.encoder(packed)
        enc_out, _ = pad_packed_sequence(enc_packed, batch_first=True, total_length=S)
        if self.bridge is not None:  # (L·2, B, H) -> (L, B, 2H): [h→; h←] of each layer
            both = h_n.reshape(L, 2, B, H).permute(0, 2, 1, 3).reshape(L, B, 2 * H)
            s = torch.tanh(self.bridge(both))
        else:
            s = h_n
        keys = enc_out @ self.W_h  # (B, S, A), once per sequence
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        T = y.shape[1]
        x = self.embed(self._unk(y_in))  # (B, T, D)
        c = enc_out.new_zeros(B, S)
        s_tops, alphas, covs = [], [], []
        for x_t in x.unbind(1):  # unbind: one gradient stack, not a zero-filled (B, T, D) per t
            s = self._decoder_step(x_t, s)
            feat = keys + (s[-1] @ self.W_s + self.b_attn)[:, None, :]
            if self.coverage:
                feat = feat + c[:, :, None] * self.w_c
            e = torch.tanh(feat) @ self.v
            alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
            s_tops.append(s[-1])
            alphas.append(alpha)
            if self.coverage:
                covs.append(c)
                c = c + alpha
        s_top = torch.stack(s_tops, 1)  # (B, T, H)
        alpha = torch.stack(alphas, 1)  # (B, T, S)
        context = alpha @ enc_out  # (B, T, Hs)
        logits = self.out(self.out_hidden(torch.cat([s_top, context], -1)))  # (B, T, V)
        l = context @ self.w_h + s_top @ self.w_s + x @ self.w_x + self.b_ptr  # p_gen's logit
        # the generation branch: log p_gen + log P_vocab(y), −inf for an OOV target
        in_vocab = y < V
        logp_vocab = torch.log_softmax(logits, -1).gather(
            2, y.masked_fill(~in_vocab, 0)[..., None]).squeeze(-1)
        neg_inf = logits.new_tensor(float("-inf"))
        log_gen = torch.where(in_vocab, F.logsigmoid(l) + logp_vocab, neg_inf)
        # the copy branch: P_copy over the extended vocabulary, by scatter_add_ of the attention
        n_ext = max(V, int(src.max()) + 1, int(y.max()) + 1)
        P_copy = alpha.new_zeros(B, T, n_ext).scatter_add_(
            2, src[:, None, :].expand(B, T, S), alpha)
        P_copy = P_copy.gather(2, y[..., None]).squeeze(-1)
        tiny = torch.finfo(alpha.dtype).tiny
        P_copy = torch.where(~in_vocab & (P_copy < tiny), alpha.new_tensor(tiny), P_copy)
        positive = P_copy > 0
        log_copy = torch.where(positive, F.logsigmoid(-l) + torch.log(
            torch.where(positive, P_copy, torch.ones_like(P_copy))), neg_inf)
        log_P = torch.logaddexp(log_gen, log_copy)
        w = (y != PAD).to(alpha.dtype)
        n = w.sum().clamp(min=1)
        loss = -(log_P * w).sum() / n
        if self.coverage:
            cov = torch.stack(covs, 1)  # (B, T, S), c^t before adding a^t
            loss = loss + self.cov_loss_weight * (
                (torch.minimum(alpha, cov).sum(-1) * w).sum() / n)
        return loss

    def minis2s_state(self, grad=False):
        """Weights (or gradients) under the minis2s PointerGenerator names and layouts."""
        state = {"src_embed.W": _np(self.embed.weight, grad)}
        state.update(_gru_state("encoder", self.encoder, grad))
        if self.bridge is not None:
            state.update(_linear_state("bridge", self.bridge, grad))
        state.update(_gru_state("decoder", self.decoder, grad))
        for name in ("W_h", "W_s", "w_c", "b_attn", "v"):
            state[f"attn.{name}"] = _np(getattr(self, name), grad)
        state.update(_linear_state("out_hidden", self.out_hidden, grad))
        state.update(_linear_state("out", self.out, grad))
        for name in ("w_h", "w_s", "w_x", "b_ptr"):
            state[f"ptr.{name}"] = _np(getattr(self, name), grad)
        return state


def copy_pg_to_minis2s(twin, model):
    """Copy the :class:`TorchPointerGenerator` twin's weights into the minis2s
    ``PointerGenerator`` ``model`` (in place); the two must have the same sizes."""
    _put_all(model, twin.minis2s_state())
