"""What every minis2s model shares: parameters, input checks, the loss of the active tier,
generation, saving.

A model is built from layers (``minis2s.layers``) registered under a prefix; ``params`` and
``grads`` are flat dicts ``"prefix.name" -> array`` holding *the same* arrays as the layers, so an
optimizer that updates ``model.params`` in place updates the layers.

Subclasses implement:

- ``_forward(src, tgt) -> loss`` (a 0-d array) and ``_backward()``, on validated backend arrays;
- the per-step decoder interface used by greedy and beam search (``minis2s.decoding``):
  ``init_decoder(src) -> state`` and ``decode_step(state, y_prev) -> (log_probs, state)``, where
  ``state`` is a dict of arrays whose first axis is the batch (so beam search can reorder it) and
  ``log_probs`` is (B, V_out);
- ``trace_keys``: the state entries that ``generate(..., trace=True)`` records per step.

Scheduled sampling (``forward(src, tgt, use_gold=mask)``, Bengio et al. 2015): each model's
``_forward(src, tgt, use_gold)`` then runs its decoder step by step through the same one step
that ``decode_step`` calls, and :class:`FedInputs` chooses each step's input: the gold token or
the model's own greedy prediction of the step before, a constant for the backward
(docs/derivations/scheduled_sampling.md).

The models compute on the tier that ``backend.impl()`` names: the layers pick it (the GRU's
fast or textbook loop), and so do the losses below (:func:`cross_entropy_forward`,
:func:`pointer_nll_forward`: ``minis2s.fast.loss`` or the textbook of ``minis2s.functional``).
The models check their batches once (:func:`check_batch`), then call the unchecked forms.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from .. import _checks, backend
from .. import init as initlib
from .._checks import positive_int
from ..checkpoint import save_checkpoint
from ..fast import loss as fast_loss
from ..functional import loss as F_loss
from ..functional import pointer as F_ptr
from ..layers import Module

__all__ = ["Model", "Memory", "FedInputs", "check_batch", "check_src", "cross_entropy_forward",
           "cross_entropy_backward", "pointer_nll_forward", "pointer_nll_backward"]


class Memory(NamedTuple):
    """What an attention decoder attends to, computed once per source sequence."""

    hbar: object  # (B, S, M) encoder outputs (0 at padded positions), the context's values
    keys: object  # (B, S, K) the score's keys k = key(hbar)
    mask: object  # (B, S) bool, True on real source tokens


# --- the losses of the active tier (unchecked: the model has checked its batch) --------------
def cross_entropy_forward(logits, targets, mask, label_smoothing=0.0):
    """The masked softmax cross-entropy (label-smoothed with ε > 0): -> (loss, cache). Equals
    ``minis2s.functional.loss.softmax_cross_entropy_forward`` on both tiers."""
    if backend.impl() == "fast":
        return fast_loss.softmax_cross_entropy_forward(logits, targets, mask, label_smoothing)
    return F_loss._softmax_cross_entropy_forward(logits, targets, mask, label_smoothing)


def cross_entropy_backward(cache, dloss=1.0):
    """Backward of :func:`cross_entropy_forward`: -> dlogits."""
    if backend.impl() == "fast":
        return fast_loss.softmax_cross_entropy_backward(cache, dloss)
    return F_loss._softmax_cross_entropy_backward(cache, dloss)


def pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight,
                        label_smoothing=0.0):
    """The pointer mixture's stable NLL (label-smoothed with ε > 0): -> (nll, cache). Equals
    ``minis2s.functional.pointer.pointer_nll_forward`` on both tiers (``weight`` a float array)."""
    if backend.impl() == "fast":
        return fast_loss.pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target,
                                             weight, label_smoothing)
    return F_ptr._pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight,
                                      label_smoothing)


def pointer_nll_backward(dnll, cache):
    """Backward of :func:`pointer_nll_forward`: -> dvocab_logits, dp_gen_logit, dalpha."""
    if backend.impl() == "fast":
        return fast_loss.pointer_nll_backward(dnll, cache)
    return F_ptr._pointer_nll_backward(dnll, cache)


#: the model-level validators, in minis2s._checks (importable from here as before)
check_batch = _checks.batch
check_src = _checks.source


# --- scheduled sampling: which token each decoder step reads ---------------------------------
#: forward's ``use_gold`` check, in minis2s._checks: a host bool (B, T − 1) array, column 0 True
check_use_gold = _checks.use_gold


class FedInputs:
    """The decoder inputs of a scheduled-sampling forward, chosen step by step.

    Step t reads ``y_in[:, t]`` where ``use_gold[:, t]``, and elsewhere the model's own greedy
    prediction at step t − 1: the argmax of its output distribution over the tokens that greedy
    decoding may emit (PAD and BOS excluded, as :func:`minis2s.decoding.greedy_decode` masks
    them), so an all-False pattern feeds what greedy decoding feeds. The prediction is a
    constant: no gradient flows through the argmax; the embedding row of the token fed gets its
    gradient as usual (``ids`` records every token fed, for the embedding's backward).

    The loop of a model's step-by-step forward::

        fed = FedInputs(y_in, use_gold)
        for t in range(T):
            x_t = E[fed.at(t)]
            ... the decoder step ...
            if fed.needs_prediction(t):
                fed.predict(log_probs_t)
    """

    def __init__(self, y_in, use_gold):
        self.gold_host = use_gold  # (B, T) host bool, checked by check_use_gold
        self.use_gold = backend.asarray(use_gold)
        self.y_in = y_in
        self.ids = y_in.copy()  # (B, T) the ids fed (extended ids for the pointer-generator)
        self._own = None

    def at(self, t):
        """The ids (B,) that decoder step t reads."""
        if self._own is not None:  # some rows of step t read the prediction of step t − 1
            self.ids[:, t] = backend.xp.where(self.use_gold[:, t], self.y_in[:, t], self._own)
            self._own = None
        return self.ids[:, t]

    def needs_prediction(self, t):
        """Whether some row of step t + 1 reads step t's prediction (a host test: no device
        synchronisation)."""
        return t + 1 < self.gold_host.shape[1] and not self.gold_host[:, t + 1].all()

    def predict(self, log_probs):
        """Record step t's greedy choice (B,) from its log-probabilities (B, V_out)."""
        from ..decoding import _banned  # greedy decoding's own mask of PAD and BOS

        self._own = _banned(log_probs, self.y_in[:, :0], 0, 0).argmax(axis=1).astype(
            self.y_in.dtype)


