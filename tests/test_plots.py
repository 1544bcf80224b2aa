"""minis2s.plots: each plot returns its Figure, saves a PNG when given a path, and draws into a
given Axes (one panel of a bigger figure) when given ``ax``."""

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
    assert len(a1.images) == 1 and len(a2.images) == 1 and a2.get_title() == "cov"
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
