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
from .optim import METRIC_MODES, TeacherForcing, clip_grad_norm, improved

__all__ = ["train_step", "evaluate", "fit", "resume", "NonFiniteError", "TrainResult",
           "claim_run_dir", "RunLock", "RunDirError", "run_files", "duration"]


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


def train_step(model, optimizer, src, tgt, clip=5.0, use_gold=None):
    """forward → backward → clip → step. Returns (loss, gradient norm before clipping).

    ``use_gold``: None (teacher forcing), or scheduled sampling's (B, T − 1) boolean mask of
    the decoder inputs that read the gold token (``model.forward``'s; drawn by
    ``minis2s.optim.TeacherForcing``).

    Raises :class:`NonFiniteError` (and leaves the params untouched) when the loss or the
    gradient norm is not finite.
    """
    if use_gold is None:
        loss = model.forward(src, tgt)
    else:
        loss = model.forward(src, tgt, use_gold=use_gold)
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
    best_metric: str = "exact"  #: the validation metric that chose best.ckpt
    best_value: float | None = None  #: its best value (None: no validation yet)
    stopped_early: bool = False  #: early stopping ended the run before ``epochs``


def fit(model, optimizer, train_pairs, val_pairs=None, epochs=1, batch_size=64, clip=5.0,
        seed=0, out_dir=None, vocabs=None, bucket=True, on_nonfinite="stop", progress=True,
        val_max_len=None, log=print, start_epoch=0, history=None, extra=None, schedule=None,
        early_stopping=None, best_metric=None, teacher_forcing=None):
    """Train ``model`` on encoded pairs for ``epochs`` epochs with the explicit loop.

    Args:
        model, optimizer: a minis2s model and an optimizer over its params/grads.
        train_pairs, val_pairs: lists of (src_ids, tgt_ids) (see ``minis2s.data.encode_pairs``).
        epochs: number of passes over ``train_pairs``. batch_size: B. clip: max gradient norm
            (0 disables clipping).
        seed: seeds the batch order (the order of epoch k depends only on (seed, k), so a run
            resumed at epoch k sees the same batches as an uninterrupted one), and the dropout
            masks: those of global step k come from (seed, k) (``model.seed_dropout``). Dropout
            is on (``model.train()``) for the training steps only, off for validation, and the
            model is left in ``eval()`` mode.
        out_dir: where to write ``last.ckpt`` (after every epoch), ``best.ckpt`` (the epoch with
            the best ``best_metric``; a tie does not replace it) and ``loss_curve.png``; None
            writes nothing.
        vocabs: dict of Vocab objects stored in the checkpoints.
        on_nonfinite: "stop" raises :class:`NonFiniteError` naming the step, the batch and the
            parameter with the largest gradient; "skip" skips that batch and goes on (and
            raises when every batch of an epoch was skipped: the params have diverged).
        progress: show a tqdm progress bar with the loss and tokens/s.
        log: a print-like function for the per-epoch summary (None for silence).
        start_epoch, history: to resume (see :func:`resume`).
        extra: a JSON-safe dict recorded in every checkpoint's ``extra`` beside the epoch, seed
            and history (the CLI records the data configuration and the tokenisers there).
        schedule: a learning-rate schedule over ``optimizer`` (``minis2s.optim``): a
            ``WarmupSchedule`` steps after every optimizer step (fit sets its ``total_steps``
            to epochs × batches per epoch when it is None, and again when a run resumed with
            another ``epochs`` had it so set), a ``ReduceLROnPlateau`` after every
            validation, on ``val_<its metric>``. Its state goes into the checkpoints, so that
            :func:`resume` continues it exactly.
        early_stopping: a ``minis2s.optim.EarlyStopping``: after each validation it is given
            ``val_<its metric>``, and training stops when it says so (after that epoch's
            checkpoints). Its state goes into the checkpoints too.
        best_metric: the validation metric that chooses ``best.ckpt``: "exact" (the default),
            "token_acc", "loss" or "bleu" (``minis2s.optim.METRIC_MODES``); default: the early
            stopping's metric when there is one. "loss" is the teacher-forced loss on
            ``val_pairs`` (:func:`validation_loss`), "bleu" the corpus BLEU of the generated
            token ids against the references' (:func:`id_bleu`); each is computed only when
            asked for.
        teacher_forcing: a ``minis2s.optim.TeacherForcing`` (scheduled sampling): before every
            step it draws which decoder inputs read the gold token (the rest read the model's
            own previous prediction), from (its seed, its step count) alone; None or a ratio of
            1 is plain teacher forcing. Its state goes into the checkpoints, and each epoch
            logs and records (``tf_ratio``) the ratio of its last step.

    Returns:
        A :class:`TrainResult` with ``history``: ``step_loss``, ``epoch_end_step``,
        ``epoch_time``, ``tokens_per_s``, ``val_exact``, ``val_token_acc``, ``skipped``,
        ``step_lr`` (the rate of every step), ``lr`` (the rate of each epoch's last step) and,
        when computed, ``val_loss`` and ``val_bleu``; ``best_exact``, ``checkpoint``
        (best.ckpt), ``files`` (every path written), ``best_metric``, ``best_value`` and
        ``stopped_early``.

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
    for key in ("step_lr", "lr"):  # histories of older checkpoints have no rates
        history.setdefault(key, [])
    if teacher_forcing is not None and not isinstance(teacher_forcing, TeacherForcing):
        raise TypeError(f"teacher_forcing must be a minis2s.optim.TeacherForcing or None; got "
                        f"{type(teacher_forcing).__name__}")
    best_metric, needed = _check_training_tools(schedule, early_stopping, best_metric,
                                                val_pairs)
    result = TrainResult(history, max(history["val_exact"], default=0.0), best_metric=best_metric,
                         best_value=_best_so_far(history, best_metric))
    log = log or (lambda *a, **k: None)
    batches = make_batches(train_pairs, batch_size, shuffle=True, seed=seed, bucket=bucket)
    if getattr(schedule, "per", None) == "step" and hasattr(schedule, "set_total_steps") and (
            schedule.total_steps is None or schedule.total_steps_auto):
        schedule.set_total_steps(epochs * len(batches), auto=True)  # T of this many epochs
    if early_stopping is not None and early_stopping.stopped:  # resumed after it stopped
        log(f"early stopping had already stopped this run: no better val {early_stopping.metric} "
            f"than {early_stopping.best:.4g} (epoch {early_stopping.best_epoch}) for "
            f"{early_stopping.num_bad} epochs")
        result.stopped_early = True
        return result
    for epoch in range(start_epoch, epochs):
        batches.set_epoch(epoch)
        bar = _progress(batches, progress, f"epoch {epoch + 1}/{epochs}")
        t0, tokens, n_batches, n_skipped = time.perf_counter(), 0, 0, 0
        if epoch == start_epoch:
            t_start = t0
        for b_idx, batch in enumerate(bar):
            n_batches += 1
            step = len(history["step_loss"]) + len(history["skipped"]) + 1
            lr = optimizer.lr  # the rate of this step
            try:
                use_gold = None
                if teacher_forcing is not None:  # drawn from (seed, step): resumes exactly
                    tf_ratio = teacher_forcing.current
                    use_gold = teacher_forcing.use_gold(batch.tgt.shape)
                    teacher_forcing.step()
                _dropout_on(model, seed, step)  # masks from (seed, step): resumes exactly
                loss, _ = train_step(model, optimizer, batch.src, batch.tgt, clip, use_gold)
            except NonFiniteError as e:
                where = f"step {step} (epoch {epoch + 1}, batch {b_idx})"
                if on_nonfinite == "stop":
                    raise NonFiniteError(f"non-finite training at {where}: {e}") from None
                history["skipped"].append(step)
                n_skipped, last_error = n_skipped + 1, f"{where}: {e}"
                log(f"warning: skipped {where}: {e}")
                continue
            history["step_loss"].append(loss)
            history["step_lr"].append(lr)
            if getattr(schedule, "per", None) == "step":
                schedule.step()  # sets the rate of the next step
            tokens += batch.n_tokens
            if progress and b_idx % 10 == 0:
                rate = tokens / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}")
        _dropout_off(model)  # validation, generation and the checkpoints: no dropout
        if n_skipped and n_skipped == n_batches:  # the params themselves have diverged
            raise NonFiniteError(
                f"non-finite training: all {n_batches} batches of epoch {epoch + 1} were skipped "
                f"(last at {last_error}); the parameters have diverged, so skipping cannot "
                "help: lower the learning rate or resume from the last good checkpoint")
        dt = time.perf_counter() - t0
        history["epoch_end_step"].append(len(history["step_loss"]))
        history["epoch_time"].append(dt)
        history["tokens_per_s"].append(tokens / dt)
        history["lr"].append(history["step_lr"][-1])
        if teacher_forcing is not None:
            history.setdefault("tf_ratio", []).append(tf_ratio)
        msg = f"epoch {epoch + 1}/{epochs}: loss {_mean_tail(history['step_loss'])}, " \
              f"{dt:.1f} s, {tokens / dt:,.0f} tokens/s"
        if teacher_forcing is not None:
            msg += f", teacher forcing {tf_ratio:.3g}"
        if val_pairs:
            ev = evaluate(model, val_pairs, max_len=val_max_len)
            history["val_exact"].append(ev["exact_match"])
            history["val_token_acc"].append(ev["token_accuracy"])
            msg += f"; val exact match {ev['exact_match']:.4f}, token acc " \
                   f"{ev['token_accuracy']:.4f}"
            if "loss" in needed:
                history.setdefault("val_loss", []).append(
                    validation_loss(model, val_pairs, batch_size))
                msg += f"  val loss {history['val_loss'][-1]:.4f}"
            if "bleu" in needed:
                history.setdefault("val_bleu", []).append(id_bleu(ev["hyps"], val_pairs))
                msg += f"  val BLEU {history['val_bleu'][-1]:.2f}"
            if getattr(schedule, "per", None) == "validation":
                before = optimizer.lr
                schedule.step(history[f"val_{schedule.metric}"][-1])
                if optimizer.lr != before:
                    msg += f"  lr {before:.3g} -> {optimizer.lr:.3g}"
        log(msg + _time_left(time.perf_counter() - t_start, epoch + 1 - start_epoch,
                             epochs - epoch - 1))
        stop = bool(val_pairs) and early_stopping is not None and early_stopping.step(
            history[f"val_{early_stopping.metric}"][-1])
        # best.ckpt: only a strictly better value replaces it (a tie keeps the earlier epoch)
        value = history[f"val_{best_metric}"][-1] if val_pairs else None
        is_best = not val_pairs or improved(value, result.best_value, METRIC_MODES[best_metric])
        if is_best and val_pairs:
            result.best_value = value
        result.best_exact = max(history["val_exact"], default=0.0)
        if out_dir is not None:
            record = {**(extra or {}), "epoch": epoch + 1, "seed": seed, "history": history,
                      "best_metric": best_metric}
            if schedule is not None:
                record["schedule"] = schedule.state_dict()
            if early_stopping is not None:
                record["early_stopping"] = early_stopping.state_dict()
            if teacher_forcing is not None:
                record["teacher_forcing"] = teacher_forcing.state_dict()
            save_checkpoint(os.path.join(out_dir, "last.ckpt"), model, vocabs, optimizer, record)
            result.files.append(os.path.join(out_dir, "last.ckpt"))
            if is_best:
                save_checkpoint(os.path.join(out_dir, "best.ckpt"), model, vocabs, optimizer,
                                record)
                result.files.append(os.path.join(out_dir, "best.ckpt"))
            result.checkpoint = os.path.join(out_dir, "best.ckpt")
            import matplotlib.pyplot as plt

            from .plots import loss_curve

            plt.close(loss_curve(history, os.path.join(out_dir, "loss_curve.png")))
            result.files.append(os.path.join(out_dir, "loss_curve.png"))
        if stop:
            es = early_stopping
            log(f"early stopping after epoch {epoch + 1}: val {es.metric} has not improved on "
                f"{es.best:.4g} (epoch {es.best_epoch} of this run's validations) for "
                f"{es.num_bad} epochs (patience {es.patience})")
            result.stopped_early = True
            break
    result.files = list(dict.fromkeys(result.files))  # each once, in the order first written
    return result


def _dropout_on(model, seed, step):
    """Training mode for one step, with its dropout masks drawn from (seed, step)."""
    if hasattr(model, "seed_dropout"):
        model.train()
        if seed is not None:
            model.seed_dropout(seed, step)


def _dropout_off(model):
    if hasattr(model, "eval"):
        model.eval()


def _check_training_tools(schedule, early_stopping, best_metric, val_pairs):
    """fit's schedule, early stopping and best metric: checked, and the validation metrics
    they need. Returns (best_metric, set of metric names)."""
    from .optim import EarlyStopping

    if schedule is not None and getattr(schedule, "per", None) not in ("step", "validation"):
        raise TypeError(f"schedule must be a minis2s.optim schedule (WarmupSchedule, "
                        f"ReduceLROnPlateau); got {type(schedule).__name__}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be a minis2s.optim.EarlyStopping; got "
                        f"{type(early_stopping).__name__}")
    plateau = getattr(schedule, "per", None) == "validation"
    if plateau and schedule.metric is None:
        raise ValueError("a ReduceLROnPlateau given to fit needs its metric (one of "
                         f"{tuple(METRIC_MODES)}), to know which validation score to follow")
    if (plateau or early_stopping is not None) and not val_pairs:
        what = "early_stopping" if early_stopping is not None else "a ReduceLROnPlateau schedule"
        raise ValueError(f"{what} needs val_pairs (it follows a validation metric)")
    if best_metric is None:
        best_metric = early_stopping.metric if early_stopping is not None else "exact"
    if best_metric not in METRIC_MODES:
        raise ValueError(f"best_metric must be one of {tuple(METRIC_MODES)}; got {best_metric!r}")
    needed = {best_metric}
    needed |= {schedule.metric} if plateau else set()
    needed |= {early_stopping.metric} if early_stopping is not None else set()
    return best_metric, needed


def _best_so_far(history, metric):
    """The best ``val_<metric>`` in a (resumed) history, or None."""
    values = history.get(f"val_{metric}", [])
    if not values:
        return None
    return min(values) if METRIC_MODES[metric] == "min" else max(values)


def validation_loss(model, pairs, batch_size=256):
    """The teacher-forced loss of ``model`` on encoded pairs: ``model.forward``'s mean per
    predicted token, over all of ``pairs`` (each batch weighted by its predicted tokens).

    It is the plain NLL even for a model trained with label smoothing
    (``model.plain_loss()``), so that validation losses compare across values of ε (and
    exp of it is the perplexity); the training loss that ``fit`` logs is the smoothed one."""
    from .data.batching import make_batches

    was_training = getattr(model, "training", False)
    _dropout_off(model)  # never with dropout (model.training is restored after)
    total = count = 0
    with model.plain_loss():
        for batch in make_batches(pairs, batch_size, shuffle=False):
            total += model.forward(batch.src, batch.tgt) * batch.n_tokens
            count += batch.n_tokens
    if was_training:
        model.train()
    return total / count


def id_bleu(hyps, pairs):
    """Corpus BLEU (sacrebleu, 0-100) of generated id lists against the pairs' targets, each
    token id a word: a score of the model's tokens, for choosing epochs (the CLI's ``eval``
    scores detokenised text)."""
    from .metrics import bleu

    refs = [" ".join(map(str, t[1:-1])) for _, t in pairs]
    return bleu([" ".join(map(str, h)) for h in hyps], refs).score


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

    The model, the optimizer (class, hyperparameters and state), the learning-rate schedule,
    the early stopping, the best metric, the seed and the history are restored, and training
    goes on from the epoch after the saved one. Because the batch order of
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
    hyper = {k: v for k, v in ck.optimizer["hyper"].items()
             if k in ("lr", "momentum", "eps", "weight_decay", "decay_biases", "decay_embeddings")}
    if cls is optim.Adam:
        hyper["betas"] = (ck.optimizer["hyper"]["beta1"], ck.optimizer["hyper"]["beta2"])
    opt = cls(ck.model.params, ck.model.grads, **hyper)
    ck.restore_optimizer(opt)
    # the schedule and early stopping go on from their saved state (pass your own to replace)
    if "schedule" not in fit_kwargs and ck.extra.get("schedule"):
        fit_kwargs["schedule"] = optim.load_schedule(opt, ck.extra["schedule"])
    if "early_stopping" not in fit_kwargs and ck.extra.get("early_stopping"):
        fit_kwargs["early_stopping"] = optim.EarlyStopping.from_state_dict(
            ck.extra["early_stopping"])
    if "teacher_forcing" not in fit_kwargs and ck.extra.get("teacher_forcing"):
        fit_kwargs["teacher_forcing"] = optim.TeacherForcing.from_state_dict(
            ck.extra["teacher_forcing"])
    fit_kwargs.setdefault("best_metric", ck.extra.get("best_metric"))
    fit_kwargs.setdefault("vocabs", ck.vocabs or None)
    fit_kwargs.setdefault("extra", {k: v for k, v in ck.extra.items()  # data, tokenisers, ...
                                    if k not in ("epoch", "seed", "history", "schedule",
                                                 "early_stopping", "best_metric",
                                                 "teacher_forcing")})
    result = fit(ck.model, opt, train_pairs, val_pairs, epochs=epochs,
                 seed=ck.extra.get("seed", 0), start_epoch=int(ck.extra["epoch"]),
                 history=ck.extra.get("history"), **fit_kwargs)
    return ck.model, opt, result


# --- the output directory of a run ----------------------------------------------------------
#: the files a run of ``minis2s train`` writes into its directory (glob patterns), and the
#: temporary files of an interrupted atomic write (``.NAME.*.part``)
RUN_FILES = ("best.ckpt", "last.ckpt", "loss_curve.png", "metrics.json", "attention_*.png",
             "coverage_*.png", "p_gen_*.png", ".*.part")
LOCK_NAME = ".minis2s.lock"


class RunDirError(ValueError):
    """The output directory cannot take this run (it holds another run, or is in use)."""


def run_files(out_dir):
    """The files of earlier runs in ``out_dir`` (those :data:`RUN_FILES` names), sorted."""
    import glob

    found = set()
    for pattern in RUN_FILES:
        found.update(p for p in glob.glob(os.path.join(glob.escape(os.fspath(out_dir)), pattern))
                     if os.path.isfile(p))
    return sorted(found)


class RunLock:
    """An exclusive lock on a run directory, held while a run writes into it: a second run
    into the same directory fails at once with a clear error, instead of both writing the same
    checkpoints. The lock is the file ``.minis2s.lock`` (it records the pid), locked with
    ``fcntl.flock``, so a run that was killed holds no lock. Without ``fcntl`` (Windows) the
    file itself is the lock, and a stale one must be removed by hand."""

    def __init__(self, out_dir):
        self.path = os.path.join(os.fspath(out_dir), LOCK_NAME)
        self.fd = None
        self.remove_if_empty = False  # claim_run_dir made the directory: an empty one goes

    def acquire(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        while True:
            flags = os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL)
            try:
                fd = os.open(self.path, flags, 0o666)
            except FileExistsError:  # pragma: no cover - Windows
                raise RunDirError(self._busy("") + f" (if no run is active, remove "
                                  f"{self.path})") from None
            if fcntl is None:  # pragma: no cover - Windows
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 100).decode(errors="replace").strip()
                os.close(fd)
                raise RunDirError(self._busy(holder)) from None
            # the file may have been removed by the run that held it just before we locked it
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _busy(self, holder):
        who = f" ({holder})" if holder else ""
        return (f"{os.path.dirname(self.path)} is in use by another minis2s run{who}: wait for "
                "it to finish, or give another --out")

    def release(self):
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)  # closing releases the flock
            self.fd = None
            if self.remove_if_empty:  # a run that stopped before writing anything
                try:
                    os.rmdir(os.path.dirname(self.path))
                except OSError:  # it holds files
                    pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def claim_run_dir(out_dir, force=False, resume=False, log=print):
    """Make ``out_dir`` ready for a new run and lock it (a :class:`RunLock`, to release).

    The directory is made if missing (and removed again at :meth:`RunLock.release` if the run
    wrote nothing into it). A directory that holds an earlier run (any of :data:`RUN_FILES`) is
    refused unless
    ``force`` (its run files are then removed, so that no stale picture of the earlier run is
    left beside the new ones; other files are kept) or ``resume`` (the run goes on in it).

    Raises:
        RunDirError: ``out_dir`` is a file, holds an earlier run, or is in use by another run.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunDirError(f"--out {out_dir!r} exists and is not a directory")
    made = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    lock = RunLock(out_dir)
    lock.remove_if_empty = made
    lock.acquire()
    try:
        earlier = [] if resume else run_files(out_dir)
        if earlier and not force:
            names = ", ".join(os.path.basename(p) for p in earlier[:4])
            more = f" and {len(earlier) - 4} more" if len(earlier) > 4 else ""
            raise RunDirError(f"--out {out_dir} already holds a run ({names}{more}): give --force "
                              "to replace it, --resume to continue it, or another --out")
        for p in earlier:
            os.unlink(p)
        if earlier and log:
            log(f"--force: removed the {len(earlier)} files of the earlier run in {out_dir}")
    except BaseException:
        lock.release()
        raise
    return lock
