"""The explicit training loop, evaluation and checkpoints.

One training step is exactly what the article's §3.1 (3a) steps b–e describe, batched::

    loss = model.forward(src, tgt)          # (b) encode, (c) decode with teacher forcing, (d) loss
    model.backward()                        # gradients of (d) for every parameter
    norm = clip_grad_norm(model.grads, 5.0) # rescale if the global norm is above 5
    optimizer.step()                        # (e) update

:func:`fit` repeats it over epochs with a progress bar, validation after every epoch, atomic
checkpoints and a loss-curve PNG. A non-finite loss or gradient is caught at the step where it
appears (:class:`NonFiniteError`), and ``on_nonfinite="skip"`` skips that batch instead.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from . import backend
from .checkpoint import save_checkpoint
from .metrics import exact_match, token_accuracy
from .optim import clip_grad_norm

__all__ = ["train_step", "evaluate", "fit", "resume", "NonFiniteError", "TrainResult"]


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became NaN or infinite."""


def largest_norm(arrays):
    """(name, norm) of the array with the largest L2 norm (a non-finite one first)."""
    xp = backend.xp
    best, best_norm = None, -1.0
    for k, g in arrays.items():
        n = float(xp.sqrt(xp.vdot(g.ravel(), g.ravel())))
        if not math.isfinite(n):
            return k, n
        if n > best_norm:
            best, best_norm = k, n
    return best, best_norm


def train_step(model, optimizer, src, tgt, clip=5.0):
    """forward → backward → clip → step. Returns (loss, gradient norm before clipping).

    Raises :class:`NonFiniteError` (and leaves the params untouched) when the loss or the
    gradient norm is not finite.
    """
    loss = model.forward(src, tgt)
    if not math.isfinite(loss):
        name, value = largest_norm(model.params)
        raise NonFiniteError(f"loss is {loss}; the parameter with the largest norm is {name!r} "
                             f"({value:.4g})")
    model.backward()
    norm = clip_grad_norm(model.grads, clip) if clip else _norm(model.grads)
    if not math.isfinite(norm):
        name, value = largest_norm(model.grads)
        raise NonFiniteError(f"gradient norm is {norm}; the gradient with the largest norm is "
                             f"that of {name!r} ({value})")
    optimizer.step()
    return loss, norm


def _norm(grads):
    from .optim import grad_norm

    return grad_norm(grads)


def evaluate(model, pairs, tgt_vocab=None, batch_size=256, max_len=None, beam_size=None):
    """Exact match and token accuracy of ``model.generate`` on encoded pairs.

    Args:
        pairs: list of (src_ids, tgt_ids) as made by ``minis2s.data.encode_pairs`` (tgt with
            BOS ... EOS).
        max_len: generation limit (default: the longest reference + 5).

    Returns:
        dict with ``exact_match``, ``token_accuracy``, ``n`` and ``hyps`` (list of id lists).
    """
    from .data.batching import pad_sequences

    if not pairs:
        raise ValueError("pairs must not be empty")
    refs = [[int(i) for i in t[1:-1]] for _, t in pairs]
    if max_len is None:
        max_len = max(len(r) for r in refs) + 5
    hyps = []
    for i in range(0, len(pairs), batch_size):
        src = pad_sequences([s for s, _ in pairs[i:i + batch_size]])
        hyps.extend(model.generate(src, max_len=max_len, beam_size=beam_size))
    return {
        "exact_match": exact_match(hyps, refs),
        "token_accuracy": token_accuracy(hyps, refs),
        "n": len(refs),
        "hyps": hyps,
    }


@dataclass
class TrainResult:
    history: dict = field(default_factory=dict)
    best_exact: float = 0.0
    checkpoint: str | None = None
    files: list = field(default_factory=list)  #: the paths fit wrote, each once