def _per_row(traced, keys, b):
    """generate's trace of row b: a dict of arrays (or, with n_best, a list of them)."""
    first = traced[keys[0]][b]
    if isinstance(first, list):  # n_best: one entry per hypothesis
        return [{k: traced[k][b][j] for k in keys} for j in range(len(first))]
    return {k: traced[k][b] for k in keys}


class Model(Module):
    """Base class of Seq2Seq, AttentionSeq2Seq and PointerGenerator: a :class:`Module` whose
    ``params``/``grads`` also hold its layers' arrays, under ``"layer.name"``."""

    #: the default beam size of generate()
    default_beam_size = 1
    #: ε of label smoothing in the training loss (set by the constructors' ``label_smoothing``)
    label_smoothing = 0.0
    #: the decoder-state entries that generate(..., trace=True) records at every step
    trace_keys = ()

    def __init__(self, dtype="float32", seed=0):
        super().__init__(dtype)
        self.seed = seed
        self.layers = {}
        self._cache = None
        #: dropout (docs/derivations/dropout.md): on only in a forward while ``training``
        self.training = False
        self.dropout_rates = {"embed": 0.0, "hidden": 0.0, "readout": 0.0}
        self._dropping = False  # True only inside a training forward with some rate > 0
        self._dropped = {}  # the multipliers keep / (1 − p) of the last forward, by name
        self._dropout_key = None  # (seed, step): every forward draws from default_rng(key)
        self._dropout_rng = None  # else: one generator that goes on from forward to forward
        self._mask_rng = None

    def set_sizes(self, embed_dim, hidden_dim, num_layers, bidirectional):
        """Validate and store D, H, L and whether the encoder is bidirectional."""
        self.embed_dim = positive_int("embed_dim", embed_dim)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.num_layers = positive_int("num_layers", num_layers)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool; got {bidirectional!r}")
        self.bidirectional = bidirectional

    # --- parameters ------------------------------------------------------------------------
    def add_layer(self, prefix, layer):
        """Register ``layer`` so its params/grads appear here as ``prefix.name``."""
        self.layers[prefix] = layer
        for k in layer.params:
            self.params[f"{prefix}.{k}"] = layer.params[k]
            self.grads[f"{prefix}.{k}"] = layer.grads[k]
        return layer

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def config(self) -> dict:
        """The constructor arguments; ``type(model)(**model.config)`` rebuilds the model."""
        return dict(self._config)

    # --- dropout ---------------------------------------------------------------------------
    #: the place of each dropout site: the embedding outputs, the inputs of GRU layers l > 0,
    #: the readout (the output layer's input)
    _DROPOUT_PLACES = {"src_embed": "embed", "tgt_embed": "embed", "encoder": "hidden",
                       "decoder": "hidden", "readout": "readout"}

    def set_dropout(self, dropout=None, *, embed=None, hidden=None, readout=None):
        """Set the inverted-dropout rates: ``dropout`` for every place, and ``embed``
        (the source and target embedding outputs), ``hidden`` (between stacked GRU layers) and
        ``readout`` (the output layer's input) each overriding it; None keeps a rate as it is.
        Each rate is in [0, 1). Recorded in ``config`` (``dropout_embed``, ``dropout_hidden``,
        ``dropout_readout``). Dropout acts only while :attr:`training` (:meth:`train`).
        Returns the model."""
        from ..functional.dropout import dropout_rate

        for place, p in (("embed", embed), ("hidden", hidden), ("readout", readout)):
            p = dropout if p is None else p
            if p is not None:
                self.dropout_rates[place] = dropout_rate(
                    "dropout" if p is dropout else f"dropout_{place}", p)
        if hasattr(self, "_config"):
            self._config.update(self.dropout_config())
        return self

    def dropout_config(self) -> dict:
        """The rates as config entries: ``dropout_embed``, ``dropout_hidden``,
        ``dropout_readout``."""
        return {f"dropout_{k}": v for k, v in self.dropout_rates.items()}

    def train(self, mode=True):
        """Training mode (``mode=True``): :meth:`forward` applies dropout. ``generate``, greedy
        and beam search never do. Returns the model."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool; got {mode!r}")
        self.training = mode
        return self

    def eval(self):
        """Evaluation mode: no dropout (the same as ``train(False)``). Returns the model."""
        return self.train(False)

    #: the last entry of the dropout masks' seed sequence ("drop"), so that they never share a
    #: stream with the other draws keyed by (seed, step) (the batch order, teacher forcing)
    DROPOUT_STREAM = 0x64726F70

    def seed_dropout(self, seed, step=None):
        """Seed the dropout masks (ints >= 0). With ``step=None`` the masks of successive
        forwards come from one generator ``numpy.random.default_rng([seed, DROPOUT_STREAM])``.
        With an int ``step`` every forward draws its masks from
        ``default_rng([seed, step, DROPOUT_STREAM])`` afresh, so they are a function of
        (seed, step) alone (``fit`` passes its global step, which keeps a resumed run exact; a
        gradient check gets a fixed mask). Returns the model."""
        if step is None:
            self._dropout_key = None
            self._dropout_rng = initlib.host_rng([int(seed), self.DROPOUT_STREAM])
        else:
            self._dropout_key = (int(seed), int(step), self.DROPOUT_STREAM)
        return self

    def dropout_mask(self, name, shape):
        """The host keep mask (bool, True with probability 1 − p) of dropout site ``name``
        (``"src_embed"``, ``"tgt_embed"``, ``"encoder.l1"``, ``"decoder.l1"``, ...,
        ``"readout"``) for an input of ``shape``. A test may replace it on the instance to fix
        the masks."""
        from ..functional.dropout import draw_keep_mask

        return draw_keep_mask(shape, self._rate(name), self._mask_rng)

    def _rate(self, name):
        return self.dropout_rates[self._DROPOUT_PLACES[name.split(".")[0]]]

    def _begin_dropout(self):
        """At the start of a forward: dropout on (and the masks' generator chosen) when
        training with some rate > 0."""
        self._dropped = {}
        self._dropping = self.training and any(p > 0 for p in self.dropout_rates.values())
        if not self._dropping:
            return
        if self._dropout_key is not None:
            self._mask_rng = initlib.host_rng(self._dropout_key)
        else:
            if self._dropout_rng is None:  # seeded by the model's seed (if it is an int)
                if isinstance(self.seed, int) and self.seed >= 0:
                    self.seed_dropout(self.seed)
                else:
                    self._dropout_rng = initlib.host_rng()
            self._mask_rng = self._dropout_rng

    def _dropout_multiplier(self, name, shape):
        """The multiplier keep / (1 − p) (backend array) of site ``name`` in this forward,
        drawn at its first use, or None (no dropout there now)."""
        if not self._dropping or self._rate(name) == 0:
            return None
        if name not in self._dropped:
            from ..functional.dropout import keep_multiplier

            keep = self.dropout_mask(name, tuple(shape))
            self._dropped[name] = keep_multiplier(keep, self._rate(name), self.dtype)
        return self._dropped[name]

    def _dropout(self, name, x):
        """Inverted dropout of site ``name`` on x (identity when it is off)."""
        d = self._dropout_multiplier(name, x.shape)
        return x if d is None else x * d

    def _dropout_backward(self, name, dy):
        """Backward of :meth:`_dropout`: the same multiplier."""
        d = self._dropped.get(name)
        return dy if d is None else dy * d

    def _gru_dropout(self, name, gru, B, T):
        """The between-layer multipliers of the GRU ``name`` ((B, T, H·dirs) for layers
        1 .. L−1), or None."""
        if gru.num_layers == 1 or not self._dropping or self._rate(name) == 0:
            return None
        width = gru.hidden_dim * gru.num_directions
        return [self._dropout_multiplier(f"{name}.l{k}", (B, T, width))
                for k in range(1, gru.num_layers)]

    def _run_gru(self, name, gru, x, h0, mask):
        """``gru.forward(x, h0, mask)`` over x (B, T, ·) with this forward's dropout masks
        between its layers; they are passed only when there are some, so a GRU subclass with
        the plain ``forward(x, h0, mask)`` (notebook 06's) still works."""
        d = self._gru_dropout(name, gru, *x.shape[:2])
        return gru.forward(x, h0, mask) if d is None else gru.forward(x, h0, mask, d)

    @staticmethod
    def _at(masks, t):
        """Step t's slice (B, ·) of a list of (B, T, ·) multipliers (or None)."""
        return None if masks is None else [d[:, t] for d in masks]

    # --- label smoothing ---------------------------------------------------------------------
    def set_label_smoothing(self, label_smoothing):
        """Set ε in [0, 1) of label smoothing: :meth:`forward` then returns (and
        :meth:`backward` differentiates) the mean per non-PAD predicted token of the
        cross-entropy against q = (1 − ε) onehot(y) + ε/V, the loss that training optimises
        (as PyTorch's ``label_smoothing``); 0 is the plain NLL. Recorded in ``config``.
        docs/derivations/linear_and_loss.md and pointer.md derive it. Returns the model."""
        self.label_smoothing = _checks.label_smoothing(label_smoothing)
        if hasattr(self, "_config"):
            self._config["label_smoothing"] = self.label_smoothing
        return self

    @contextlib.contextmanager
    def plain_loss(self):
        """Within this block :meth:`forward` returns the plain mean NLL per predicted token
        (label smoothing off, ``config`` untouched): what ``minis2s.train.validation_loss``
        reports, comparable across values of ε."""
        eps = self.label_smoothing
        self.label_smoothing = 0.0
        try:
            yield self
        finally:
            self.label_smoothing = eps

    # --- training interface ----------------------------------------------------------------
    def forward(self, src, tgt, *, use_gold=None) -> float:
        """Mean negative log-likelihood per non-PAD predicted token (``tgt[:, 1:]``).

        With label smoothing ε > 0 (the constructors' ``label_smoothing``) it is the mean
        label-smoothed cross-entropy per non-PAD predicted token, the loss that
        :meth:`backward` differentiates; :meth:`plain_loss` gives the plain NLL.

        Args:
            src: (B, S) int ids, right-padded with PAD; NumPy or the active backend.
            tgt: (B, T) int ids, each row BOS ... EOS then PAD.
            use_gold: None (teacher forcing: every decoder input is the gold tgt[:, t]), or a
                boolean (B, T − 1) array for scheduled sampling: decoder input t reads tgt[:, t]
                where True and the model's own greedy prediction of step t − 1 where False
                (column 0 must be True). The decoder then runs step by step through the step
                that greedy and beam search use (:class:`FedInputs`;
                ``minis2s.optim.TeacherForcing`` draws such masks;
                docs/derivations/scheduled_sampling.md).

        Returns:
            The loss as a Python float. The cache for :meth:`backward` is kept on the model.
        """
        src, tgt = self.check_batch(src, tgt)
        self._begin_dropout()  # on only while training (docs/derivations/dropout.md)
        if use_gold is None:
            loss = self._forward(src, tgt)
        else:
            loss = self._forward(src, tgt, use_gold=check_use_gold(use_gold, tgt.shape))
        self._dropping = False
        return float(loss)

    def backward(self):
        """Fill ``grads`` with d loss / d param for the last :meth:`forward`."""
        if self._cache is None:
            raise RuntimeError("backward() called before forward()")
        self.zero_grad()
        self._backward()

    def check_batch(self, src, tgt):
        return check_batch(src, tgt, self.src_vocab_size, self.tgt_vocab_size)

    def check_src(self, src):
        return check_src(src, self.src_vocab_size)

    def _forward(self, src, tgt, use_gold=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- inference ---------------------------------------------------------------------------
    def generate(self, src, max_len=50, beam_size=None, trace=False, *, length_penalty=None,
                 coverage_penalty=0.0, min_len=0, no_repeat_ngram=0, n_best=None,
                 sample=False, temperature=1.0, top_k=0, top_p=1.0, seed=None):
        """Decode ``src`` (B, S) greedily (beam_size 1), by beam search, or by sampling.

        Args:
            src: (B, S) int ids, right-padded with PAD; NumPy or the active backend.
            max_len: the most tokens to generate per row (EOS included).
            beam_size: None for the model's default (``default_beam_size``: 1, or 4 for
                PointerGenerator); 1 is greedy.
            trace: also return what the decoder attended to (models with attention only;
                Seq2Seq raises ValueError).
            length_penalty: GNMT's alpha >= 0: beam search ranks by
                log P(Y|X) / ((5 + |Y|) / 6) ** alpha (0: log P alone); None (the default)
                ranks by log P(Y|X) / |Y|, the mean log-probability per token.
            coverage_penalty: Wu et al.'s beta >= 0: adds beta · Σ_i log(min(Σ_t α_t,i, 1))
                to the score (models with attention only).
            min_len: EOS is not allowed before this many tokens.
            no_repeat_ngram: n > 0 never repeats an n-gram within an output.
            n_best: None returns one id list per row; an int k (1 <= k <= beam size) returns
                k :class:`minis2s.decoding.Hypothesis` ``(ids, score, log_prob)`` per row, best
                first, scored by the penalised score.
            sample: draw the tokens at random instead (one output per row; no beam options),
                with ``temperature`` > 0, ``top_k`` (0: all tokens), ``top_p`` (nucleus mass,
                1: all) and ``seed`` (an int or ``numpy.random.Generator``; None: fresh).
                docs/decoding.md explains each option.

        Returns:
            A list of B lists of int ids, without BOS, EOS or PAD (with ``n_best``: B lists of
            Hypothesis). With ``trace=True``, ``(ids, traces)`` where ``traces[b]`` is a dict
            of NumPy arrays with one row per generated step of row b, its EOS step included
            (``max_len`` rows if it never emitted EOS): ``"alpha"`` (T_out, S), the attention
            weights over the padded source width S (exactly 0 on PAD columns), and for
            PointerGenerator also ``"coverage"`` (T_out, S), the coverage each step saw, and
            ``"p_gen"`` (T_out,). With ``n_best`` too, ``traces[b]`` is a list of such dicts,
            one per hypothesis.
        """
        from ..decoding import beam_search, greedy_decode, sample_decode

        self._dropping = False  # decoding never drops

        for name, flag in (("trace", trace), ("sample", sample)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool; got {flag!r}")
        if trace and not self.trace_keys:
            raise ValueError(f"trace=True records the attention weights, and "
                             f"{type(self).__name__} has no attention; use AttentionSeq2Seq or "
                             "PointerGenerator")
        if coverage_penalty != 0 and "alpha" not in self.trace_keys:
            raise ValueError(f"coverage_penalty={coverage_penalty!r} needs attention weights, "
                             f"and {type(self).__name__} has no attention: use "
                             "coverage_penalty=0, or AttentionSeq2Seq or PointerGenerator")
        sampling = {"temperature": (temperature, 1.0), "top_k": (top_k, 0),
                    "top_p": (top_p, 1.0), "seed": (seed, None)}
        beam = {"beam_size": (beam_size, None), "length_penalty": (length_penalty, None),
                "coverage_penalty": (coverage_penalty, 0.0), "n_best": (n_best, None)}
        given = [k for k, (v, default) in (beam if sample else sampling).items()
                 if v is not default and v != default and not (k == "beam_size" and v == 1)]
        if given:
            names = f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to"
            raise ValueError(f"{names} beam search, and sample=True draws one output per row "
                             "at random" if sample else f"{names} sampling: give sample=True")
        src = self.check_src(src)
        keys = self.trace_keys if trace else ()
        common = dict(max_len=max_len, trace=keys, min_len=min_len,
                      no_repeat_ngram=no_repeat_ngram)
        beam_size = self.default_beam_size if beam_size is None else beam_size
        if sample:
            out = sample_decode(self, src, temperature=temperature, top_k=top_k, top_p=top_p,
                                seed=seed, **common)
        elif (beam_size == 1 and n_best is None and length_penalty is None
              and not coverage_penalty):
            out = greedy_decode(self, src, **common)  # what beam search with one beam finds
        else:
            out = beam_search(self, src, beam_size=beam_size, length_penalty=length_penalty,
                              coverage_penalty=coverage_penalty, n_best=n_best, **common)
        if not trace:
            return out
        ids, traced = out
        return ids, [_per_row(traced, keys, b) for b in range(len(ids))]

    def init_decoder(self, src):  # pragma: no cover - abstract
        raise NotImplementedError

    def decode_step(self, state, y_prev):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- saving -----------------------------------------------------------------------------
    def save(self, path):
        """Write the model (class, config and params) to exactly ``path``, atomically."""
        save_checkpoint(path, self)

    def state_dict(self) -> dict:
        """Host copies of all params (NumPy arrays)."""
        return {k: backend.to_numpy(v).copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        missing = sorted(set(self.params) - set(state))
        extra = sorted(set(state) - set(self.params))
        if missing or extra:
            raise ValueError(
                f"state does not match the model: missing {missing}, unexpected {extra}"
            )
        for k, p in self.params.items():
            v = backend.asarray(state[k], dtype=p.dtype)
            if v.shape != p.shape:
                raise ValueError(f"state[{k!r}] has shape {v.shape}; the model expects {p.shape}")
            p[...] = v

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"
