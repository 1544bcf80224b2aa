"""The GRU encoder-decoder (Sutskever et al., 2014; Cho et al., 2014), the article's §2.1 and §3.1.

Forward pass for a batch src (B, S), tgt (B, T):

    x̄ = E_src[src]                                  (B, S, D)   source embeddings
    h̄, h_n = GRU_enc(x̄, mask = src ≠ PAD)          (B, S, H·dirs), (L·dirs, B, H)
    s_0 = h_n                  (unidirectional)     (L, B, H)   decoder initial state
    s_0 = tanh([h_n→; h_n←] W_b + b_b)  (bidirectional: the learned bridge)
    y_in = tgt[:, :-1],  y = tgt[:, 1:]             teacher forcing: the decoder reads the truth
    s_1..T−1 = GRU_dec(E_tgt[y_in], s_0)            (B, T−1, H)
    o = s W_o + b_o                                 (B, T−1, V)  logits
    L = mean over y ≠ PAD of −log softmax(o)[y]

Backward runs the same steps in reverse. Scheduled sampling (``forward(src, tgt,
use_gold=mask)``) runs the decoder step by step instead, through :meth:`Seq2Seq._step`, the step
that greedy and beam search call, feeding the model's own previous prediction where the mask is
False (docs/derivations/scheduled_sampling.md). Without attention the decoder sees the source only
through s_0: the whole input squeezed into one fixed-size state per layer, which is what attention
(:class:`minis2s.AttentionSeq2Seq`) relaxes.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend
from .. import init as initlib
from .._checks import positive_int
from ..constants import PAD
from ..fast import output as fast_output
from ..functional.activations import log_softmax
from ..layers import GRU, Embedding, Linear
from .base import FedInputs, Model, cross_entropy_backward, cross_entropy_forward

__all__ = ["Seq2Seq", "EncoderCache"]


class EncoderCache(NamedTuple):
    src_emb: object  # embedding cache of the source
    h_n: object  # (L·dirs, B, H) encoder final states
    bridge: object  # cache of the bridge Linear (bidirectional) or None
    s0: object  # (L, B, H) decoder initial state


class StepsCache(NamedTuple):
    """Cache of the step-by-step forward (scheduled sampling)."""

    enc: object  # EncoderCache
    emb: object  # EmbeddingCache of the ids fed (gold or predicted)
    steps: list  # one GRUStackStepCache per t
    out: object
    ce: object


class Seq2Seq(Model):
    """GRU encoder → final state → GRU decoder → Linear → softmax.

    Args:
        src_vocab_size, tgt_vocab_size: V_src and V_tgt (ids PAD=0, BOS=1, EOS=2, UNK=3 included).
        embed_dim: D. hidden_dim: H. num_layers: L, for the encoder and the decoder.
        bidirectional: a bidirectional encoder, whose final states are reduced to the decoder's
            size H by the learned bridge ``s_0 = tanh([h→; h←] W_b + b_b)``.
        dtype: "float32" (default) or "float64" (for gradient checks).
        seed: seeds the initialisation.
        dropout: the inverted-dropout rate in [0, 1) of every place; ``dropout_embed`` (the
            embedding outputs), ``dropout_hidden`` (between stacked GRU layers) and
            ``dropout_readout`` (the output layer's input) override it per place. Active only
            while training (:meth:`train`); docs/derivations/dropout.md.
        label_smoothing: ε in [0, 1) of the training loss (:meth:`set_label_smoothing`).
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, embed_dim=64, hidden_dim=128, num_layers=1,
                 bidirectional=False, dtype="float32", seed=0, *, dropout=0.0, dropout_embed=None,
                 dropout_hidden=None, dropout_readout=None, label_smoothing=0.0):
        super().__init__(dtype, seed)
        self.src_vocab_size = positive_int("src_vocab_size", src_vocab_size)
        self.tgt_vocab_size = positive_int("tgt_vocab_size", tgt_vocab_size)
        self.set_sizes(embed_dim, hidden_dim, num_layers, bidirectional)
        # the validated Python ints (a NumPy int would not survive the checkpoint's JSON)
        self._config = dict(src_vocab_size=self.src_vocab_size,
                            tgt_vocab_size=self.tgt_vocab_size, embed_dim=self.embed_dim,
                            hidden_dim=self.hidden_dim, num_layers=self.num_layers,
                            bidirectional=bidirectional, dtype=self.dtype,
                            seed=initlib.plain_seed(seed))
        self.set_dropout(dropout, embed=dropout_embed, hidden=dropout_hidden,
                         readout=dropout_readout)
        self.set_label_smoothing(label_smoothing)
        rng = initlib.as_rng(seed)
        self._build_encoder(rng)
        self._build_decoder(rng)

    # --- construction ----------------------------------------------------------------------
    def _build_encoder(self, rng):
        D, H, L, dt = self.embed_dim, self.hidden_dim, self.num_layers, self.dtype
        self.enc_dirs = 2 if self.bidirectional else 1
        self.src_embed = self.add_layer("src_embed", Embedding(self.src_vocab_size, D, dt, rng))
        self.encoder = self.add_layer("encoder", GRU(D, H, L, self.bidirectional, dt, rng))
        self.bridge = None
        if self.bidirectional:
            self.bridge = self.add_layer("bridge", Linear(2 * H, H, dtype=dt, seed=rng))

    def _build_decoder(self, rng):
        D, H, L, dt = self.embed_dim, self.hidden_dim, self.num_layers, self.dtype
        self.tgt_embed = self.add_layer("tgt_embed", Embedding(self.tgt_vocab_size, D, dt, rng))
        self.decoder = self.add_layer("decoder", GRU(D, H, L, False, dt, rng))
        self.out = self.add_layer("out", Linear(H, self.tgt_vocab_size, dtype=dt, seed=rng))

    # --- the encoder, shared with AttentionSeq2Seq -------------------------------------------
    @backend.device_inputs
    def encode(self, src):
        """src (B, S) -> encoder outputs h̄ (B, S, H·dirs), decoder initial state s_0 (L, B, H),
        and an :class:`EncoderCache`."""
        x, emb_cache = self.src_embed.step_forward(src)  # explicit cache: the embedding may be
        x = self._dropout("src_embed", x)  # shared with the decoder; dropout while training
        hbar, h_n = self._run_gru("encoder", self.encoder, x, None, src != PAD)
        bridge_cache = None
        if self.bridge is None:
            s0 = h_n
        else:
            L, H = self.num_layers, self.hidden_dim
            B = src.shape[0]
            # (L·2, B, H) -> (L, B, 2H): [h→; h←] of each layer side by side
            both = h_n.reshape(L, 2, B, H).transpose(0, 2, 1, 3).reshape(L, B, 2 * H)
            pre, bridge_cache = self.bridge.step_forward(both)
            s0 = backend.xp.tanh(pre)
        return hbar, s0, EncoderCache(emb_cache, h_n, bridge_cache, s0)

    @backend.device_inputs
    def encode_backward(self, dhbar, ds0, cache: EncoderCache):
        """Backward of :meth:`encode`: d h̄ (B, S, H·dirs) or None, d s_0 (L, B, H)."""
        if self.bridge is None:
            dh_n = ds0
        else:
            L, H = self.num_layers, self.hidden_dim
            B = ds0.shape[1]
            dpre = ds0 * (1 - cache.s0 * cache.s0)  # tanh' = 1 − s0²
            dboth = self.bridge.step_backward(dpre, cache.bridge)
            dh_n = dboth.reshape(L, B, 2, H).transpose(0, 2, 1, 3).reshape(2 * L, B, H)
        dx, _ = self.encoder.backward(dhbar, dh_n)
        self.src_embed.step_backward(self._dropout_backward("src_embed", dx), cache.src_emb)

    # --- the output layer and the loss over all steps (shared with AttentionSeq2Seq) ----------
    def _output_loss(self, r, y):
        """o = r W_o + b_o and L = the masked cross-entropy of y: r (B, T, ·), y (B, T) ->
        (L, out cache, loss cache).

        The fast tier (:mod:`minis2s.fast.output`) computes o on the real (non-PAD) target
        positions only, with the loss fused in; its one cache is returned twice. The reference
        tier is the textbook Linear, then the textbook loss. While training, r is first
        dropped out (the readout's dropout)."""
        r = self._dropout("readout", r)
        if backend.impl() == "fast":
            loss, cache = fast_output.readout_loss_forward(r, self.out.params["W"],
                                                           self.out.params["b"], y, y != PAD,
                                                           self.label_smoothing)
            return loss, cache, cache
        logits, out_cache = self.out.step_forward(r)
        loss, ce_cache = cross_entropy_forward(logits, y, y != PAD, self.label_smoothing)
        return loss, out_cache, ce_cache

    def _output_loss_backward(self, out_cache, ce_cache):
        """Backward of :meth:`_output_loss` (on the tier of its forward): -> dr like r; adds
        dW_o, db_o into ``grads``."""
        if isinstance(out_cache, fast_output.ReadoutLossCache):
            # W_o serves once per forward, and backward() zeroed its gradient: dW_o is
            # written straight into grads (the reference tier adds a new dW into it)
            dr, _, db = fast_output.readout_loss_backward(out_cache, dW_out=self.out.grads["W"])
            self.out.accumulate("b", db)
            return self._dropout_backward("readout", dr)
        dlogits = cross_entropy_backward(ce_cache)
        return self._dropout_backward("readout", self.out.step_backward(dlogits, out_cache))

    # --- training -----------------------------------------------------------------------------
    def _forward(self, src, tgt, use_gold=None):
        if use_gold is not None:
            return self._forward_steps(src, tgt, use_gold)
        _, s0, enc_cache = self.encode(src)
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        x, emb_cache = self.tgt_embed.step_forward(y_in)
        x = self._dropout("tgt_embed", x)
        s, _ = self._run_gru("decoder", self.decoder, x, s0, None)
        loss, out_cache, ce_cache = self._output_loss(s, y)
        self._cache = (enc_cache, emb_cache, out_cache, ce_cache)
        return loss

    def _backward(self):
        if isinstance(self._cache, StepsCache):
            return self._backward_steps()
        enc_cache, emb_cache, out_cache, ce_cache = self._cache
        ds = self._output_loss_backward(out_cache, ce_cache)
        dx, ds0 = self.decoder.backward(ds, None)
        self.tgt_embed.step_backward(self._dropout_backward("tgt_embed", dx), emb_cache)
        self.encode_backward(None, ds0, enc_cache)

    def _forward_steps(self, src, tgt, use_gold):
        """Scheduled sampling: step by step through :meth:`_step`, each input chosen by
        :class:`~minis2s.models.base.FedInputs` (gold, or the greedy prediction of the step
        before); then the output layer and the loss for all steps at once."""
        xp = backend.xp
        _, s, enc_cache = self.encode(src)
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        B, T = y_in.shape
        fed = FedInputs(y_in, use_gold)
        s_top = xp.empty((B, T, self.hidden_dim), dtype=self.dtype)
        steps = []
        d_emb = self._dropout_multiplier("tgt_embed", (B, T, self.embed_dim))  # the parallel
        d_hid = self._gru_dropout("decoder", self.decoder, B, T)  # path's masks, step by step
        for t in range(T):
            x_t = self.tgt_embed.params["W"][fed.at(t)]
            if d_emb is not None:
                x_t = x_t * d_emb[:, t]
            s_top[:, t], s, cache = self._step(x_t, s, self._at(d_hid, t))
            steps.append(cache)
            if fed.needs_prediction(t):
                fed.predict(self._step_log_probs(s_top[:, t]))
        _, emb_cache = self.tgt_embed.step_forward(fed.ids)  # the ids fed, for the backward
        loss, out_cache, ce_cache = self._output_loss(s_top, y)
        self._cache = StepsCache(enc_cache, emb_cache, steps, out_cache, ce_cache)
        return loss

    def _backward_steps(self):
        """Backward of :meth:`_forward_steps`: the steps in reverse, carrying ds back in time.
        A fed prediction is a constant: only its embedding row gets a gradient."""
        xp = backend.xp
        c = self._cache
        ds_top = self._output_loss_backward(c.out, c.ce)  # (B, T, H)
        dx = xp.empty(ds_top.shape[:2] + (self.embed_dim,), dtype=self.dtype)
        ds = None
        for t in range(len(c.steps) - 1, -1, -1):
            dx[:, t], ds = self.decoder.step_backward(ds_top[:, t], ds, c.steps[t])
        self.tgt_embed.step_backward(self._dropout_backward("tgt_embed", dx), c.emb)
        self.encode_backward(None, ds, c.enc)  # ds is now d s_0

    # --- the decoder step (scheduled-sampling training, greedy and beam search) ---------------
    def _step(self, x_t, s, dropout_masks=None):
        """One decoder step, the only place it is written: x_t (B, D) the embedded previous
        token, s (L, B, H) -> s_top (B, H) (the readout input), s_new (L, B, H), the GRU
        stack's step cache. ``dropout_masks``: the step's between-layer dropout multipliers
        (training only)."""
        return self.decoder.step_forward(x_t, s, dropout_masks)

    def _step_log_probs(self, r):
        """log p(y_t | y_<t, x) (B, V_tgt) from the readout input r (B, ·) of one step."""
        logits, _ = self.out.step_forward(r)
        return log_softmax(logits)

    # --- the per-step decoder interface -------------------------------------------------------
    def init_decoder(self, src):
        """Encode ``src`` and return the decoder state dict (batch on axis 0): ``s`` (B, L, H)."""
        _, s0, _ = self.encode(src)
        return {"s": s0.transpose(1, 0, 2)}

    @backend.device_inputs
    def decode_step(self, state, y_prev):
        """One decoder step: y_prev (B,) ids -> log p(y_t | y_<t, x) (B, V_tgt), new state."""
        x = self.tgt_embed.params["W"][y_prev]
        s_top, s_new, _ = self._step(x, state["s"].transpose(1, 0, 2))
        return self._step_log_probs(s_top), {"s": s_new.transpose(1, 0, 2)}