def fit(model, optimizer, train_pairs, val_pairs=None, epochs=1, batch_size=64, clip=5.0,
        seed=0, out_dir=None, vocabs=None, bucket=True, on_nonfinite="stop", progress=True,
        val_max_len=None, log=print, start_epoch=0, history=None, extra=None):
    """Train ``model`` on encoded pairs for ``epochs`` epochs with the explicit loop.

    Args:
        model, optimizer: a minis2s model and an optimizer over its params/grads.
        train_pairs, val_pairs: lists of (src_ids, tgt_ids) (see ``minis2s.data.encode_pairs``).
        epochs: number of passes over ``train_pairs``. batch_size: B. clip: max gradient norm
            (0 disables clipping).
        seed: seeds the batch order (the order of epoch k depends only on (seed, k), so a run
            resumed at epoch k sees the same batches as an uninterrupted one).
        out_dir: where to write ``last.ckpt`` (after every epoch), ``best.ckpt`` (best validation
            exact match) and ``loss_curve.png``; None writes nothing.
        vocabs: dict of Vocab objects stored in the checkpoints.
        on_nonfinite: "stop" raises :class:`NonFiniteError` naming the step, the batch and the
            parameter with the largest gradient; "skip" skips that batch and goes on (and
            raises when every batch of an epoch was skipped: the params have diverged).
        progress: show a tqdm progress bar with the loss and tokens/s.
        log: a print-like function for the per-epoch summary (None for silence).
        start_epoch, history: to resume (see :func:`resume`).
        extra: a JSON-safe dict recorded in every checkpoint's ``extra`` beside the epoch, seed
            and history (the CLI records the data configuration and the tokenisers there).

    Returns:
        A :class:`TrainResult` with ``history``: ``step_loss``, ``epoch_end_step``,
        ``epoch_time``, ``tokens_per_s``, ``val_exact``, ``val_token_acc``, ``skipped``;
        ``best_exact``, ``checkpoint`` (best.ckpt) and ``files``, every path written.

    Each epoch logs one line: the training loss (the mean of the last 50 steps), the epoch's
    time and speed, the validation scores and the estimated time left for all epochs.
    """
    from .data.batching import make_batches

    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip'; got {on_nonfinite!r}")
    if not train_pairs:
        raise ValueError("train_pairs must not be empty")
    history = history or {"step_loss": [], "epoch_end_step": [], "epoch_time": [],
                          "tokens_per_s": [], "val_exact": [], "val_token_acc": [],
                          "skipped": []}
    result = TrainResult(history, max(history["val_exact"], default=0.0))
    log = log or (lambda *a, **k: None)
    batches = make_batches(train_pairs, batch_size, shuffle=True, seed=seed, bucket=bucket)
    for epoch in range(start_epoch, epochs):
        batches.set_epoch(epoch)
        bar = _progress(batches, progress, f"epoch {epoch + 1}/{epochs}")
        t0, tokens, n_batches, n_skipped = time.perf_counter(), 0, 0, 0
        if epoch == start_epoch:
            t_start = t0
        for b_idx, batch in enumerate(bar):
            n_batches += 1
            step = len(history["step_loss"]) + len(history["skipped"]) + 1
            try:
                loss, _ = train_step(model, optimizer, batch.src, batch.tgt, clip)
            except NonFiniteError as e:
                where = f"step {step} (epoch {epoch + 1}, batch {b_idx})"
                if on_nonfinite == "stop":
                    raise NonFiniteError(f"non-finite training at {where}: {e}") from None
                history["skipped"].append(step)
                n_skipped, last_error = n_skipped + 1, f"{where}: {e}"
                log(f"warning: skipped {where}: {e}")
                continue
            history["step_loss"].append(loss)
            tokens += batch.n_tokens
            if progress and b_idx % 10 == 0:
                rate = tokens / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}")
        if n_skipped and n_skipped == n_batches:  # the params themselves have diverged
            raise NonFiniteError(
                f"non-finite training: all {n_batches} batches of epoch {epoch + 1} were skipped "
                f"(last at {last_error}); the parameters have diverged, so skipping cannot "
                "help: lower the learning rate or resume from the last good checkpoint")
        dt = time.perf_counter() - t0
        history["epoch_end_step"].append(len(history["step_loss"]))
        history["epoch_time"].append(dt)
        history["tokens_per_s"].append(tokens / dt)
        msg = f"epoch {epoch + 1}/{epochs}: loss {_mean_tail(history['step_loss'])} " \
              f"({dt:.1f} s, {tokens / dt:,.0f} tokens/s)"
        if val_pairs:
            ev = evaluate(model, val_pairs, max_len=val_max_len)
            history["val_exact"].append(ev["exact_match"])
            history["val_token_acc"].append(ev["token_accuracy"])
            msg += f"  val exact match {ev['exact_match']:.4f}  token acc " \
                   f"{ev['token_accuracy']:.4f}"
        log(msg + _time_left(time.perf_counter() - t_start, epoch + 1 - start_epoch,
                             epochs - epoch - 1))
        if out_dir is not None:
            record = {**(extra or {}), "epoch": epoch + 1, "seed": seed, "history": history}
            save_checkpoint(os.path.join(out_dir, "last.ckpt"), model, vocabs, optimizer, record)
            result.files.append(os.path.join(out_dir, "last.ckpt"))
            exact = history["val_exact"][-1] if val_pairs else 0.0
            if not val_pairs or exact >= result.best_exact:
                result.best_exact = exact
                save_checkpoint(os.path.join(out_dir, "best.ckpt"), model, vocabs, optimizer,
                                record)
                result.files.append(os.path.join(out_dir, "best.ckpt"))
            result.checkpoint = os.path.join(out_dir, "best.ckpt")
            import matplotlib.pyplot as plt

            from .plots import loss_curve

            plt.close(loss_curve(history, os.path.join(out_dir, "loss_curve.png")))
            result.files.append(os.path.join(out_dir, "loss_curve.png"))
    result.files = list(dict.fromkeys(result.files))  # each once, in the order first written
    return result


