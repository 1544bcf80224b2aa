"""The pointer-generator network with coverage (See, Liu & Manning 2017, "Get To The Point"),
built on GRUs, with every backward written by hand.

One vocabulary of size V is shared by the source and the target, and so is one embedding
E (V, D). An id ``V + k`` in ``src`` or ``tgt`` is the k-th distinct out-of-vocabulary (OOV) word
of that row (:meth:`minis2s.data.Vocab.encode_extended`); the model reads it as UNK and can
produce it only by copying. With y_in = tgt[:, :-1] (teacher forcing), y = tgt[:, 1:], the
symbols of :mod:`minis2s.functional.attention` (h̄ the encoder outputs, s the decoder state,
α the attention, c the context; See et al. write h, s, a and h*) and the paper's equation
numbers:

    x̄ = E[src_unk],  h̄, h_n = GRU_enc(x̄)                 (B, S, Hs), Hs = H·dirs
    s_0 = tanh([h_n→; h_n←] W_b + b_b)                      (bidirectional: Seq2Seq's bridge)
    k_i = h̄_i W_h + b_attn                                 (B, S, A), the keys, once per sequence
    for t = 1 .. T−1 (the ONE decoder step, :meth:`_step`):
        x_t = E[y_in_unk[:, t]],  s_t = GRU_dec(x_t, s_{t−1})          (top layer: s_t (B, H))
        e_i^t = vᵀ tanh(k_i + s_t W_s + w_c cov_i^t)                    (11)
        α^t = masked softmax(e^t),   cov^{t+1} = cov^t + α^t,  cov^1 = 0  (11), (10)
    then for all steps at once (:meth:`_output`):
        c_t = Σ_i α_i^t h̄_i                                             (2) the context
        P_vocab = softmax(V′([s_t; c_t] V + b) + b′)                     (4)
        p_gen = σ(w_h·c_t + w_s·s_t + w_x·x_t + b_ptr)                   (8)
        P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: src_i = w} α_i^t     (9), extended vocabulary
    loss = (1/N) Σ_t −log P(y_t) + λ (1/N) Σ_t Σ_i min(α_i^t, cov_i^t)   (6), (12), (13)

with N the number of non-PAD predicted tokens and λ = ``cov_loss_weight`` (the coverage term
only when coverage is on). Eq. 11 is the additive score of attention.py (its W1, W2 are W_h and
W_s) on the keys k_i + w_c cov_i^t (:func:`minis2s.functional.pointer.coverage_attention_forward`).
The recurrence is step by step: with coverage, α^t depends on all earlier α^{t'}. Only the GRU
step and the attention are inside the loop; the context, both vocabulary projections, p_gen and
the stable log of the mixture run once over all T steps
(:func:`minis2s.functional.pointer.pointer_nll_forward` with a time axis), since nothing there
feeds back into the recurrence. Greedy and beam search call the same :meth:`_step` and
:meth:`_output` once per generated token (:meth:`decode_step`). Scheduled sampling
(``forward(src, tgt, use_gold=mask)``, docs/derivations/scheduled_sampling.md) feeds some steps
the model's own greedy prediction of the step before, taken from the same per-step mixture as
decode_step (:meth:`_step_log_probs`); a copied OOV prediction (id V + k) is read as UNK, as in
generation.

Backward through time (coverage): cov^t = Σ_{t'<t} α^{t'}, so the gradient of α^t collects
dcov^{t'} from every later step t' (from the attention scores via w_c and from the coverage
loss). The backward loop runs t downwards and keeps the running sum R = Σ_{t'>t} dcov^{t'}: dα^t
gets R, then R += dcov^t. See docs/derivations/coverage.md and docs/derivations/pointer.md.

Coverage as a switch. The coverage parameter ``attn.w_c`` always exists (zero-initialised). With
coverage off, the attention is fed cov^t = 0, so w_c has no effect and gets exactly zero
gradient, and there is no coverage loss. ``model.set_coverage(True)`` switches it on, e.g. for a
short second training phase from a checkpoint, as in the paper (§7: coverage added at the end of
training); ``coverage=True`` trains with it from the start. The switch is part of ``config``,
so ``save``/``load`` keep it.

Parameters: ``src_embed.W`` (V, D), the ONE embedding, for the source and the decoder inputs
(its gradient sums both uses); ``encoder.*`` and ``bridge.*`` (Seq2Seq's encoder, reused);
``decoder.*`` (GRU, input D); ``attn.W_h`` (Hs, A), ``attn.b_attn`` (A,) (the keys),
``attn.W_s`` (H, A), ``attn.w_c`` (A,), ``attn.v`` (A,); ``out_hidden.W`` (H + Hs, H) and
``.b`` (V and b of eq. 4), ``out.W`` (H, V) and ``.b`` (V′ and b′); ``ptr.w_h`` (Hs,),
``ptr.w_s`` (H,), ``ptr.w_x`` (D,), ``ptr.b_ptr`` (1,).

Shapes: B batch, S source length, T target length, D embedding, H hidden, Hs = H·dirs encoder
output size, A attention size, V vocabulary, V_ext = V + S the extended vocabulary of decoding.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend
from .. import init as initlib
from .._checks import non_negative_float, positive_int
from ..constants import PAD, UNK
from ..fast import output as fast_output
from ..functional import attention as F_att
from ..functional import linear as F_lin
from ..functional import pointer as F_ptr
from ..functional.activations import sigmoid
from ..layers import GRU, Linear
from .base import FedInputs, Memory, pointer_nll_backward, pointer_nll_forward
from .seq2seq import Seq2Seq

__all__ = ["PointerGenerator", "Memory", "StepCache", "OutputCache", "PointerCache"]


class StepCache(NamedTuple):
    """Cache of one decoder step (:meth:`PointerGenerator._step`)."""

    gru: object  # GRUStackStepCache of the decoder stack
    attention: object  # CoverageAttentionCache


class OutputCache(NamedTuple):
    """Cache of :meth:`PointerGenerator._output` (all steps at once)."""

    alpha: object  # (B, T, S)
    hbar: object  # (B, S, Hs)
    hidden: object  # LinearCache of out_hidden ([s; c] -> H)
    out: object  # LinearCache of out (H -> V)
    p_gen: object  # PGenCache


class PointerCache(NamedTuple):
    """Cache of the training forward."""

    enc: object  # EncoderCache (Seq2Seq.encode)
    keys: object  # LinearCache of the keys h̄ W_h + b_attn
    emb: object  # EmbeddingCache of the decoder inputs
    steps: list  # one StepCache per t
    output: OutputCache
    nll: object  # PointerNLLCache (fast tier: fast.output.PointerReadoutCache)
    cov: object  # CoverageLossCache, or None when coverage is off
    n_tokens: object  # N, the number of non-PAD predicted tokens


class PointerGenerator(Seq2Seq):
    """Pointer-generator network with optional coverage (See et al. 2017) on GRUs.

    Args:
        vocab_size: V, the vocabulary shared by source and target (specials included).
        embed_dim: D. hidden_dim: H. num_layers: L, for the encoder and the decoder.
        bidirectional: a bidirectional encoder (the default), reduced to the decoder's initial
            state by Seq2Seq's learned bridge.
        attention_dim: A, the size of the additive attention (default H).
        coverage: use the coverage mechanism and its loss (can be switched later with
            :meth:`set_coverage`).
        cov_loss_weight: λ, the weight of the coverage loss (the paper uses 1).
        dtype: "float32" (default) or "float64". seed: seeds the initialisation.
        label_smoothing: ε in [0, 1): the NLL of the final mixture P(w) against
            q = (1 − ε) onehot(y) + ε/V over the fixed vocabulary (the row's OOV slots get no
            smoothing mass; docs/derivations/pointer.md).
        dropout, dropout_embed, dropout_hidden, dropout_readout: inverted-dropout rates, as in
            :class:`~minis2s.Seq2Seq` (the embedding's source and decoder-input uses; between
            stacked GRU layers; the readout [s_t; c_t] before ``out_hidden``).

    ``src_vocab_size`` and ``tgt_vocab_size`` are both V (the base checks use them).
    """

    default_beam_size = 4
    trace_keys = ("alpha", "coverage", "p_gen")

    def __init__(self, vocab_size, embed_dim=64, hidden_dim=128, num_layers=1,
                 bidirectional=True, attention_dim=None, coverage=False, cov_loss_weight=1.0,
                 dtype="float32", seed=0, *, label_smoothing=0.0, dropout=0.0,
                 dropout_embed=None, dropout_hidden=None, dropout_readout=None):
        vocab_size = positive_int("vocab_size", vocab_size)
        if vocab_size <= UNK:  # an OOV id is read as UNK, which must be a row of E
            raise ValueError(f"vocab_size must be >= {UNK + 1} (the specials PAD, BOS, EOS, UNK "
                             f"come first); got {vocab_size}")
        if attention_dim is not None:
            attention_dim = positive_int("attention_dim", attention_dim)
        if not isinstance(coverage, bool):
            raise TypeError(f"coverage must be a bool; got {coverage!r}")
        self.vocab_size = vocab_size
        self.coverage = coverage
        self.cov_loss_weight = non_negative_float("cov_loss_weight", cov_loss_weight)
        self._attention_dim = attention_dim  # None: H, resolved in _build_decoder
        # Seq2Seq's constructor: sizes, the encoder (src_embed (V, D), encoder, bridge) and
        # this class's _build_decoder
        super().__init__(vocab_size, vocab_size, embed_dim, hidden_dim, num_layers,
                         bidirectional, dtype, seed, dropout=dropout, dropout_embed=dropout_embed,
                         dropout_hidden=dropout_hidden, dropout_readout=dropout_readout)
        self._config = dict(vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                            hidden_dim=self.hidden_dim, num_layers=self.num_layers,
                            bidirectional=bidirectional, attention_dim=attention_dim,
                            coverage=coverage, cov_loss_weight=self.cov_loss_weight,
                            dtype=self.dtype, seed=initlib.plain_seed(seed))
        self._config.update(self.dropout_config())
        self.set_label_smoothing(label_smoothing)

    def _build_decoder(self, rng):
        D, H, V, dt = self.embed_dim, self.hidden_dim, self.vocab_size, self.dtype
        self.attention_dim = A = H if self._attention_dim is None else self._attention_dim
        Hs = H * self.enc_dirs
        self.embed = self.src_embed  # the one shared embedding
        self.decoder = self.add_layer("decoder", GRU(D, H, self.num_layers, False, dt, rng))
        xavier = initlib.xavier_uniform
        self.add_param("attn.W_h", xavier(rng, Hs, A, (Hs, A), dt))
        self.add_param("attn.W_s", xavier(rng, H, A, (H, A), dt))
        self.add_param("attn.w_c", initlib.zeros((A,), dt))  # zero: coverage starts neutral
        self.add_param("attn.b_attn", initlib.zeros((A,), dt))
        self.add_param("attn.v", xavier(rng, A, 1, (A,), dt))
        #: the coverage attention's parameters under the functional API's names (the same
        #: arrays as params["attn.W_s"], ...): the additive score's W2 and v, and w_c
        self.attention_params = {"W2": self.params["attn.W_s"], "v": self.params["attn.v"],
                                 "w_c": self.params["attn.w_c"]}
        self.out_hidden = self.add_layer("out_hidden", Linear(H + Hs, H, dtype=dt, seed=rng))
        self.out = self.add_layer("out", Linear(H, V, dtype=dt, seed=rng))
        self.add_param("ptr.w_h", xavier(rng, Hs, 1, (Hs,), dt))
        self.add_param("ptr.w_s", xavier(rng, H, 1, (H,), dt))
        self.add_param("ptr.w_x", xavier(rng, D, 1, (D,), dt))
        self.add_param("ptr.b_ptr", initlib.zeros((1,), dt))

    # --- the coverage switch ------------------------------------------------------------------
    def set_coverage(self, on=True, cov_loss_weight=None):
        """Switch coverage on (or off), e.g. for a second training phase from a checkpoint.

        The parameters stay the same (``attn.w_c`` always exists); only the forward changes.
        ``config`` records the switch (and ``cov_loss_weight`` if given), so ``save``/``load``
        keep it. Returns the model.
        """
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool; got {on!r}")
        self.coverage = on
        self._config["coverage"] = on
        if cov_loss_weight is not None:
            self.cov_loss_weight = non_negative_float("cov_loss_weight", cov_loss_weight)
            self._config["cov_loss_weight"] = self.cov_loss_weight
        self._cache = None
        return self

    # --- input checks (extended ids) ------------------------------------------------------------
    def check_src(self, src, name="src"):
        """Validate a source batch with extended ids: besides the base checks, each row's OOV
        ids must be V, V + 1, ..., V + k − 1 for its k distinct OOVs (as
        :meth:`~minis2s.data.Vocab.encode_extended` numbers them)."""
        src = _checks.int_ids(name, src)
        src = _checks.source(src, self.vocab_size + src.shape[1], name)
        _checks.oov_numbering(name, src, self.vocab_size)
        return src

    def check_batch(self, src, tgt):
        """Validate a batch with extended ids (see :meth:`check_src`); an id >= V in a ``tgt``
        row must name an OOV word of the same row's source (otherwise it must be UNK)."""
        src = _checks.int_ids("src", src)
        bound = self.vocab_size + src.shape[1]
        src, tgt = _checks.batch(src, tgt, bound, bound)
        _checks.oov_numbering("src", src, self.vocab_size)
        _checks.oov_targets(src, tgt, self.vocab_size)
        return src, tgt

    def _unk(self, ids):
        """Extended ids -> embedding ids: OOV ids (>= V) read as UNK."""
        return backend.xp.where(ids >= self.vocab_size, UNK, ids)

    # --- pieces shared by training and decoding -----------------------------------------------
    def _encode_memory(self, src_ext):
        """src_ext (B, S) -> Memory, s_0 (L, B, H), EncoderCache, LinearCache of the keys."""
        hbar, s0, enc_cache = self.encode(self._unk(src_ext))
        keys, keys_cache = F_lin._linear_forward(hbar, self.params["attn.W_h"],
                                                 self.params["attn.b_attn"])  # once
        return Memory(hbar, keys, src_ext != PAD), s0, enc_cache, keys_cache

    def _step(self, x_t, s, coverage, memory: Memory, dropout_masks=None):
        """THE decoder step (training, greedy and beam search): GRU step, then attention.

        Args:
            x_t: (B, D) embedded input. s: (L, B, H) previous states.
            coverage: (B, S) cov^t; used only when coverage is on (else cov^t = 0 is fed).
            memory: the :class:`~minis2s.models.base.Memory`.
            dropout_masks: the step's between-layer dropout multipliers (training only).

        Returns:
            s_top (B, H), s_new (L, B, H), alpha (B, S), and a :class:`StepCache`.
        """
        if not self.coverage:
            coverage = backend.xp.zeros(memory.mask.shape, dtype=x_t.dtype)
        s_top, s_new, gru_cache = self.decoder.step_forward(x_t, s, dropout_masks)
        alpha, att_cache = F_ptr._coverage_attention_forward(s_top, memory.keys, coverage,
                                                             memory.mask, self.attention_params)
        return s_top, s_new, alpha, StepCache(gru_cache, att_cache)

    def _step_backward(self, ds_top, ds_new, dalpha, cache: StepCache):
        """Backward of :meth:`_step`: -> dx_t (B, D), ds (L, B, H), dcoverage (B, S),
        dkeys (B, S, A). Adds the decoder's and the attention's parameter gradients."""
        ds_att, dkeys, dcoverage, g = F_ptr._coverage_attention_backward(dalpha, cache.attention)
        self.grads["attn.W_s"] += g["W2"]
        self.grads["attn.v"] += g["v"]
        self.grads["attn.w_c"] += g["w_c"]
        dx_t, ds = self.decoder.step_backward(ds_top + ds_att, ds_new, cache.gru)
        return dx_t, ds, dcoverage, dkeys

    def _output(self, s_top, alpha, x, hbar, project=True, drop=False):
        """Context, vocabulary logits and p_gen's logit for any number of steps T.

        Args:
            s_top: (B, T, H) decoder states. alpha: (B, T, S) attention. x: (B, T, D) decoder
                inputs. hbar: (B, S, Hs) encoder outputs.
            project: False stops before the vocabulary projection and returns its input, the
                hidden layer (B, T, H), in the logits' place (the fast tier's training projects
                the real target tokens only: minis2s.fast.output).
            drop: apply the readout's dropout to [s_t; c_t] (the training forward, while
                training; never in decoding).

        Returns:
            vocab_logits (B, T, V), p_gen_logit (B, T), context c (B, T, Hs), and an
            :class:`OutputCache`.
        """
        p = self.params
        c = F_att._context(alpha, hbar)  # c_t = Σ_i α_i^t h̄_i
        readout = backend.xp.concatenate([s_top, c], -1)
        if drop:
            readout = self._dropout("readout", readout)
        hidden, hidden_cache = self.out_hidden.step_forward(readout)
        if project:
            logits, out_cache = self.out.step_forward(hidden)
        else:
            logits, out_cache = hidden, None
        p_gen_logit, pg_cache = F_ptr._p_gen_logit_forward(
            c, s_top, x, p["ptr.w_h"], p["ptr.w_s"], p["ptr.w_x"], p["ptr.b_ptr"])
        return logits, p_gen_logit, c, OutputCache(alpha, hbar, hidden_cache, out_cache,
                                                   pg_cache)

    def _output_backward(self, dlogits, dp_gen_logit, cache: OutputCache):
        """Backward of :meth:`_output`: -> ds_top (B, T, H), dalpha (B, T, S), dx (B, T, D),
        dhbar (B, S, Hs). Adds out_hidden's, out's and ptr.*'s parameter gradients."""
        H = self.hidden_dim
        if cache.out is None:  # _output(project=False): dlogits is already d hidden
            dhidden = dlogits
        else:
            dhidden = self.out.step_backward(dlogits, cache.out)
        dcat = self._dropout_backward("readout", self.out_hidden.step_backward(dhidden,
                                                                               cache.hidden))
        dc, ds_p, dx, g = F_ptr._p_gen_logit_backward(dp_gen_logit, cache.p_gen)
        for k, v in g.items():
            self.grads[f"ptr.{k}"] += v
        ds_top = dcat[..., :H] + ds_p
        dalpha, dhbar = F_att._context_backward(dc + dcat[..., H:], cache.alpha, cache.hbar)
        return ds_top, dalpha, dx, dhbar

    def _step_log_probs(self, s_top, alpha, x_t, memory: Memory, src_ext):
        """The final distribution of one step: log P(w) (B, V + S) over the extended
        vocabulary (eq. 9, −inf on slots no source word fills) and p_gen's logit (B,), from
        :meth:`_step`'s s_top (B, H) and alpha (B, S) and the step's input x_t (B, D)
        (decode_step, and the predictions that scheduled sampling feeds back)."""
        logits, p_gen_logit, _, _ = self._output(s_top[:, None], alpha[:, None], x_t[:, None],
                                                 memory.hbar)
        V_ext = self.vocab_size + src_ext.shape[1]
        log_probs = F_ptr._final_log_probs(logits[:, 0], p_gen_logit[:, 0], alpha, src_ext,
                                           V_ext)
        return log_probs, p_gen_logit[:, 0]

    # --- training -----------------------------------------------------------------------------
    def _forward(self, src, tgt, use_gold=None):
        """Teacher-forced loss: encode, then :meth:`_step` for t = 1..T (coverage makes the
        steps sequential), then the vocabulary projection and the stable mixture NLL for all
        steps at once, plus λ times the coverage loss; both averaged over non-PAD targets.
        ``use_gold`` (B, T) bool: scheduled sampling, each input chosen by
        :class:`~minis2s.models.base.FedInputs` (None: all gold)."""
        xp = backend.xp
        memory, s, enc_cache, keys_cache = self._encode_memory(src)
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        B, T = y.shape
        S = src.shape[1]
        fed = None if use_gold is None else FedInputs(y_in, use_gold)
        d_emb = self._dropout_multiplier("tgt_embed", (B, T, self.embed_dim))  # training only
        d_hid = self._gru_dropout("decoder", self.decoder, B, T)
        if fed is None:
            x, emb_cache = self.embed.step_forward(self._unk(y_in))  # (B, T, D); shared
            x = x if d_emb is None else x * d_emb
        else:  # looked up step by step, as decode_step does
            x = xp.empty((B, T, self.embed_dim), dtype=self.dtype)
        s_top = xp.empty((B, T, self.hidden_dim), dtype=self.dtype)
        alpha = xp.empty((B, T, S), dtype=self.dtype)
        cov = xp.empty((B, T, S), dtype=self.dtype) if self.coverage else None
        coverage = xp.zeros((B, S), dtype=self.dtype)  # cov^1 = 0
        steps = []
        for t in range(T):
            if fed is not None:  # a fed-back OOV id (V + k, copied) is read as UNK
                x[:, t] = self.embed.params["W"][self._unk(fed.at(t))]
                if d_emb is not None:
                    x[:, t] *= d_emb[:, t]
            s_top[:, t], s, alpha[:, t], step_cache = self._step(x[:, t], s, coverage, memory,
                                                                 self._at(d_hid, t))
            steps.append(step_cache)
            if self.coverage:
                cov[:, t] = coverage
                coverage = coverage + alpha[:, t]
            if fed is not None and fed.needs_prediction(t):
                fed.predict(self._step_log_probs(s_top[:, t], alpha[:, t], x[:, t], memory,
                                                 src)[0])
        if fed is not None:  # the ids fed, for the embedding's backward
            _, emb_cache = self.embed.step_forward(self._unk(fed.ids))
        mask = y != PAD
        n_tokens = max(int(mask.sum()), 1)
        if backend.impl() == "fast":  # the vocabulary logits of the real target tokens only
            hidden, p_gen_logit, _, out_cache = self._output(s_top, alpha, x, memory.hbar,
                                                             project=False, drop=True)
            nll, nll_cache = fast_output.pointer_readout_nll_forward(
                hidden, self.out.params["W"], self.out.params["b"], p_gen_logit, alpha, src, y,
                mask.astype(self.dtype), self.label_smoothing)
        else:
            logits, p_gen_logit, _, out_cache = self._output(s_top, alpha, x, memory.hbar,
                                                             drop=True)
            nll, nll_cache = pointer_nll_forward(logits, p_gen_logit, alpha, src, y,
                                                 mask.astype(self.dtype), self.label_smoothing)
        loss = nll.sum() / n_tokens
        cov_cache = None
        if self.coverage:
            covloss, cov_cache = F_ptr._coverage_loss_forward(alpha, cov, mask.astype(self.dtype))
            loss = loss + self.cov_loss_weight * (covloss.sum() / n_tokens)
        self._cache = PointerCache(enc_cache, keys_cache, emb_cache, steps, out_cache, nll_cache,
                                   cov_cache, n_tokens)
        return loss

    def _backward(self):
        """Backward of :meth:`_forward`: the mixture and projections for all steps, then the
        steps in reverse, carrying the decoder state's and the coverage's gradients back in
        time, then the encoder."""
        xp = backend.xp
        cache: PointerCache = self._cache
        n = cache.n_tokens
        dnll = xp.full(cache.nll.lead, 1.0 / n, dtype=self.dtype)
        if isinstance(cache.nll, fast_output.PointerReadoutCache):  # the fast tier's forward
            dlogits, dW, db, dp_gen_logit, dalpha = fast_output.pointer_readout_nll_backward(
                dnll, cache.nll)  # dlogits: here d hidden, the projection done
            self.out.accumulate("W", dW)
            self.out.accumulate("b", db)
        else:
            dlogits, dp_gen_logit, dalpha = pointer_nll_backward(dnll, cache.nll)
        ds_top, dalpha_ctx, dx, dhbar = self._output_backward(dlogits, dp_gen_logit,
                                                              cache.output)
        dalpha += dalpha_ctx
        dcov = None
        if cache.cov is not None:  # coverage loss: λ/N per token
            dalpha_cl, dcov = F_ptr._coverage_loss_backward(self.cov_loss_weight / n, cache.cov)
            dalpha += dalpha_cl
        T = dalpha.shape[1]
        dkeys = xp.zeros(cache.keys.x.shape[:2] + (self.attention_dim,), dtype=self.dtype)
        R = xp.zeros(dalpha[:, 0].shape, dtype=self.dtype)  # Σ_{t'>t} dcov^{t'}
        ds = None
        for t in range(T - 1, -1, -1):
            da = dalpha[:, t] + R if dcov is not None else dalpha[:, t]
            dx_t, ds, dc, dk = self._step_backward(ds_top[:, t], ds, da, cache.steps[t])
            dkeys += dk
            dx[:, t] += dx_t
            if dcov is not None:
                R += dc
                R += dcov[:, t]
        dhbar_keys, dW_h, db_attn = F_lin._linear_backward(dkeys, cache.keys)
        self.grads["attn.W_h"] += dW_h
        self.grads["attn.b_attn"] += db_attn
        self.embed.step_backward(self._dropout_backward("tgt_embed", dx),  # the decoder inputs'
                                 cache.emb)  # share of the embedding
        self.encode_backward(dhbar + dhbar_keys, ds, cache.enc)  # the source's share, encoder

    # --- the per-step decoder interface -------------------------------------------------------
    @backend.device_inputs
    def init_decoder(self, src):
        """Encode ``src`` (validated extended ids) and return the decoder state, a dict whose
        arrays have the batch on axis 0 (so beam search reorders all of it, coverage included):

        ``s`` (B, L, H); ``coverage`` (B, S) cov^t, the attention summed over the earlier steps
        (tracked even with coverage off, for plots); ``alpha`` (B, S) and ``p_gen`` (B,) of the
        last step (for ``trace``); the memory ``hbar`` (B, S, Hs), ``keys`` (B, S, A) and
        ``mask`` (B, S); and ``src_ext`` (B, S).
        """
        xp = backend.xp
        memory, s0, _, _ = self._encode_memory(src)
        B, S = src.shape
        return {"s": s0.transpose(1, 0, 2), "coverage": xp.zeros((B, S), dtype=self.dtype),
                "alpha": xp.zeros((B, S), dtype=self.dtype),
                "p_gen": xp.ones((B,), dtype=self.dtype),
                "hbar": memory.hbar, "keys": memory.keys, "mask": memory.mask, "src_ext": src}

    @backend.device_inputs
    def decode_step(self, state, y_prev):
        """One decoder step: y_prev (B,) extended ids -> log P(w) (B, V + S) over the extended
        vocabulary (V + k: the row's k-th source OOV; −inf on slots no source word fills), and
        the new state. Coverage: cov^t = cov^{t−1} + α^{t−1} from the state's last alpha."""
        memory = Memory(state["hbar"], state["keys"], state["mask"])
        src_ext = state["src_ext"]
        coverage = state["coverage"] + state["alpha"]  # cov^t (cov^1 = 0 + 0)
        x = self.embed.params["W"][self._unk(y_prev)]
        s_top, s_new, alpha, _ = self._step(x, state["s"].transpose(1, 0, 2), coverage, memory)
        log_probs, p_gen_logit = self._step_log_probs(s_top, alpha, x, memory, src_ext)
        new = dict(state, s=s_new.transpose(1, 0, 2), coverage=coverage, alpha=alpha,
                   p_gen=sigmoid(p_gen_logit))
        return log_probs, new
