"""Plots with matplotlib (Agg backend when no display): loss curves, attention heatmaps,
p_gen per output token and coverage. Each function returns the matplotlib Figure and, given
``path``, also saves it as a PNG."""

from __future__ import annotations

import os

import numpy as np

from . import backend
from .files import atomic_write

__all__ = ["loss_curve", "attention_heatmap", "p_gen_plot", "coverage_heatmap"]


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


def loss_curve(history, path=None, title="Training loss"):
    """Plot the training loss per step (``history["step_loss"]``) and, when present, the
    validation loss/accuracy per epoch (``history["val_loss"]``, ``history["val_exact"]``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    steps = history.get("step_loss", [])
    if steps:
        y = np.asarray(steps, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, lw=0.6, alpha=0.5, label="train loss (step)")
        k = max(1, len(y) // 50)
        if k > 1:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(k, len(y) + 1), smooth, lw=1.6, label=f"train loss ({k}-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_yscale("log")
    ax.set_title(title)
    ends = history.get("epoch_end_step", [])
    acc = history.get("val_exact", [])
    if ends and acc:
        ax2 = ax.twinx()
        ax2.plot(ends[: len(acc)], acc, "o-", color="tab:green", label="val exact match")
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("validation exact match")
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


def attention_heatmap(alpha, src_tokens, tgt_tokens, path=None, title="Attention weights",
                      ax=None):
    """Heatmap of attention weights α (T_out, S): rows are output tokens, columns source tokens.

    Args:
        alpha: (T_out, S) array (NumPy or backend); extra rows/columns are cut to the tokens.
        src_tokens: the S source tokens (x-axis labels). tgt_tokens: the output tokens (y-axis).
        ax: a matplotlib Axes to draw into (e.g. one panel of a bigger figure); None: a new
            figure.
    """
    plt = _plt()
    a = backend.to_numpy(alpha).astype(float)[: len(tgt_tokens), : len(src_tokens)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3, 0.32 * len(src_tokens) + 1.5),
                                        max(2.5, 0.32 * len(tgt_tokens) + 1.2)))
    else:
        fig = ax.figure
    im = ax.imshow(a, cmap="viridis", vmin=0, vmax=max(1e-9, float(a.max())), aspect="auto")
    ax.set_xticks(range(len(src_tokens)))
    ax.set_xticklabels([_label(t) for t in src_tokens], rotation=90)
    ax.set_yticks(range(len(tgt_tokens)))
    ax.set_yticklabels([_label(t) for t in tgt_tokens])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _save(fig, path)


def coverage_heatmap(coverage, src_tokens, tgt_tokens, path=None, title="Coverage c^t",
                     ax=None):
    """Heatmap of the coverage vectors c^t (T_out, S): attention summed over earlier steps.
    Arguments as :func:`attention_heatmap`."""
    return attention_heatmap(coverage, src_tokens, tgt_tokens, path=path, title=title, ax=ax)


def p_gen_plot(p_gen, tgt_tokens, path=None, title="p_gen per output token", ax=None):
    """Bar chart of the generation probability p_gen for each output token (1 = generate from
    the vocabulary, 0 = copy from the source). ``p_gen`` is a NumPy or backend array; ``ax``
    a matplotlib Axes to draw into, or None for a new figure."""
    plt = _plt()
    p = backend.to_numpy(p_gen).astype(float).reshape(-1)[: len(tgt_tokens)]
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(tgt_tokens) + 1.5), 2.8))
    else:
        fig = ax.figure
    ax.bar(range(len(p)), p, color=["tab:blue" if v >= 0.5 else "tab:orange" for v in p])
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(p)))
    ax.set_xticklabels([_label(t) for t in tgt_tokens[: len(p)]], rotation=90)
    ax.set_ylabel("p_gen")
    ax.set_title(title)
    if own:  # a caller's figure is the caller's to lay out
        fig.tight_layout()
    return _save(fig, path)


def _label(t):
    return {" ": "␣", "<eos>": "</s>"}.get(t, t)
