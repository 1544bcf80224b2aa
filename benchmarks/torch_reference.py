"""PyTorch twins of the minis2s models, for benchmarks and parity checks only.

PyTorch is never a dependency of minis2s: this module is imported only by benchmarks (and tests
that skip without torch). Each twin computes the same function as its minis2s model, and
``copy_to_minis2s`` copies its weights into a minis2s model so both start from identical params.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD = 0


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


def gru_state(gru):
    return {k: v.detach().numpy() for k, v in gru.state_dict().items()}


def copy_to_minis2s(tm, model):
    """Copy the twin's weights into the minis2s ``model`` (in place)."""
    from minis2s import backend

    def put(name, value):
        p = model.params[name]
        p[...] = backend.asarray(np.ascontiguousarray(value), dtype=p.dtype)

    put("src_embed.W", tm.src_embed.weight.detach().numpy())
    put("tgt_embed.W", tm.tgt_embed.weight.detach().numpy())
    model.encoder.load_torch_weights(gru_state(tm.encoder))
    model.decoder.load_torch_weights(gru_state(tm.decoder))
    put("out.W", tm.out.weight.detach().numpy().T)
    put("out.b", tm.out.bias.detach().numpy())
