"""The attention encoder-decoder (Luong et al., 2015), the article's §2.2 and §3.1 (2).

The encoder is :class:`minis2s.Seq2Seq`'s (embedding → GRU → h̄, and s_0 through the bridge
when bidirectional). The decoder attends to every encoder output at every step. With
y_in = tgt[:, :-1] (teacher forcing) and y = tgt[:, 1:]:

    h̄ (B, S, M)   encoder outputs, M = H·dirs; or h̄ P (B, S, H) when a dot/cosine score
                   meets a bidirectional encoder (see "Sizes" below)
    s_t            decoder GRU output (top layer) at step t        (B, T, H)
    e_ts = score(s_t, h̄_s)                                        (B, T, S)
    α_t = softmax over the non-PAD source positions s of e_t       (B, T, S), exactly 0 on PAD
    c_t = Σ_s α_ts h̄_s                                            (B, T, M)
    r_t = [c_t; s_t]                                               (B, T, M + H)
    o_t = r_t W_o + b_o,  p(y_t | y_<t, x) = softmax(o_t)          (B, T, V)
    L = mean over y ≠ PAD of −log p(y_t)

The article's four steps (§2.2) are these methods:

1. **Transform the encoder states** (once per source sequence): :meth:`transform_encoder_states`
   — the optional projection P, then the score's keys k (``REGISTRY[score].keys`` of
   :mod:`minis2s.functional.attention`), kept in a :class:`~minis2s.models.base.Memory`.
2. **Compute the attention weights** and 3. **weight the encoder states**: :meth:`attend`
   — the score e, the masked softmax α and the context c
   (:func:`minis2s.functional.attention._attend`), for any number of steps T.
4. **Decode with the result**: :meth:`readout` — r = [c; s] and the output Linear.

Two ways through the decoder, one set of pieces:

- **All steps at once** (``input_feeding=False``, the default, and the fast path): the decoder GRU
  runs over the whole target in one call (its inputs do not depend on attention), then steps 2–3
  run for all T steps at once as batched matmuls, then one Linear and one cross-entropy.
- **Step by step**: :meth:`_step` is the ONE place where a decoder step is written (embedded
  input [+ fed vector] → GRU step → attend → r_t). Training with input feeding or with
  scheduled sampling (``forward(src, tgt, use_gold=mask)``: some inputs are the model's own
  greedy prediction of the step before; docs/derivations/scheduled_sampling.md) loops over it,
  and :meth:`decode_step` (greedy and beam search) calls it once per generated token. Step 1's
  keys are computed once per source sequence and reused by every step.

Input feeding (Luong §3.3, ``input_feeding=True``): the previous step's attentional vector, here
the readout input r_{t−1} = [c_{t−1}; s_{t−1}] (the vector the output layer reads), is
concatenated to the next step's embedded input: x_t = [E y_{t−1}; r_{t−1}], with r_0 = 0. The
decoder then sees what it attended to before, and training has to go step by step.

Sizes: a bidirectional encoder gives h̄ of size 2H, but the dot and cosine scores compare s_t and
h̄_s directly and need equal sizes. The model then learns a projection P (2H, H) (a
``Linear`` without bias, ``enc_proj``, so padded positions stay exactly 0), applied once per
sequence as part of step 1, and uses h̄ P as the memory for both the scores and the context. The
general and additive scores handle different sizes with their own weights and attend to h̄
itself (M = 2H). A unidirectional encoder never needs P.

Parameters: those of Seq2Seq's encoder (``src_embed``, ``encoder``, ``bridge``), ``enc_proj``
(when needed), the score's ``attn.*`` (none for dot; ``attn.W`` for general; ``attn.W1``,
``attn.W2``, ``attn.v`` for additive; ``attn.scale`` for cosine), ``tgt_embed``, ``decoder``
(input size D, or D + M + H with input feeding) and ``out`` (M + H → V).

Derivations: docs/derivations/attention.md (steps 1–3), docs/derivations/gru.md,
docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend
from .._checks import positive_int
from ..constants import PAD
from ..functional import attention as F_att
from ..functional.activations import log_softmax
from ..layers import GRU, Embedding, Linear
from .base import FedInputs, Memory
from .seq2seq import Seq2Seq

__all__ = ["AttentionSeq2Seq", "Memory"]


class StepCache(NamedTuple):
    """Cache of one decoder step (:meth:`AttentionSeq2Seq._step`)."""

    gru: object  # GRUStackStepCache of the decoder stack
    attention: F_att.AttentionCache  # steps 2–3 at this step (T = 1)


class ParallelCache(NamedTuple):
    """Cache of the all-steps-at-once forward."""

    enc: object  # EncoderCache
    proj: object  # LinearCache of enc_proj, or None
    memory: Memory
    emb: object  # EmbeddingCache of y_in
    attention: F_att.AttentionCache  # steps 2–3 for all T at once
    alpha: object  # (B, T, S)
    out: object  # LinearCache of the readout (fast tier: fast.output.ReadoutLossCache)
    ce: object  # CrossEntropyCache (fast tier: the same ReadoutLossCache)


class StepsCache(NamedTuple):
    """Cache of the step-by-step forward (input feeding)."""

    enc: object
    proj: object
    memory: Memory
    emb: object
    x: object  # (B, T, D) embedded decoder inputs
    steps: list  # one StepCache per t
    alpha: object  # (B, T, S)
    out: object
    ce: object


class AttentionSeq2Seq(Seq2Seq):
    """GRU encoder → attention over its outputs at every decoder step → [c; s] → Linear → softmax.

    Args:
        src_vocab_size, tgt_vocab_size: V_src and V_tgt (ids PAD=0, BOS=1, EOS=2, UNK=3 included).
        embed_dim: D. hidden_dim: H. num_layers: L, for the encoder and the decoder.
        bidirectional: a bidirectional encoder (h̄ of size 2H; see the module docstring for how
            the dot and cosine scores deal with it).
        attention: the score, one of ``"dot"``, ``"general"``, ``"additive"``, ``"cosine"``.
        input_feeding: feed r_{t−1} = [c_{t−1}; s_{t−1}] into the next decoder step (Luong);
            training then runs step by step (slower).
        dtype: "float32" (default) or "float64" (for gradient checks).
        seed: seeds the initialisation.
        attention_dim: A, the hidden size of the additive score (default H); additive only.
        dropout, dropout_embed, dropout_hidden, dropout_readout: inverted-dropout rates, as in
            :class:`~minis2s.Seq2Seq`; the readout's dropout acts on r = [c; s].
        label_smoothing: ε in [0, 1) of the training loss, as in :class:`~minis2s.Seq2Seq`.
    """

    trace_keys = ("alpha",)

    def __init__(self, src_vocab_size, tgt_vocab_size, embed_dim=64, hidden_dim=128, num_layers=1,
                 bidirectional=False, attention="dot", input_feeding=False, dtype="float32",
                 seed=0, *, attention_dim=None, dropout=0.0, dropout_embed=None,
                 dropout_hidden=None, dropout_readout=None, label_smoothing=0.0):
        if not isinstance(attention, str) or attention not in F_att.SCORES:
            raise ValueError(f"attention must be one of {F_att.SCORES}; got {attention!r}")
        if not isinstance(input_feeding, bool):
            raise TypeError(f"input_feeding must be a bool; got {input_feeding!r}")
        if attention_dim is not None:
            attention_dim = positive_int("attention_dim", attention_dim)
            if attention != "additive":
                raise ValueError(f"attention_dim is the additive score's hidden size; it must be "
                                 f"None for attention={attention!r}; got {attention_dim}")
        self.attention = attention
        self.input_feeding = input_feeding
        self.attention_dim = attention_dim
        super().__init__(src_vocab_size, tgt_vocab_size, embed_dim, hidden_dim, num_layers,
                         bidirectional, dtype, seed, dropout=dropout, dropout_embed=dropout_embed,
                         dropout_hidden=dropout_hidden, dropout_readout=dropout_readout)
        cfg = self._config
        self._config = dict(
            src_vocab_size=cfg["src_vocab_size"], tgt_vocab_size=cfg["tgt_vocab_size"],
            embed_dim=cfg["embed_dim"], hidden_dim=cfg["hidden_dim"],
            num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
            attention=attention, input_feeding=input_feeding, dtype=cfg["dtype"],
            seed=cfg["seed"], attention_dim=attention_dim,
        )
        self._config.update(self.dropout_config())
        self.set_label_smoothing(label_smoothing)

    # --- construction ----------------------------------------------------------------------
    def _build_decoder(self, rng):
        D, H, L, dt = self.embed_dim, self.hidden_dim, self.num_layers, self.dtype
        M = H * self.enc_dirs
        self.enc_proj = None
        if self.attention in ("dot", "cosine") and M != H:
            self.enc_proj = self.add_layer("enc_proj", Linear(M, H, bias=False, dtype=dt, seed=rng))
            M = H
        #: M, the size of the memory h̄ that the decoder attends to
        self.memory_dim = M
        #: the size of r_t = [c_t; s_t], the readout input (and the fed vector)
        self.readout_dim = M + H
        feed = self.readout_dim if self.input_feeding else 0
        self.tgt_embed = self.add_layer("tgt_embed", Embedding(self.tgt_vocab_size, D, dt, rng))
        self.decoder = self.add_layer("decoder", GRU(D + feed, H, L, False, dt, rng))
        self.out = self.add_layer("out", Linear(self.readout_dim, self.tgt_vocab_size,
                                                dtype=dt, seed=rng))
        A = self.attention_dim if self.attention == "additive" else None
        #: the score's parameters under the functional API's names ({"W": ...}), the same
        #: arrays as ``params["attn.W"]`` etc.
        self.score_params = {}
        for name, value in F_att.init_score_params(self.attention, H, M, A, dt, rng).items():
            self.score_params[name] = self.add_param(f"attn.{name}", value)

    def _add_score_grads(self, dparams):
        for k, g in dparams.items():
            self.grads[f"attn.{k}"] += g

    # --- step 1: transform the encoder states -------------------------------------------------
    @backend.device_inputs
    def transform_encoder_states(self, hbar, src):
        """Step 1 (once per source sequence): the memory h̄ and the score's keys.

        Args:
            hbar: (B, S, H·dirs) encoder outputs (0 at padded positions).
            src: (B, S) source ids (for the mask); every row needs a real token.

        Returns:
            A :class:`~minis2s.models.base.Memory` (hbar (B, S, M), keys (B, S, K), mask
            (B, S)) and the projection's cache (None without ``enc_proj``).
        """
        _checks.features("hbar", hbar, self.hidden_dim * self.enc_dirs, self.dtype,
                         "(B, S, H·dirs)")
        src = _checks.int_array("src", src)
        _checks.source_mask(src != PAD, *src.shape, name="src")
        return self._memory(hbar, src)

    def _memory(self, hbar, src):
        """:meth:`transform_encoder_states`, unchecked."""
        proj_cache = None
        if self.enc_proj is not None:
            hbar, proj_cache = self.enc_proj.step_forward(hbar)  # h̄ P: (B, S, 2H) -> (B, S, H)
        keys = F_att.REGISTRY[self.attention].keys(hbar, self.score_params)
        return Memory(hbar, keys, src != PAD), proj_cache

    def transform_encoder_states_backward(self, dhbar, dkeys, memory, proj_cache):
        """Backward of :meth:`transform_encoder_states`: d h̄ (B, S, M) reaching the memory
        directly (through the context) and d keys -> d enc_out (B, S, H·dirs)."""
        dhbar_k, dparams = F_att.REGISTRY[self.attention].keys_backward(dkeys, memory.hbar,
                                                                         self.score_params)
        self._add_score_grads(dparams)
        dhbar = dhbar + dhbar_k
        if self.enc_proj is None:
            return dhbar
        return self.enc_proj.step_backward(dhbar, proj_cache)

    def _encode_memory(self, src):
        hbar, s0, enc_cache = self.encode(src)
        memory, proj_cache = self._memory(hbar, src)
        return memory, s0, enc_cache, proj_cache

    # --- steps 2 and 3: attention weights and context ---------------------------------------
    @backend.device_inputs
    def attend(self, s, memory: Memory):
        """Steps 2–3: scores of s against every key, masked softmax, context.

        Args:
            s: (B, T, H) decoder outputs (T = 1 for one step).
            memory: from :meth:`transform_encoder_states`; its keys are reused, not recomputed.

        Returns:
            c (B, T, M), alpha (B, T, S) (exactly 0 on PAD, rows sum to 1), and the
            :class:`~minis2s.functional.attention.AttentionCache`.
        """
        return F_att._attend(s, memory.hbar, memory.keys, memory.mask, self.attention,
                             self.score_params)

    # --- step 4: decode with the result ---------------------------------------------------------
    @staticmethod
    @backend.device_inputs
    def attentional_vector(c, s):
        """Step 4, first half: r = [c; s], (..., M) and (..., H) -> (..., M + H)."""
        return backend.xp.concatenate([c, s], axis=-1)

    @backend.device_inputs
    def readout(self, r):
        """Step 4, second half: logits o = r W_o + b_o, (..., M + H) -> (..., V), and a cache."""
        return self.out.step_forward(r)

    def _step_log_probs(self, r):
        """Step 4 and the softmax of one step: log p(y_t | y_<t, x) (B, V) from r_t (B, M + H)
        (decode_step, and the predictions that scheduled sampling feeds back)."""
        logits, _ = self.readout(r)
        return log_softmax(logits)

    # --- the decoder step (training with input feeding, greedy and beam search) --------------
    def _step(self, x_t, s, feed, memory: Memory, dropout_masks=None):
        """One decoder step, the only place it is written.

        Args:
            x_t: (B, D) embedded previous token. s: (L, B, H) decoder states.
            feed: (B, M + H) the previous attentional vector r_{t−1} (input feeding), else None.
            memory: the step-1 :class:`~minis2s.models.base.Memory` of the batch.
            dropout_masks: the step's between-layer dropout multipliers (training only).

        Returns:
            r_t (B, M + H) the readout input, s_new (L, B, H), alpha_t (B, S), a
            :class:`StepCache`.
        """
        x = x_t if feed is None else backend.xp.concatenate([x_t, feed], axis=1)
        s_top, s_new, gru_cache = self.decoder.step_forward(x, s, dropout_masks)
        c, alpha, att_cache = self.attend(s_top[:, None, :], memory)  # steps 2–3, T = 1
        r = self.attentional_vector(c[:, 0], s_top)
        return r, s_new, alpha[:, 0], StepCache(gru_cache, att_cache)

    def _step_backward(self, dr, ds_new, cache: StepCache):
        """Backward of :meth:`_step`: dr (B, M + H), ds_new (L, B, H) or None ->
        (dx_t (B, D), dfeed (B, M + H) or None, ds (L, B, H), dhbar (B, S, M), dkeys, dparams).

        It stops at the keys of step 1 (whose backward runs once per sequence); the decoder's
        weight gradients are added into ``grads`` by the layer."""
        M = self.memory_dim
        dc, ds_top = dr[:, :M], dr[:, M:]
        ds_att, dhbar, dkeys, dparams = F_att._attend_backward(dc[:, None, :], None,
                                                               cache.attention)
        dx, ds = self.decoder.step_backward(ds_top + ds_att[:, 0], ds_new, cache.gru)
        D = self.embed_dim
        dfeed = dx[:, D:] if self.input_feeding else None
        return dx[:, :D], dfeed, ds, dhbar, dkeys, dparams

    # --- training -----------------------------------------------------------------------------
    def _forward(self, src, tgt, use_gold=None):
        if self.input_feeding or use_gold is not None:
            return self._forward_steps(src, tgt, use_gold)
        return self._forward_parallel(src, tgt)

    def _backward(self):
        if isinstance(self._cache, StepsCache):
            self._backward_steps()
        else:
            self._backward_parallel()

    def _forward_parallel(self, src, tgt):
        """All decoder steps at once (no input feeding): one GRU call, steps 2–3 as batched
        matmuls over all T, one Linear and one cross-entropy."""
        memory, s0, enc_cache, proj_cache = self._encode_memory(src)  # step 1
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        x, emb_cache = self.tgt_embed.step_forward(y_in)
        x = self._dropout("tgt_embed", x)  # while training
        s, _ = self._run_gru("decoder", self.decoder, x, s0, None)  # (B, T, H)
        c, alpha, att_cache = self.attend(s, memory)  # steps 2–3 for every t at once
        # step 4 and the loss (the fast tier: on the real target tokens only)
        loss, out_cache, ce_cache = self._output_loss(self.attentional_vector(c, s), y)
        self._cache = ParallelCache(enc_cache, proj_cache, memory, emb_cache, att_cache, alpha,
                                    out_cache, ce_cache)
        return loss

    def _backward_parallel(self):
        """Backward of :meth:`_forward_parallel`: the same steps in reverse, for all T at once."""
        c = self._cache
        M = self.memory_dim
        dr = self._output_loss_backward(c.out, c.ce)
        dc, ds = dr[..., :M], dr[..., M:]
        ds_att, dhbar, dkeys, dparams = F_att._attend_backward(dc, None, c.attention)
        self._add_score_grads(dparams)
        dx, ds0 = self.decoder.backward(ds + ds_att, None)
        self.tgt_embed.step_backward(self._dropout_backward("tgt_embed", dx), c.emb)
        d_enc_out = self.transform_encoder_states_backward(dhbar, dkeys, c.memory, c.proj)
        self.encode_backward(d_enc_out, ds0, c.enc)

    def _forward_steps(self, src, tgt, use_gold=None):
        """Step by step through :meth:`_step` (needed by input feeding and by scheduled
        sampling; without them this gives the same loss and gradients as the all-at-once path,
        only slower). ``use_gold`` (B, T) bool: the inputs chosen by
        :class:`~minis2s.models.base.FedInputs` (None: all gold)."""
        xp = backend.xp
        memory, s0, enc_cache, proj_cache = self._encode_memory(src)  # step 1, once
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        fed = None if use_gold is None else FedInputs(y_in, use_gold)
        # the dropout multipliers of the all-at-once path, used step by step (training only)
        d_emb = self._dropout_multiplier("tgt_embed", y_in.shape + (self.embed_dim,))
        d_hid = self._gru_dropout("decoder", self.decoder, *y_in.shape)
        if fed is None:
            x, emb_cache = self.tgt_embed.step_forward(y_in)
            x = x if d_emb is None else x * d_emb
        else:  # looked up step by step, as decode_step does
            x = xp.empty(y_in.shape + (self.embed_dim,), dtype=self.dtype)
        B, T = y_in.shape
        R = xp.empty((B, T, self.readout_dim), dtype=self.dtype)
        alpha = xp.empty((B, T, src.shape[1]), dtype=self.dtype)
        feed = xp.zeros((B, self.readout_dim), dtype=self.dtype) if self.input_feeding else None
        s, steps = s0, []
        for t in range(T):
            if fed is not None:
                x[:, t] = self.tgt_embed.params["W"][fed.at(t)]
                if d_emb is not None:
                    x[:, t] *= d_emb[:, t]
            r, s, alpha[:, t], cache = self._step(x[:, t], s, feed, memory, self._at(d_hid, t))
            R[:, t] = r
            if self.input_feeding:
                feed = r
            steps.append(cache)
            if fed is not None and fed.needs_prediction(t):
                fed.predict(self._step_log_probs(r))
        if fed is not None:
            _, emb_cache = self.tgt_embed.step_forward(fed.ids)  # the ids fed, for the backward
        loss, out_cache, ce_cache = self._output_loss(R, y)  # step 4's Linear for all steps at once
        self._cache = StepsCache(enc_cache, proj_cache, memory, emb_cache, x, steps, alpha,
                                 out_cache, ce_cache)
        return loss

    def _backward_steps(self):
        """Backward of :meth:`_forward_steps`: the steps in reverse order through
        :meth:`_step_backward`, carrying ds (and the fed vector's gradient) back in time."""
        xp = backend.xp
        c = self._cache
        dR = self._output_loss_backward(c.out, c.ce)  # (B, T, M + H)
        dx = xp.empty_like(c.x)
        dhbar = xp.zeros_like(c.memory.hbar)
        dkeys = xp.zeros_like(c.memory.keys)
        ds, dfeed = None, None
        for t in range(len(c.steps) - 1, -1, -1):
            dr = dR[:, t] if dfeed is None else dR[:, t] + dfeed
            dx[:, t], dfeed, ds, dhbar_t, dkeys_t, dparams = self._step_backward(
                dr, ds, c.steps[t])
            dhbar += dhbar_t
            dkeys += dkeys_t
            self._add_score_grads(dparams)
        self.tgt_embed.step_backward(self._dropout_backward("tgt_embed", dx), c.emb)
        d_enc_out = self.transform_encoder_states_backward(dhbar, dkeys, c.memory, c.proj)
        self.encode_backward(d_enc_out, ds, c.enc)  # ds is now d s_0

    def attention_weights(self, src, tgt):
        """Teacher-forced attention weights α (B, T − 1, S) as a NumPy array (runs
        :meth:`forward`, so it replaces the cache of the last forward)."""
        self.forward(src, tgt)
        return backend.to_numpy(self._cache.alpha)

    # --- the per-step decoder interface -------------------------------------------------------
    def init_decoder(self, src):
        """Encode ``src`` and run step 1 once. The state (batch on axis 0): ``s`` (B, L, H),
        the memory ``hbar`` (B, S, M), ``keys`` (B, S, K) and ``mask`` (B, S), ``alpha``
        (B, S) (the last step's weights, for ``trace``) and ``feed`` (B, M + H) with input
        feeding."""
        xp = backend.xp
        memory, s0, _, _ = self._encode_memory(src)
        B, S = src.shape
        state = {"s": s0.transpose(1, 0, 2), "hbar": memory.hbar, "keys": memory.keys,
                 "mask": memory.mask, "alpha": xp.zeros((B, S), dtype=self.dtype)}
        if self.input_feeding:
            state["feed"] = xp.zeros((B, self.readout_dim), dtype=self.dtype)
        return state

    @backend.device_inputs
    def decode_step(self, state, y_prev):
        """One decoder step: y_prev (B,) ids -> log p(y_t | y_<t, x) (B, V_tgt), new state."""
        x = self.tgt_embed.params["W"][y_prev]
        memory = Memory(state["hbar"], state["keys"], state["mask"])
        r, s_new, alpha, _ = self._step(x, state["s"].transpose(1, 0, 2), state.get("feed"),
                                        memory)
        new = dict(state, s=s_new.transpose(1, 0, 2), alpha=alpha)
        if self.input_feeding:
            new["feed"] = r
        return self._step_log_probs(r), new  # step 4: the readout Linear, then log-softmax
