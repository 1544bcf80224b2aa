"""minis2s.plots: each plot returns its Figure, saves a PNG when given a path, and draws into a
given Axes (one panel of a bigger figure) when given ``ax``."""

import os

import numpy as np
import pytest

from minis2s import backend, plots

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SRC = ["a", "b", "c"]
TGT = ["x", "y"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_loss_curve_saves_a_png(tmp_path):
    history = {"step_loss": list(np.linspace(3, 0.1, 40)), "val_loss": [2.0, 1.0]}
    fig = plots.loss_curve(history, path=tmp_path / "loss.png")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fn", [plots.attention_heatmap, plots.coverage_heatmap])
def test_heatmaps_cut_to_the_tokens_and_save(fn, tmp_path):
    alpha = backend.asarray(np.arange(12.0).reshape(3, 4) / 12)  # one row and column too many
    fig = fn(alpha, SRC, TGT, path=tmp_path / "h.png")
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2, 3)
    np.testing.assert_allclose(image, np.arange(12.0).reshape(3, 4)[:2, :3] / 12)
    assert (tmp_path / "h.png").stat().st_size > 0


def test_plots_draw_into_a_given_axes():
    fig, (a1, a2, a3) = plt.subplots(1, 3)
    alpha = np.full((2, 3), 1 / 3)
    assert plots.attention_heatmap(alpha, SRC, TGT, ax=a1) is fig
    assert plots.coverage_heatmap(np.cumsum(alpha, 0), SRC, TGT, ax=a2, title="cov") is fig
    assert plots.p_gen_plot([0.9, 0.2], TGT, ax=a3) is fig
    assert len(a1.images) == 1 and len(a2.images) == 1 and a2.get_title(loc="left") == "cov"
    heights = [p.get_height() for p in a3.patches]
    assert heights == pytest.approx([0.9, 0.2])


def test_p_gen_plot_colours_generate_and_copy(tmp_path):
    fig = plots.p_gen_plot(backend.asarray(np.array([[0.7, 0.1, 0.5]])), ["x", "y", "z"],
                           path=tmp_path / "p.png")
    bars = fig.axes[0].patches
    colours = [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars]
    blue, orange = (matplotlib.colors.to_hex(c) for c in ("tab:blue", "tab:orange"))
    assert colours == [blue, orange, blue]  # p ≥ 0.5: generate; below: copy
    assert (tmp_path / "p.png").exists()


# --- the pictures a student reads ---------------------------------------------------------------
def test_loss_curve_gives_validation_its_own_log_scale_panel(tmp_path):
    history = {"step_loss": list(np.linspace(3, 0.05, 200)), "epoch_end_step": [100, 200],
               "val_exact": [0.9, 0.997], "val_token_acc": [0.97, 0.999]}
    fig = plots.loss_curve(history, path=tmp_path / "loss.png")
    train_ax, val_ax = fig.axes
    assert val_ax.get_yscale() == "log" and val_ax.get_xlabel() == "epoch"
    errors = val_ax.lines[0].get_ydata()
    np.testing.assert_allclose(errors, [0.1, 0.003], rtol=1e-9)  # 1 − exact match
    assert "validation" in fig._suptitle.get_text()  # not just "Training loss"
    assert train_ax.get_title() == "training loss"
    # the training legend sits on the training panel: it cannot cover the validation curve
    assert train_ax.get_legend() is not None and val_ax.get_legend() is not None
    assert [t.get_text() for t in val_ax.texts] == ["90.0%", "99.7%"]


def test_loss_curve_without_validation_is_one_panel_titled_training_loss():
    fig = plots.loss_curve({"step_loss": [2.0, 1.0, 0.5]})
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Training loss"


def test_loss_curve_draws_a_perfect_score_at_the_floor():
    fig = plots.loss_curve({"step_loss": [1.0, 0.5], "epoch_end_step": [2], "val_exact": [1.0]})
    assert fig.axes[1].lines[0].get_ydata()[0] == plots.ERROR_FLOOR


def test_attention_heatmap_has_a_fixed_labelled_colour_scale():
    fig = plots.attention_heatmap(np.full((2, 3), 0.2), SRC, TGT)
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0, 1)  # not stretched to the largest weight
    assert "attention" in fig.axes[1].get_ylabel()  # the colour bar says what it shows
    cov = plots.coverage_heatmap(np.array([[0.0, 0.0, 0.0], [0.9, 1.1, 0.0]]), SRC, TGT)
    assert cov.axes[0].images[0].get_clim() == (0, 1.1) and "coverage" in cov.axes[1].get_ylabel()
    assert "$" in cov.axes[0].get_title(loc="left")  # mathtext, not a literal "c^t"


