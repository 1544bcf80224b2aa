"""The pointer-generator network with coverage (See, Liu & Manning 2017, "Get To The Point"),
built on GRUs, with every backward written by hand.

One vocabulary of size V is shared by the source and the target, and so is one embedding
E (V, D). An id ``V + k`` in ``src`` or ``tgt`` is the k-th distinct out-of-vocabulary (OOV) word
of that row (:meth:`minis2s.data.Vocab.encode_extended`); the model reads it as UNK and can
produce it only by copying. With y_in = tgt[:, :-1] (teacher forcing), y = tgt[:, 1:] and the
equation numbers of the paper:

    x̄ = E[src_unk],  h, h_n = GRU_enc(x̄)                 (B, S, Hs), Hs = H·dirs
    s_0 = tanh([h_n→; h_n←] W_b + b_b)                      (bidirectional: Seq2Seq's bridge)
    k_i = h_i W_h                                          (B, S, A), once per sequence
    for t = 1 .. T−1 (the ONE decoder step, :meth:`_step`):
        x_t = E[y_in_unk[:, t]],  s_t = GRU_dec(x_t, s_{t−1})       (top layer: s_t (B, H))
        e_i^t = vᵀ tanh(k_i + s_t W_s + c_i^t w_c + b_attn)           (11)
        a^t = masked softmax(e^t),   c^{t+1} = c^t + a^t,  c^1 = 0    (11), (10)
    then for all steps at once (:meth:`_output`):
        h*_t = Σ_i a_i^t h_i                                           (2) the context
        P_vocab = softmax(V′([s_t; h*_t] V + b) + b′)                  (4)
        p_gen = σ(w_h·h*_t + w_s·s_t + w_x·x_t + b_ptr)                (8)
        P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: src_i = w} a_i^t   (9), extended vocabulary
    loss = (1/N) Σ_t −log P(y_t) + λ (1/N) Σ_t Σ_i min(a_i^t, c_i^t)   (6), (12), (13)

with N the number of non-PAD predicted tokens and λ = ``cov_loss_weight`` (the coverage term
only when coverage is on). The recurrence is step by step: with coverage, a^t depends on all
earlier a^{t'}. Only the GRU step and the attention are inside the loop; the context, both
vocabulary projections, p_gen and the stable log of the mixture run once over all T steps
(:func:`minis2s.functional.pointer.pointer_nll_forward` with a time axis), since nothing there
feeds back into the recurrence. Greedy and beam search call the same :meth:`_step` and
:meth:`_output` once per generated token (:meth:`decode_step`).

Backward through time (coverage): c^t = Σ_{t'<t} a^{t'}, so the gradient of a^t collects
dc^{t'} from every later step t' (from the attention scores via w_c and from the coverage loss).
The backward loop runs t downwards and keeps the running sum R = Σ_{t'>t} dc^{t'}: dα^t gets R,
then R += dc^t. See docs/derivations/coverage.md and docs/derivations/pointer.md.

Coverage as a switch. The coverage parameter ``attn.w_c`` always exists (zero-initialised). With
coverage off, the attention is fed c^t = 0, so w_c has no effect and gets exactly zero gradient,
and there is no coverage loss. ``model.set_coverage(True)`` switches it on, e.g. for a short
second training phase from a checkpoint, as in the paper (§7: coverage added at the end of
training); ``coverage=True`` trains with it from the start. The switch is part of ``config``,
so ``save``/``load`` keep it.

Parameters: ``src_embed.W`` (V, D), the ONE embedding, for the source and the decoder inputs
(its gradient sums both uses); ``encoder.*`` and ``bridge.*`` (Seq2Seq's encoder, reused);
``decoder.*`` (GRU, input D); ``attn.W_h`` (Hs, A), ``attn.W_s`` (H, A), ``attn.w_c`` (A,),
``attn.b_attn`` (A,), ``attn.v`` (A,); ``out_hidden.W`` (H + Hs, H) and ``.b`` (V and b of eq. 4),
``out.W`` (H, V) and ``.b`` (V′ and b′); ``ptr.w_h`` (Hs,), ``ptr.w_s`` (H,), ``ptr.w_x`` (D,),
``ptr.b_ptr`` (1,).

Shapes: B batch, S source length, T target length, D embedding, H hidden, Hs = H·dirs encoder
output size, A attention size, V vocabulary, V_ext = V + S the extended vocabulary of decoding.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend
from .. import init as initlib
from .._checks import int_ids, non_negative_float, positive_int
from ..constants import PAD, UNK
from ..functional import pointer as F_ptr
from ..functional.linear import linear_backward, linear_forward
from ..layers import GRU, Linear
from .base import check_batch
from .base import check_src as base_check_src
from .seq2seq import Seq2Seq

__all__ = ["PointerGenerator", "Memory", "StepCache", "OutputCache", "PointerCache"]


class Memory(NamedTuple):
    """What the decoder attends to, computed once per source sequence."""

    enc_out: object  # (B, S, Hs) encoder outputs h_i (0 at padded positions)
    keys: object  # (B, S, A) h_i W_h
    mask: object  # (B, S) bool, True on real source tokens
    src_ext: object  # (B, S) int extended source ids (OOVs >= V)


class StepCache(NamedTuple):
    """Cache of one decoder step (:meth:`PointerGenerator._step`)."""

    gru: object  # GRUStackStepCache of the decoder stack
    attention: object  # CoverageAttentionCache


class OutputCache(NamedTuple):
    """Cache of :meth:`PointerGenerator._output` (all steps at once)."""

    alpha: object  # (B, T, S)
    enc_out: object  # (B, S, Hs)
    hidden: object  # LinearCache of out_hidden ([s; h*] -> H)
    out: object  # LinearCache of out (H -> V)
    p_gen: object  # PGenCache


class PointerCache(NamedTuple):
    """Cache of the training forward."""

    enc: object  # EncoderCache (Seq2Seq.encode)
    keys: object  # LinearCache of h W_h
    emb: object  # embedding cache of the decoder inputs
    steps: list  # one StepCache per t
    output: OutputCache
    nll: object  # PointerNLLCache
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

    ``src_vocab_size`` and ``tgt_vocab_size`` are both V (the base checks use them).
    """

    default_beam_size = 4

    def __init__(self, vocab_size, embed_dim=64, hidden_dim=128, num_layers=1,
                 bidirectional=True, attention_dim=None, coverage=False, cov_loss_weight=1.0,
                 dtype="float32", seed=0):
        super(Seq2Seq, self).__init__(dtype, seed)  # Model.__init__: this class builds its own
        self.vocab_size = positive_int("vocab_size", vocab_size)
        if self.vocab_size <= UNK:  # an OOV id is read as UNK, which must be a row of E
            raise ValueError(f"vocab_size must be >= {UNK + 1} (the specials PAD, BOS, EOS, UNK "
                             f"come first); got {self.vocab_size}")
        self.src_vocab_size = self.tgt_vocab_size = self.vocab_size
        self.set_sizes(embed_dim, hidden_dim, num_layers, bidirectional)
        self.attention_dim = (self.hidden_dim if attention_dim is None
                              else positive_int("attention_dim", attention_dim))
        if not isinstance(coverage, bool):
            raise TypeError(f"coverage must be a bool; got {coverage!r}")
        self.coverage = coverage
        self.cov_loss_weight = non_negative_float("cov_loss_weight", cov_loss_weight)
        self._config = dict(vocab_size=self.vocab_size, embed_dim=self.embed_dim,
                            hidden_dim=self.hidden_dim, num_layers=self.num_layers,
                            bidirectional=bidirectional,
                            attention_dim=None if attention_dim is None else self.attention_dim,
                            coverage=coverage, cov_loss_weight=self.cov_loss_weight,
                            dtype=self.dtype, seed=initlib.plain_seed(seed))
        rng = initlib.as_rng(seed)
        self._build_encoder(rng)  # Seq2Seq's: src_embed (V, D), encoder, bridge
        self._build_decoder(rng)

    def _build_decoder(self, rng):
        D, H, A, V, dt = (self.embed_dim, self.hidden_dim, self.attention_dim, self.vocab_size,
                          self.dtype)
        Hs = H * self.enc_dirs
        self.embed = self.src_embed  # the one shared embedding
        self.decoder = self.add_layer("decoder", GRU(D, H, self.num_layers, False, dt, rng))
        xavier = initlib.xavier_uniform
        self.add_param("attn.W_h", xavier(rng, Hs, A, (Hs, A), dt))
        self.add_param("attn.W_s", xavier(rng, H, A, (H, A), dt))
        self.add_param("attn.w_c", initlib.zeros((A,), dt))  # zero: coverage starts neutral
        self.add_param("attn.b_attn", initlib.zeros((A,), dt))
        self.add_param("attn.v", xavier(rng, A, 1, (A,), dt))
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
        src = int_ids(name, src)
        src = base_check_src(src, self.vocab_size + src.shape[1], name)
        self._check_oov_numbering(name, src)
        return src

    def _check_oov_numbering(self, name, ids):
        xp = backend.xp
        V = self.vocab_size
        oov = ids >= V
        if not bool(oov.any()):
            return
        srt = xp.sort(xp.where(oov, ids, -1), axis=1)  # each row's OOV ids ascending, −1 first
        new = (srt[:, 1:] != srt[:, :-1]) & (srt[:, 1:] >= 0)
        n_distinct = (srt[:, 0] >= 0).astype(xp.int64) + new.sum(axis=1)
        bad = srt[:, -1] >= V + n_distinct
        if bool(bad.any()):
            row = int(xp.argmax(bad))
            raise ValueError(
                f"{name} row {row} holds extended id {int(srt[row, -1])}, outside the valid "
                f"range [0, {V + int(n_distinct[row])}): with {int(n_distinct[row])} distinct "
                f"out-of-vocabulary words its OOV ids must be {V}..{V + int(n_distinct[row]) - 1}"
                f" (vocab_size {V} + k for the k-th; use Vocab.encode_extended)")

    def check_batch(self, src, tgt):
        """Validate a batch with extended ids (see :meth:`check_src`); an id >= V in a ``tgt``
        row must name an OOV word of the same row's source (otherwise it must be UNK)."""
        src = int_ids("src", src)
        bound = self.vocab_size + src.shape[1]
        src, tgt = check_batch(src, tgt, bound, bound)
        self._check_oov_numbering("src", src)
        xp = backend.xp
        V = self.vocab_size
        oov = tgt >= V
        if bool(oov.any()):
            found = (tgt[:, :, None] == src[:, None, :]).any(axis=2)
            bad = oov & ~found
            if bool(bad.any()):
                row = int(xp.argmax(bad.any(axis=1)))
                col = int(xp.argmax(bad[row]))
                raise ValueError(
                    f"tgt row {row} holds the out-of-vocabulary id {int(tgt[row, col])} (at "
                    f"position {col}), which is not in that row's source: a target word that is "
                    f"in neither the vocabulary nor the source cannot be produced; map it to UNK "
                    f"({UNK}) (Vocab.encode_extended(tgt, oovs=source_oovs) does)")
        return src, tgt

    def _unk(self, ids):
        """Extended ids -> embedding ids: OOV ids (>= V) read as UNK."""
        return backend.xp.where(ids >= self.vocab_size, UNK, ids)

    # --- pieces shared by training and decoding -----------------------------------------------
    def _encode_memory(self, src_ext):
        """src_ext (B, S) -> Memory, s_0 (L, B, H), EncoderCache, LinearCache of the keys."""
        enc_out, s0, enc_cache = self.encode(self._unk(src_ext))
        ### BEGIN SOLUTION
        keys, keys_cache = linear_forward(enc_out, self.params["attn.W_h"])  # W_h h_i, once
        ### END SOLUTION
        return Memory(enc_out, keys, src_ext != PAD, src_ext), s0, enc_cache, keys_cache

    def _step(self, x_t, s, coverage, memory: Memory):
        """THE decoder step (training, greedy and beam search): GRU step, then attention.

        Args:
            x_t: (B, D) embedded input. s: (L, B, H) previous states.
            coverage: (B, S) c^t; used only when coverage is on (else c^t = 0 is fed).
            memory: the :class:`Memory`.

        Returns:
            s_top (B, H), s_new (L, B, H), alpha (B, S), and a :class:`StepCache`.
        """
        p = self.params
        if not self.coverage:
            coverage = backend.xp.zeros(memory.mask.shape, dtype=x_t.dtype)
        ### BEGIN SOLUTION
        s_top, s_new, gru_cache = self.decoder.step_forward(x_t, s)
        alpha, _, att_cache = F_ptr.coverage_attention_forward(
            memory.keys, s_top, coverage, memory.mask, p["attn.W_s"], p["attn.w_c"],
            p["attn.b_attn"], p["attn.v"])
        ### END SOLUTION
        return s_top, s_new, alpha, StepCache(gru_cache, att_cache)

    def _step_backward(self, ds_top, ds_new, dalpha, cache: StepCache):
        """Backward of :meth:`_step`: -> dx_t (B, D), ds (L, B, H), dcoverage (B, S),
        dkeys (B, S, A). Adds the decoder's and the attention's parameter gradients."""
        ### BEGIN SOLUTION
        dkeys, ds_att, dcoverage, g = F_ptr.coverage_attention_backward(dalpha, cache.attention)
        for k, v in g.items():
            self.grads[f"attn.{k}"] += v
        dx_t, ds = self.decoder.step_backward(ds_top + ds_att, ds_new, cache.gru)
        return dx_t, ds, dcoverage, dkeys
        ### END SOLUTION

    def _output(self, s_top, alpha, x, enc_out):
        """Context, vocabulary logits and p_gen's logit for any number of steps T.

        Args:
            s_top: (B, T, H) decoder states. alpha: (B, T, S) attention. x: (B, T, D) decoder
                inputs. enc_out: (B, S, Hs).

        Returns:
            vocab_logits (B, T, V), p_gen_logit (B, T), context (B, T, Hs), and an
            :class:`OutputCache`.
        """
        xp = backend.xp
        p = self.params
        ### BEGIN SOLUTION
        context = xp.matmul(alpha, enc_out)  # h*_t = Σ_i a_i^t h_i
        hidden, hidden_cache = self.out_hidden.forward(xp.concatenate([s_top, context], -1))
        logits, out_cache = self.out.forward(hidden)
        p_gen_logit, pg_cache = F_ptr.p_gen_logit_forward(
            context, s_top, x, p["ptr.w_h"], p["ptr.w_s"], p["ptr.w_x"], p["ptr.b_ptr"])
        ### END SOLUTION
        return logits, p_gen_logit, context, OutputCache(alpha, enc_out, hidden_cache, out_cache,
                                                         pg_cache)

    def _output_backward(self, dlogits, dp_gen_logit, cache: OutputCache):
        """Backward of :meth:`_output`: -> ds_top (B, T, H), dalpha (B, T, S), dx (B, T, D),
        d_enc_out (B, S, Hs). Adds out_hidden's, out's and ptr.*'s parameter gradients."""
        xp = backend.xp
        H = self.hidden_dim
        ### BEGIN SOLUTION
        dhidden = self.out.backward(dlogits, cache.out)
        dcat = self.out_hidden.backward(dhidden, cache.hidden)
        dcontext, ds_p, dx, g = F_ptr.p_gen_logit_backward(dp_gen_logit, cache.p_gen)
        for k, v in g.items():
            self.grads[f"ptr.{k}"] += v
        ds_top = dcat[..., :H] + ds_p
        dcontext += dcat[..., H:]
        dalpha = xp.matmul(dcontext, cache.enc_out.swapaxes(1, 2))
        d_enc_out = xp.matmul(cache.alpha.swapaxes(1, 2), dcontext)
        return ds_top, dalpha, dx, d_enc_out
        ### END SOLUTION

    # --- training -----------------------------------------------------------------------------
    def _forward(self, src, tgt):
        """Teacher-forced loss: encode, then :meth:`_step` for t = 1..T (coverage makes the
        steps sequential), then the vocabulary projection and the stable mixture NLL for all
        steps at once, plus λ times the coverage loss; both averaged over non-PAD targets."""
        xp = backend.xp
        memory, s, enc_cache, keys_cache = self._encode_memory(src)
        y_in, y = tgt[:, :-1], tgt[:, 1:]
        B, T = y.shape
        S = src.shape[1]
        x, emb_cache = self.embed.forward(self._unk(y_in))  # (B, T, D)
        s_top = xp.empty((B, T, self.hidden_dim), dtype=self.dtype)
        alpha = xp.empty((B, T, S), dtype=self.dtype)
        cov = xp.empty((B, T, S), dtype=self.dtype) if self.coverage else None
        c = xp.zeros((B, S), dtype=self.dtype)  # c^1 = 0
        steps = []
        ### BEGIN SOLUTION
        for t in range(T):
            s_top[:, t], s, alpha[:, t], step_cache = self._step(x[:, t], s, c, memory)
            steps.append(step_cache)
            if self.coverage:
                cov[:, t] = c
                c = c + alpha[:, t]
        logits, p_gen_logit, _, out_cache = self._output(s_top, alpha, x, memory.enc_out)
        mask = y != PAD
        n_tokens = max(int(mask.sum()), 1)
        nll, nll_cache = F_ptr.pointer_nll_forward(logits, p_gen_logit, alpha, src, y, mask,
                                                   check_ids=False)
        loss = nll.sum() / n_tokens
        cov_cache = None
        if self.coverage:
            covloss, cov_cache = F_ptr.coverage_loss_forward(alpha, cov, mask)
            loss = loss + self.cov_loss_weight * (covloss.sum() / n_tokens)
        ### END SOLUTION
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
        ### BEGIN SOLUTION
        dlogits, dp_gen_logit, dalpha = F_ptr.pointer_nll_backward(
            xp.full(cache.nll.lead, 1.0 / n, dtype=self.dtype), cache.nll)
        ds_top, dalpha_ctx, dx, d_enc_out = self._output_backward(dlogits, dp_gen_logit,
                                                                  cache.output)
        dalpha += dalpha_ctx
        dcov = None
        if cache.cov is not None:  # coverage loss: λ/N per token
            dalpha_cl, dcov = F_ptr.coverage_loss_backward(self.cov_loss_weight / n, cache.cov)
            dalpha += dalpha_cl
        T = dalpha.shape[1]
        dkeys = xp.zeros(cache.keys.x.shape[:2] + (self.attention_dim,), dtype=self.dtype)
        R = xp.zeros(dalpha[:, 0].shape, dtype=self.dtype)  # Σ_{t'>t} dc^{t'}
        ds = None
        for t in range(T - 1, -1, -1):
            da = dalpha[:, t] + R if dcov is not None else dalpha[:, t]
            dx_t, ds, dc, dk = self._step_backward(ds_top[:, t], ds, da, cache.steps[t])
            dkeys += dk
            dx[:, t] += dx_t
            if dcov is not None:
                R += dc
                R += dcov[:, t]
        d_enc_keys, dW_h, _ = linear_backward(dkeys, cache.keys)
        self.grads["attn.W_h"] += dW_h
        d_enc_out += d_enc_keys
        self.embed.backward(dx, cache.emb)  # the decoder inputs' share of the shared embedding
        self.encode_backward(d_enc_out, ds, cache.enc)  # the source's share, and the encoder
        ### END SOLUTION

    # --- the per-step decoder interface -------------------------------------------------------
    @backend.device_inputs
    def init_decoder(self, src):
        """Encode ``src`` (validated extended ids) and return the decoder state, a dict whose
        arrays have the batch on axis 0 (so beam search reorders all of it, coverage included):

        ``s`` (B, L, H); ``coverage`` (B, S) c^t, the attention summed over the earlier steps
        (tracked even with coverage off, for plots); ``alpha`` (B, S) and ``p_gen`` (B,) of the
        last step (for ``trace``); the memory ``enc_out`` (B, S, Hs), ``keys`` (B, S, A),
        ``mask`` (B, S) and ``src_ext`` (B, S).
        """
        xp = backend.xp
        memory, s0, _, _ = self._encode_memory(src)
        B, S = src.shape
        return {"s": s0.transpose(1, 0, 2), "coverage": xp.zeros((B, S), dtype=self.dtype),
                "alpha": xp.zeros((B, S), dtype=self.dtype),
                "p_gen": xp.ones((B,), dtype=self.dtype),
                "enc_out": memory.enc_out, "keys": memory.keys, "mask": memory.mask,
                "src_ext": memory.src_ext}

    @backend.device_inputs
    def decode_step(self, state, y_prev):
        """One decoder step: y_prev (B,) extended ids -> log P(w) (B, V + S) over the extended
        vocabulary (V + k: the row's k-th source OOV; −inf on slots no source word fills), and
        the new state. Coverage: c^t = c^{t−1} + a^{t−1} from the state's last alpha."""
        memory = Memory(state["enc_out"], state["keys"], state["mask"], state["src_ext"])
        coverage = state["coverage"] + state["alpha"]  # c^t (c^1 = 0 + 0)
        x = self.embed.params["W"][self._unk(y_prev)]
        s_top, s_new, alpha, _ = self._step(x, state["s"].transpose(1, 0, 2), coverage, memory)
        logits, p_gen_logit, _, _ = self._output(s_top[:, None], alpha[:, None], x[:, None],
                                                 memory.enc_out)
        V_ext = self.vocab_size + memory.src_ext.shape[1]
        log_probs = F_ptr.final_log_probs(logits[:, 0], p_gen_logit[:, 0], alpha,
                                          memory.src_ext, V_ext, check_ids=False)
        new = dict(state, s=s_new.transpose(1, 0, 2), coverage=coverage, alpha=alpha,
                   p_gen=F_ptr.sigmoid(p_gen_logit[:, 0]))
        return log_probs, new

    # --- inference ------------------------------------------------------------------------------
    def generate(self, src, max_len=50, beam_size=None, return_details=False):
        """Decode ``src`` (B, S) (extended ids allowed) greedily or by beam search (default 4).

        Returns:
            A list of B id lists (no BOS, EOS or PAD); an id ``V + k`` is the row's k-th source
            OOV: turn it back into its word with ``vocab.decode(ids, oovs=row_oovs)``. With
            ``return_details=True``, ``(ids, details)`` where ``details[b]`` is a dict of NumPy
            arrays with one entry per generated step of row b, its EOS step included:
            ``"alpha"`` (T_out, S) the attention a^t, ``"coverage"`` (T_out, S) the coverage
            c^t that step t saw (Σ_{t'<t} a^{t'}, also tracked when coverage is off) and
            ``"p_gen"`` (T_out,).
        """
        if not isinstance(return_details, bool):
            raise TypeError(f"return_details must be a bool; got {return_details!r}")
        if not return_details:
            return super().generate(src, max_len=max_len, beam_size=beam_size)
        from ..decoding import beam_search, greedy_decode

        src = self.check_src(src)
        beam_size = self.default_beam_size if beam_size is None else beam_size
        trace = ("alpha", "coverage", "p_gen")
        if beam_size == 1:
            ids, traces = greedy_decode(self, src, max_len=max_len, trace=trace)
        else:
            ids, traces = beam_search(self, src, beam_size=beam_size, max_len=max_len,
                                      trace=trace)
        details = [{k: traces[k][b] for k in trace} for b in range(len(ids))]
        return ids, details
