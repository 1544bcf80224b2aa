"""Plots with matplotlib (Agg backend when no display): the training curves, attention
heatmaps, p_gen per output token and coverage, and :func:`plot_examples`, which draws them for a
few translations of a trained model. Each plotting function returns the matplotlib Figure and,
given ``path``, also saves it as a PNG (through :func:`minis2s.files.atomic_write`, so the file
follows the umask and is never half-written)."""

from __future__ import annotations

import os
import textwrap

import numpy as np

from . import backend
from .constants import EOS, PAD
from .files import atomic_write

__all__ = ["loss_curve", "attention_heatmap", "p_gen_plot", "coverage_heatmap",
           "plot_examples"]

#: the lowest error rate drawn on the log axis of :func:`loss_curve` (an error rate of 0 is
#: drawn there, labelled "0")
ERROR_FLOOR = 1e-4


def _plt():
    import matplotlib

    if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    if path is not None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        atomic_write(path, buf.getvalue())
    return fig


def loss_curve(history, path=None, title=None):
    """Plot a run's history: the training loss per step and, when the history has validation
    scores, the validation error rate per epoch in a panel of its own.

    Args:
        history: a dict as :func:`minis2s.train.fit` records it: ``"step_loss"`` (the training
            loss of every step), ``"epoch_end_step"``, and optionally ``"val_exact"`` and
            ``"val_token_acc"`` (one per epoch) and ``"val_loss"``, and ``"step_lr"`` (the
            learning rate of every step).
        path: where to save the PNG, or None.
        title: the figure's title (default: "Training loss", or "Training loss and validation
            error" when validation scores are plotted).

    The validation panel plots the error rates 1 − exact match and 1 − token accuracy on a log
    scale, so that the climb from 90% to 99.7% exact match is as visible as the one from 0% to
    90%; each point is labelled with the exact match. An error rate of 0 is drawn at
    :data:`ERROR_FLOOR`.

    When the learning rate changed during the run (a schedule), a small panel under the loss
    shows it per step, on the same step axis (a constant rate draws no panel).
    """
    plt = _plt()
    acc = list(history.get("val_exact", []))
    tok = list(history.get("val_token_acc", []))
    rates = list(history.get("step_lr", []))
    if len(set(rates)) > 1:  # the loss, the rate below it, validation on the right
        fig = plt.figure(figsize=(10 if acc else 6.5, 5.0))
        grid = fig.add_gridspec(2, 2 if acc else 1, height_ratios=(3, 1),
                                width_ratios=(3, 2) if acc else None)
        ax = fig.add_subplot(grid[0, 0])
        if acc:
            axv = fig.add_subplot(grid[:, 1])
        _rate_panel(fig.add_subplot(grid[1, 0], sharex=ax), rates)
        ax.tick_params(labelbottom=False)
    elif acc:
        fig, (ax, axv) = plt.subplots(1, 2, figsize=(10, 3.8),
                                      gridspec_kw={"width_ratios": (3, 2)})
    else:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    steps = history.get("step_loss", [])
    if steps:
        y = np.asarray(steps, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, lw=0.6, alpha=0.45, color="tab:blue",
                label="training loss (each step)")
        k = max(1, len(y) // 50)
        if k > 1:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(k, len(y) + 1), smooth, lw=1.8, color="tab:blue",
                    label=f"training loss (mean of {k} steps)")
    ends = list(history.get("epoch_end_step", []))
    val_loss = list(history.get("val_loss", []))
    if ends and val_loss:
        n = min(len(ends), len(val_loss))
        ax.plot(ends[:n], val_loss[:n], "s-", color="tab:red", label="validation loss")
    if len(set(rates)) <= 1:
        ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per token)")
    if steps and min(steps) > 0:
        ax.set_yscale("log")
        _log_ticks(ax, lambda v: f"{v:g}")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title("training loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    if acc:
        _validation_panel(axv, acc, tok)
        fig.suptitle(title or "Training loss and validation error")
    else:
        ax.set_title(title or "Training loss")
    fig.tight_layout()
    return _save(fig, path)


def _rate_panel(ax, rates):
    """The learning rate of every step (log scale when it spans more than a factor of 20)."""
    y = np.asarray(rates, dtype=float)
    ax.plot(np.arange(1, len(y) + 1), y, lw=1.4, color="tab:green")
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate", fontsize="small")
    if y.min() > 0 and y.max() / y.min() > 20:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, y.max() * 1.08)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.grid(True, which="both", alpha=0.25)