def _mean_tail(losses, k=50):
    """The mean training loss of the last ``k`` steps, labelled as such."""
    tail = losses[-k:]
    if not tail:
        return "n/a"
    return f"{sum(tail) / len(tail):.4f} (mean of the last {len(tail)} steps)"


def _time_left(elapsed, done, remaining):
    """The estimated time to the end of training, from the mean time of the ``done`` epochs
    so far (training, validation and checkpoints): "; about 3 min 10 s left, 4 min 5 s for all
    4 epochs"."""
    if done <= 0:
        return ""
    per_epoch = elapsed / done
    total = f"{duration(elapsed + per_epoch * remaining)} for all {done + remaining} epochs"
    if not remaining:
        return f"; {duration(elapsed)} in all"
    return f"; about {duration(per_epoch * remaining)} left, {total}"


def duration(seconds):
    """A readable duration: "42 s", "3 min 5 s", "1 h 12 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _progress(iterable, enabled, desc):
    if not enabled:
        return _Quiet(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


class _Quiet:
    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return iter(self.it)

    def set_postfix(self, **_):
        pass


def resume(path, train_pairs, val_pairs=None, epochs=1, **fit_kwargs):
    """Continue a run from a checkpoint written by :func:`fit` (``last.ckpt``).

    The model, the optimizer (class, hyperparameters and state), the seed and the history are
    restored, and training goes on from the epoch after the saved one. Because the batch order of
    epoch k depends only on (seed, k), the result is identical, on the CPU, to a run that was never
    interrupted. ``epochs`` is the total, as in the original call.

    Returns:
        (model, optimizer, :class:`TrainResult`).
    """
    from . import optim
    from .checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(path)
    if ck.optimizer is None or "epoch" not in ck.extra:
        raise CheckpointError(f"{path}: not a training checkpoint (no optimizer state or epoch); "
                              "resume needs last.ckpt or best.ckpt written by fit()")
    cls = getattr(optim, ck.optimizer["class"])
    hyper = {k: v for k, v in ck.optimizer["hyper"].items() if k in ("lr", "momentum", "eps")}
    if cls is optim.Adam:
        hyper["betas"] = (ck.optimizer["hyper"]["beta1"], ck.optimizer["hyper"]["beta2"])
    opt = cls(ck.model.params, ck.model.grads, **hyper)
    ck.restore_optimizer(opt)
    fit_kwargs.setdefault("vocabs", ck.vocabs or None)
    fit_kwargs.setdefault("extra", {k: v for k, v in ck.extra.items()  # data, tokenisers, ...
                                    if k not in ("epoch", "seed", "history")})
    result = fit(ck.model, opt, train_pairs, val_pairs, epochs=epochs,
                 seed=ck.extra.get("seed", 0), start_epoch=int(ck.extra["epoch"]),
                 history=ck.extra.get("history"), **fit_kwargs)
    return ck.model, opt, result