def test_a_whole_sentence_title_is_wrapped_to_the_figure(tmp_path):
    title = "source: " + " ".join(["word"] * 60)
    fig = plots.attention_heatmap(np.full((2, 3), 1 / 3), SRC, TGT, title=title,
                                  path=tmp_path / "a.png")
    from matplotlib.image import imread

    width_px = imread(tmp_path / "a.png").shape[1]
    assert fig.axes[0].get_title(loc="left").count("\n") >= 3
    assert width_px < 110 * (fig.get_figwidth() + 1.5)  # no empty half to the right


def test_dollar_signs_in_tokens_are_not_mathtext(tmp_path):
    fig = plots.attention_heatmap(np.full((1, 3), 1 / 3), ["$5", "and", "$6"], ["$"],
                                  title="cost $5 or $6", path=tmp_path / "d.png")
    assert fig.axes[0].get_xticklabels()[0].get_text() == r"\$5"


def _attention_model():
    from minis2s import AttentionSeq2Seq
    from minis2s.data import Vocab, pad_sequences

    src_vocab = Vocab(list("0123456789"))
    tgt_vocab = Vocab(list("0123456789-"))
    model = AttentionSeq2Seq(len(src_vocab), len(tgt_vocab), embed_dim=4, hidden_dim=5, seed=0)
    texts = ["123", "98765", "4", "55555", "0120"]
    return model, pad_sequences([src_vocab.encode(t) for t in texts]), src_vocab, tgt_vocab


def test_plot_examples_writes_one_attention_heatmap_per_example(tmp_path):
    model, src, src_vocab, tgt_vocab = _attention_model()
    out = tmp_path / "plots"
    paths = plots.plot_examples(model, src, src_vocab, tgt_vocab, str(out), max_examples=3)
    assert sorted(p.name for p in out.iterdir()) == [f"attention_{i}.png" for i in range(3)]
    assert [str(out / f"attention_{i}.png") for i in range(3)] == paths
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_examples_marks_a_wrong_prediction_and_shows_the_reference(tmp_path, monkeypatch):
    model, src, src_vocab, tgt_vocab = _attention_model()
    shown = []
    real = plots.attention_heatmap

    def spy(*args, **kw):
        fig = real(*args, **kw)
        shown.append((fig, kw["wrong_rows"]))
        return fig

    monkeypatch.setattr(plots, "attention_heatmap", spy)
    ids = model.generate(src[:1], max_len=60)[0]
    right = tgt_vocab.decode(ids)
    plots.plot_examples(model, src[:2], src_vocab, tgt_vocab, tmp_path, max_len=60,
                        references=[right, "never-this"])
    (fig0, wrong0), (fig1, wrong1) = shown
    title0, title1 = (f.axes[0].get_title(loc="left") for f in (fig0, fig1))
    colour1 = fig1.axes[0]._left_title.get_color()
    assert "right" in title0 and "WRONG" not in title0 and not wrong0
    assert "WRONG" in title1 and "'never-this'" in title1 and colour1 == "tab:red"
    assert "example 2:" in title1 and "source: '98765'" in title1
    assert list(wrong1)  # the wrong output tokens are marked


def test_plot_examples_refuses_a_model_without_attention(tmp_path):
    from minis2s import Seq2Seq

    model = Seq2Seq(6, 6, embed_dim=3, hidden_dim=4)
    from minis2s.data import Vocab

    v = Vocab(["a", "b"])
    with pytest.raises(ValueError, match="attention"):
        plots.plot_examples(model, np.array([[4, 5]]), v, v, tmp_path)


@pytest.mark.parametrize("coverage", [True, False])
def test_plot_examples_for_the_pointer(tmp_path, coverage):
    """p_gen and attention for every pointer; coverage only when the model has it on."""
    from minis2s.data import Vocab, pad_sequences
    from minis2s.testing import tiny_model

    vocab = Vocab(["a", "b", "c", "d", "e", "f", "g"], level="word")
    model = tiny_model("PointerGenerator", vocab_size=len(vocab), coverage=coverage)
    enc = [vocab.encode_extended(t) for t in ("a b zork", "c d")]
    src = pad_sequences([ids for ids, _ in enc])
    paths = plots.plot_examples(model, src, vocab, vocab, tmp_path, max_examples=1, max_len=4,
                                oovs=[o for _, o in enc])
    expected = ["attention_0.png", "p_gen_0.png"] + (["coverage_0.png"] if coverage else [])
    assert sorted(os.path.basename(p) for p in paths) == sorted(expected)
    assert sorted(os.listdir(tmp_path)) == sorted(expected)
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_tokens_without_a_row_are_not_labelled():
    """An output cut at max_len has no EOS row: its "</s>" label must not hang below the map."""
    fig = plots.attention_heatmap(np.full((2, 3), 1 / 3), SRC, ["x", "y", "<eos>"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    assert ax.images[0].get_array().shape == (2, 3)