def _validation_panel(ax, exact, token_acc):
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(exact) + 1)
    err = np.maximum(1.0 - np.asarray(exact, dtype=float), ERROR_FLOOR)
    ax.plot(epochs, err, "o-", color="tab:green", lw=1.8, label="1 − exact match")
    if token_acc:
        n = len(token_acc)
        ax.plot(epochs[:n], np.maximum(1.0 - np.asarray(token_acc, dtype=float), ERROR_FLOOR),
                "^--", color="tab:olive", lw=1.2, label="1 − token accuracy")
    for x, e, a in zip(epochs, err, exact):
        ax.annotate(f"{100 * a:.1f}%", (x, e), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize="small", color="tab:green")
    ax.set_yscale("log")
    ax.set_ylim(top=1.4)  # room for the label above an error rate of 100%
    _log_ticks(ax, lambda v: "0" if v <= ERROR_FLOOR else "" if v > 1 else f"{100 * v:g}%")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, len(exact) + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation error rate (log scale)")
    ax.set_title("validation (labels: exact match)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="lower left", fontsize="small")


def _log_ticks(ax, fmt):
    """Plain labels (``fmt(value)``) on a log y axis: at the powers of ten and at 2 and 5
    times them, instead of matplotlib's 2×10⁻¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    low, high = ax.get_ylim()
    narrow = high / max(low, 1e-300) < 12  # less than a decade: label more of its ticks
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_minor_locator(LogLocator(
        base=10, subs=(1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0) if narrow else (2.0, 5.0)))
    label = FuncFormatter(lambda v, _: fmt(v))
    ax.yaxis.set_major_formatter(label)
    ax.yaxis.set_minor_formatter(label)


def _figure_width(n_columns):
    return max(3.5, 0.32 * n_columns + 1.8)


def _wrap(title, width_in):
    """Wrap each line of ``title`` to the width of a figure ``width_in`` inches wide, so that a
    whole-sentence title never makes the saved figure wider than its plot."""
    chars = max(24, int(width_in * 11))
    lines = []
    for line in str(title).split("\n"):
        lines.extend(textwrap.wrap(line, chars, subsequent_indent="    ") or [""])
    return "\n".join(lines)


def attention_heatmap(alpha, src_tokens, tgt_tokens, path=None, title="Attention weights",
                      ax=None, colorbar_label=r"attention weight $a^t_i$", vmax=1.0,
                      wrong_rows=()):
    """Heatmap of attention weights α (T_out, S): rows are output tokens, columns source tokens.

    Args:
        alpha: (T_out, S) array (NumPy or backend); extra rows/columns are cut to the tokens
            (and extra tokens to the rows and columns).
        src_tokens: the S source tokens (x-axis labels). tgt_tokens: the output tokens (y-axis).
        title: wrapped to the figure's width (it may have several lines).
        ax: a matplotlib Axes to draw into (e.g. one panel of a bigger figure); None: a new
            figure.
        colorbar_label: the colour bar's label.
        vmax: the top of the colour scale, which starts at 0 (attention weights lie in
            [0, 1], so the default 1 keeps the colours comparable across pictures); None: the
            largest value.
        wrong_rows: indices of output tokens to mark in red (a wrong prediction).
    """
    plt = _plt()
    a = backend.to_numpy(alpha).astype(float)[: len(tgt_tokens), : len(src_tokens)]
    tgt_tokens = list(tgt_tokens)[: a.shape[0]]  # a label without a row would hang below
    src_tokens = list(src_tokens)[: a.shape[1]]
    if ax is None:
        width = _figure_width(len(src_tokens))
        lines = _wrap(title, width).count("\n")
        fig, ax = plt.subplots(figsize=(width, max(2.5, 0.3 * len(tgt_tokens) + 1.4)
                                        + 0.2 * lines))
    else:
        fig = ax.figure
    top = max(1e-9, float(a.max()) if a.size else 1.0) if vmax is None else vmax
    im = ax.imshow(a, cmap="viridis", vmin=0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(src_tokens)))
    short = all(len(t) <= 2 for t in src_tokens)  # characters: upright, easier to read
    ax.set_xticklabels([_label(t) for t in src_tokens], rotation=0 if short else 90)
    ax.set_yticks(range(len(tgt_tokens)))
    ax.set_yticklabels([_label(t) for t in tgt_tokens])
    for i in wrong_rows:
        if 0 <= i < len(tgt_tokens):
            ax.get_yticklabels()[i].set_color("tab:red")
            ax.get_yticklabels()[i].set_fontweight("bold")
    ax.set_xlabel("source token")
    ax.set_ylabel("output token")
    ax.set_title(_wrap(title, fig.get_figwidth()), loc="left", fontsize="medium")
    bar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label(colorbar_label)
    return _save(fig, path)


def coverage_heatmap(coverage, src_tokens, tgt_tokens, path=None,
                     title=r"coverage $c^t = \Sigma_{t' < t}\, a^{t'}$", ax=None, wrong_rows=()):
    """Heatmap of the coverage vectors c^t (T_out, S): attention summed over earlier steps.
    Arguments as :func:`attention_heatmap`; the colour scale runs from 0 to 1, or to the
    largest value when a source token was attended more than once in total."""
    c = backend.to_numpy(coverage).astype(float)
    vmax = max(1.0, float(c.max()) if c.size else 1.0)
    return attention_heatmap(c, src_tokens, tgt_tokens, path=path, title=title, ax=ax,
                             colorbar_label=r"coverage $c^t_i$", vmax=vmax,
                             wrong_rows=wrong_rows)


def p_gen_plot(p_gen, tgt_tokens, path=None, title="p_gen per output token", ax=None):
    """Bar chart of the generation probability p_gen for each output token (1 = generate from
    the vocabulary, 0 = copy from the source). ``p_gen`` is a NumPy or backend array; ``ax``
    a matplotlib Axes to draw into, or None for a new figure."""
    plt = _plt()
    p = backend.to_numpy(p_gen).astype(float).reshape(-1)[: len(tgt_tokens)]
    own = ax is None
    if own:
        width = max(4, 0.35 * len(tgt_tokens) + 1.5) if title == "p_gen per output token" \
            else max(5.5, 0.35 * len(tgt_tokens) + 1.5)  # room for a title of several lines
        lines = _wrap(title, width).count("\n")
        fig, ax = plt.subplots(figsize=(width, 3.0 + 0.2 * lines))
    else:
        fig = ax.figure
    ax.bar(range(len(p)), p, color=["tab:blue" if v >= 0.5 else "tab:orange" for v in p])
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(p)))
    ax.set_xticklabels([_label(t) for t in tgt_tokens[: len(p)]], rotation=90)
    ax.set_ylabel(r"$p_{gen}$ (blue: generate, orange: copy)", fontsize="small")
    ax.set_title(_wrap(title, fig.get_figwidth()), loc="left", fontsize="medium")
    if own:  # a caller's figure is the caller's to lay out
        fig.tight_layout()
    return _save(fig, path)


def _label(t):
    t = {" ": "␣", "<eos>": "</s>"}.get(t, t)
    return _plain(t)


def _plain(text):
    """``text`` with its dollar signs escaped, so matplotlib never reads it as mathtext."""
    return str(text).replace("$", r"\$")


# --- examples of a trained model ----------------------------------------------------------------
def plot_examples(model, src, src_vocab, tgt_vocab, out_dir, max_examples=4, max_len=60,
                  oovs=None, references=None, beam_size=None):
    """Translate the first rows of ``src`` and save pictures of how the model did it.

    For every model with attention, ``out_dir/attention_<i>.png``: the heatmap of the attention
    weights a^t (one row per output step, the EOS step included). For a
    :class:`~minis2s.PointerGenerator` also ``p_gen_<i>.png`` (p_gen per output token) and,
    only when the model has coverage on, ``coverage_<i>.png`` (the coverage c^t of each step).
    Titles give the source, the output and, with ``references``, whether the output is right
    (a wrong one is marked in red, with the reference).

    Args:
        model: an :class:`~minis2s.AttentionSeq2Seq` or :class:`~minis2s.PointerGenerator`
            (a plain Seq2Seq has no attention to plot: ValueError).
        src: (B, S) padded source ids (NumPy or backend; extended ids for the pointer).
        src_vocab, tgt_vocab: :class:`minis2s.data.Vocab` for the labels (the same one for the
            pointer).
        out_dir: directory (created if missing).
        max_examples: plot at most this many rows.
        max_len: the generation limit (EOS included), as for ``model.generate``.
        oovs: optional list of each row's OOV words (from ``Vocab.encode_extended``), so that
            a copied OOV id shows as its word (without it: ``<oov k>``).
        references: optional list of each row's reference output string.
        beam_size: as for ``model.generate`` (default: the model's).

    Returns:
        The list of PNG paths written, in order.
    """
    plt = _plt()
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int; got {max_examples!r}")
    src = backend.to_numpy(src)[:max_examples]
    ids, traces = _generate_traced(model, src, max_len, beam_size)
    pointer = "p_gen" in traces[0] if traces else False
    coverage_on = bool(getattr(model, "coverage", False))
    paths = []
    for i, (row, out_ids, tr) in enumerate(zip(src, ids, traces)):
        row_oovs = oovs[i] if oovs is not None else None
        src_tokens = [_token(src_vocab, t, row_oovs) for t in row if t != PAD]
        out_tokens = [_token(tgt_vocab, t, row_oovs) for t in out_ids]
        T_out = tr["alpha"].shape[0]
        if T_out > len(out_ids):  # the EOS step has weights too
            out_tokens.append(tgt_vocab.itos[EOS])
        output = tgt_vocab.detokenize(out_tokens[: len(out_ids)])
        ref = references[i] if references is not None else None
        head, wrong = _example_title(src_vocab.detokenize(src_tokens), output, ref,
                                     cut=len(out_ids) >= max_len)
        bad = _wrong_rows(out_tokens[: len(out_ids)], tgt_vocab.tokenize(ref)) if wrong else ()
        name = f"example {i + 1}: "
        figures = [("attention", attention_heatmap(
            tr["alpha"], src_tokens, out_tokens, wrong_rows=bad,
            title=f"{name}attention weights $a^t$\n{head}"))]
        if pointer:
            figures.append(("p_gen", p_gen_plot(
                tr["p_gen"], out_tokens,
                title=f"{name}$p_{{gen}}$ (1 = generate, 0 = copy)\n{head}")))
            if coverage_on:
                figures.append(("coverage", coverage_heatmap(
                    tr["coverage"], src_tokens, out_tokens, wrong_rows=bad,
                    title=f"{name}coverage " r"$c^t = \Sigma_{t' < t}\, a^{t'}$" f"\n{head}")))
        for kind, fig in figures:
            path = os.path.join(out_dir, f"{kind}_{i}.png")
            if wrong:
                ax = fig.axes[0]
                ax.set_title(ax.get_title(loc="left"), loc="left", fontsize="medium",
                             color="tab:red")
            plt.close(_save(fig, path))
            paths.append(path)
    return paths


def _example_title(source, output, reference, cut=False):
    """(title, wrong): the title lines of an example and whether its output is wrong."""
    lines = [f"source: {_plain(repr(source))}",
             f"output: {_plain(repr(output))}" + ("  (cut at the length limit)" if cut else "")]
    wrong = reference is not None and output != reference
    if reference is not None:
        lines.append(f"WRONG, the reference is {_plain(repr(reference))}" if wrong
                     else "right: equals the reference")
    return "\n".join(lines), wrong


def _wrong_rows(out_tokens, ref_tokens):
    """Positions where the output token differs from the reference token (or has none)."""
    return [k for k, t in enumerate(out_tokens) if k >= len(ref_tokens) or ref_tokens[k] != t]


def _generate_traced(model, src, max_len, beam_size):
    """``model.generate(..., trace=True)``: the ids and one dict of NumPy arrays per row (a
    model without attention, the plain Seq2Seq, raises ValueError)."""
    return model.generate(src, max_len=max_len, beam_size=beam_size, trace=True)


def _token(vocab, i, oovs):
    """The string of id ``i``: a vocabulary token, the row's OOV word ``i - len(vocab)``, or
    ``<oov k>`` when the row's OOV list is not known."""
    i = int(i)
    n = len(vocab)
    if i < n:
        return vocab.itos[i]
    if oovs is not None and i - n < len(oovs):
        return oovs[i - n]
    return f"<oov {i - n}>"
