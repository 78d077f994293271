"""The book's figures and demos: each figure one call, each demo a control over precomputed states.

Nothing in the library imports this module; chapters do. Every function draws on a given matplotlib Axes (or
a new figure), sets a title and axis labels, and returns the Figure. Chinese text renders through Noto Sans
SC, which the `pylopdf-fonts-zh-cn` package ships, so figures need no system font.

Figures:
    token_boxes         rows of tokens as coloured boxes (masking, [CLS]/[SEP] layouts, predictions)
    attention_heatmap   one head's attention weights, queries by keys
    similarity_matrix   a cosine-similarity matrix with its labels (and group separators)
    loss_curves         curves with a band over seeds
    bars_vs_baseline    one bar per condition with its seeds as dots, beside a dashed baseline
    projection_2d       points projected to 2-D (PCA), coloured by label
    log_scale_bars      quantities on a log scale (model sizes, compute)

Demos (ipywidgets that stay interactive in the static book: a control `jslink`ed to a Stack of precomputed
panels, so the browser switches panels with no kernel):
    choice_demo         a dropdown or a slider over panels
    grid_demo           two controls over a grid of panels (sentence x position, layer x head)
    figure_html, topk_html, attention_html   panels: a figure as an image, a top-k list, an attention table
"""

from __future__ import annotations

import base64
import html
import io
import logging
import unicodedata
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

CJK_FONT = "Noto Sans SC"
PALETTE = sns.color_palette("colorblind")
# Roles of a token in the book's token-box figures, and their colours.
ROLE_COLORS = {
    "token": "#e8e8e8",
    "special": "#b3cde3",
    "segment B": "#fbe3c7",
    "[MASK]": "#e41a1c",
    "random": "#ff7f00",
    "kept (chosen)": "#4daf4a",
    "unknown": "#984ea3",
    "predicted": "#a6d854",
    "answer": "#ffd92f",
    "seen (x')": "#b3cde3",
    "to predict (x'')": "#ffd92f",
}
_LIGHT_TEXT = {"[MASK]", "unknown"}  # roles whose fill is dark enough for white text


def use_book_style() -> None:
    """Seaborn's white grid, readable font sizes, and Noto Sans SC as the fallback for Chinese glyphs."""
    from pylopdf_fonts_zh_cn import sans_path

    font_manager.fontManager.addfont(str(sans_path()))
    # The package ships Noto Sans SC in one weight; bold titles then draw their Chinese at regular weight,
    # which matplotlib reports once per figure. That is expected, so keep it out of the book's output.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    matplotlib.rcParams.update(
        {
            # A list of families falls back per glyph: Latin from DejaVu Sans, Chinese from Noto Sans SC.
            "font.family": ["DejaVu Sans", CJK_FONT],
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.titlesize": 13,
            "axes.titleweight": "bold",
            "axes.labelsize": 11,
            "figure.autolayout": True,
        }
    )


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _text_width(text: str) -> float:
    """Width of a token in character cells: wide (CJK) characters count twice."""
    return sum(2.0 if unicodedata.east_asian_width(c) in "WF" else 1.0 for c in text)


# ----------------------------------------------------------------------------------------------------------
# Figures


def token_boxes(
    rows: Sequence[Sequence[str]],
    roles: Sequence[Sequence[str]] | None = None,
    *,
    row_labels: Sequence[str] | None = None,
    title: str = "",
    annotations: Sequence[Sequence[str]] | None = None,
    ax: Axes | None = None,
    width: float = 12.0,
) -> Figure:
    """Rows of tokens as boxes coloured by role (keys of ROLE_COLORS), with a legend of the roles used.

    `annotations` put a small line of text under each box (a token type id, a label, a probability).
    A row too long for the width wraps onto the next line.
    """
    roles = roles or [["token"] * len(r) for r in rows]
    unknown = {x for r in roles for x in r} - set(ROLE_COLORS)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; allowed: {list(ROLE_COLORS)}")
    unit, gap, line_h = 0.16, 0.12, 1.0 if annotations is None else 1.35
    placed = []  # (x, line, token, role, annotation)
    line = 0
    row_starts = []
    for i, tokens in enumerate(rows):
        x = 0.0
        row_starts.append(line)
        for j, tok in enumerate(tokens):
            w = max(0.5, unit * _text_width(tok) + 0.25)
            if x + w > width and x > 0:
                line, x = line + 1, 0.0
            note = annotations[i][j] if annotations is not None else None
            placed.append((x, w, line, tok, roles[i][j], note))
            x += w + gap
        line += 1
    n_lines = line
    fig, ax = _axes(ax, (width * 0.8 + (1.6 if row_labels else 0), 0.55 * n_lines * line_h + 0.9))
    for x, w, ln, tok, role, note in placed:
        y = -ln * line_h
        color = ROLE_COLORS[role]
        ax.add_patch(FancyBboxPatch((x, y - 0.35), w, 0.7, boxstyle="round,pad=0.02,rounding_size=0.12", fc=color))
        ax.text(
            x + w / 2, y, tok, ha="center", va="center", fontsize=11, color="white" if role in _LIGHT_TEXT else "black"
        )
        if note is not None:
            ax.text(x + w / 2, y - 0.58, note, ha="center", va="center", fontsize=8, color="#555555")
    if row_labels is not None:
        for label, ln in zip(row_labels, row_starts, strict=True):
            ax.text(-0.25, -ln * line_h, label, ha="right", va="center", fontsize=10, fontweight="bold")
    ax.set_xlim(-0.2 - (2.6 if row_labels else 0), width + 0.2)
    ax.set_ylim(-(n_lines - 1) * line_h - 0.9, 0.6)
    ax.axis("off")
    used = [r for r in ROLE_COLORS if any(r in row for row in roles)]
    if len(used) > 1:
        handles = [Patch(facecolor=ROLE_COLORS[r], edgecolor="black", label=r) for r in used]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(used), frameon=False)
    if title:
        ax.set_title(title)
    return fig


def attention_heatmap(
    weights: np.ndarray | Sequence[Sequence[float]],
    query_tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    *,
    title: str = "Attention",
    ax: Axes | None = None,
    annotate: bool = False,
) -> Figure:
    """One head's attention weights (queries are rows, keys columns; each row sums to 1)."""
    w = np.asarray(weights, dtype=float)
    key_tokens = query_tokens if key_tokens is None else key_tokens
    if w.shape != (len(query_tokens), len(key_tokens)):
        raise ValueError(
            f"weights of shape {w.shape} do not match {len(query_tokens)} queries x {len(key_tokens)} keys"
        )
    side = 0.38 * max(len(query_tokens), len(key_tokens)) + 2
    fig, ax = _axes(ax, (side + 1, side))
    sns.heatmap(
        w,
        ax=ax,
        cmap="Blues",
        vmin=0,
        vmax=max(1e-9, float(w.max())),
        xticklabels=list(key_tokens),
        yticklabels=list(query_tokens),
        square=True,
        annot=annotate,
        fmt=".2f",
        cbar_kws={"label": "attention weight", "shrink": 0.7},
    )
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=90)
    ax.tick_params(axis="y", rotation=0)
    return fig


def similarity_matrix(
    sim: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "Cosine similarity",
    groups: Sequence[int] | None = None,
    ax: Axes | None = None,
    vmin: float | None = None,
    vmax: float = 1.0,
    annotate: bool = True,
    cbar_label: str = "cosine similarity",
) -> Figure:
    """A square similarity matrix with its row/column labels; `groups` (sizes) draw separating lines."""
    s = np.asarray(sim, dtype=float)
    if s.shape != (len(labels), len(labels)):
        raise ValueError(f"a {s.shape} matrix does not match {len(labels)} labels")
    side = 0.55 * len(labels) + 3
    fig, ax = _axes(ax, (side + 2, side))
    sns.heatmap(
        s,
        ax=ax,
        cmap="rocket_r",
        vmin=vmin if vmin is not None else float(s.min()),
        vmax=vmax,
        xticklabels=list(labels),
        yticklabels=list(labels),
        square=True,
        annot=annotate,
        fmt=".2f",
        annot_kws={"fontsize": 8},
        cbar_kws={"label": cbar_label, "shrink": 0.7},
    )
    if groups:
        for edge in np.cumsum(groups)[:-1]:
            ax.axhline(edge, color="white", lw=3)
            ax.axvline(edge, color="white", lw=3)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=90)
    ax.tick_params(axis="y", rotation=0)
    return fig


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return y
    kernel = np.ones(k) / k
    return np.array([np.convolve(row, kernel, mode="valid") for row in np.atleast_2d(y)])


def loss_curves(
    curves: Mapping[str, Sequence[Sequence[float]]],
    *,
    steps: Sequence[float] | None = None,
    title: str = "Training loss",
    xlabel: str = "step",
    ylabel: str = "loss",
    smooth: int = 1,
    ax: Axes | None = None,
    logy: bool = False,
    baseline: float | None = None,
    baseline_label: str = "",
) -> Figure:
    """One line per condition: the mean over seeds, with a band from the lowest to the highest seed.

    `curves[name]` is a list of per-seed sequences of equal length; `smooth` averages over a moving window.
    """
    fig, ax = _axes(ax, (7.5, 4.2))
    for (name, runs), color in zip(curves.items(), PALETTE, strict=False):
        y = _smooth(np.asarray(runs, dtype=float), smooth)
        x = np.asarray(steps, dtype=float)[smooth - 1 :] if steps is not None else np.arange(y.shape[1]) + smooth
        label = f"{name} ({len(y)} seeds)" if len(y) > 1 else name
        ax.plot(x, y.mean(0), color=color, lw=2, label=label)
        if len(y) > 1:
            ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.2, lw=0)
    if baseline is not None:
        ax.axhline(baseline, color="black", ls="--", lw=1.2, label=baseline_label or f"baseline {baseline:.2f}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    return fig


def bars_vs_baseline(
    scores: Mapping[str, Sequence[float] | float],
    baseline: float | Mapping[str, float] | None = None,
    *,
    title: str = "Accuracy",
    ylabel: str = "accuracy",
    baseline_label: str = "majority baseline",
    ax: Axes | None = None,
    ylim: tuple[float, float] | None = (0.0, 1.0),
    reference: Mapping[str, float] | None = None,
    reference_label: str = "",
) -> Figure:
    """A bar per condition (the mean; its seeds as dots), beside a dashed baseline (one, or one per bar).

    `reference` marks a second value per bar (e.g. a paper's reported number) as a hollow diamond.
    """
    names = list(scores)
    values = [np.atleast_1d(np.asarray(scores[n], dtype=float)) for n in names]
    fig, ax = _axes(ax, (max(4.5, 1.3 * len(names) + 2), 4.2))
    x = np.arange(len(names))
    ax.bar(x, [v.mean() for v in values], color=[PALETTE[i % len(PALETTE)] for i in x], alpha=0.85, width=0.6)
    for i, v in enumerate(values):
        if len(v) > 1:
            ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, color="black", s=14, zorder=3)
        ax.text(i, v.mean() + 0.02 * (ax.get_ylim()[1] if ylim is None else ylim[1]), f"{v.mean():.2f}", ha="center")
    if isinstance(baseline, Mapping):
        for i, n in enumerate(names):
            ax.hlines(baseline[n], i - 0.4, i + 0.4, colors="black", linestyles="--", lw=1.5)
        ax.plot([], [], "k--", label=baseline_label)
    elif baseline is not None:
        ax.axhline(baseline, color="black", ls="--", lw=1.5, label=f"{baseline_label} ({baseline:.2f})")
    if reference is not None:
        ax.scatter(
            [i for i, n in enumerate(names) if n in reference],
            [reference[n] for n in names if n in reference],
            marker="D",
            s=60,
            facecolors="none",
            edgecolors="black",
            zorder=4,
            label=reference_label,
        )
    ax.set_xticks(x, names)
    if ylim is not None:
        # headroom above the top of the scale for the value printed over a full bar
        ax.set_ylim(ylim[0], ylim[1] + 0.08 * (ylim[1] - ylim[0]))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if baseline is not None or reference is not None:
        # below the axes, where it cannot cover a bar
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    return fig


def projection_2d(
    points: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "PCA projection",
    texts: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Points projected onto their first two principal components, coloured by label (texts annotate points)."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or len(p) != len(labels):
        raise ValueError(f"points must be (N, D) with N = len(labels) = {len(labels)}, got {p.shape}")
    centred = p - p.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    explained = (s[:2] ** 2) / max(1e-12, (s**2).sum())
    fig, ax = _axes(ax, (6, 5))
    sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=list(labels), ax=ax, s=60)
    if texts is not None:
        for (x, y), t in zip(xy, texts, strict=True):
            ax.annotate(t, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.set_title(title)
    return fig


def log_scale_bars(
    values: Mapping[str, float],
    *,
    title: str,
    xlabel: str,
    highlight: Sequence[str] = (),
    highlight_label: str = "",
    ax: Axes | None = None,
    fmt: callable = lambda v: f"{v:g}",
) -> Figure:
    """Horizontal bars on a log scale, in the given order; `highlight` names are drawn in a second colour."""
    names = list(values)
    fig, ax = _axes(ax, (8, 0.42 * len(names) + 1.5))
    colors = [PALETTE[1] if n in highlight else PALETTE[0] for n in names]
    y = np.arange(len(names))[::-1]
    ax.barh(y, [values[n] for n in names], color=colors)
    for yi, n in zip(y, names, strict=True):
        ax.text(values[n] * 1.15, yi, fmt(values[n]), va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_yticks(y, names)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.set_xlim(right=max(values.values()) * 20)
    if highlight:
        ax.legend(
            handles=[Patch(color=PALETTE[0], label="published models"), Patch(color=PALETTE[1], label=highlight_label)],
            frameon=False,
            loc="lower right",
        )
    return fig


# ----------------------------------------------------------------------------------------------------------
# Demos: panels precomputed in Python, switched in the browser


def figure_html(fig: Figure, width: int | None = None) -> str:
    """A figure as an inline PNG <img> (then closed), for a demo panel."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    style = f' style="width:{width}px"' if width else ""
    return f'<img alt="figure" src="data:image/png;base64,{data}"{style}>'


def topk_html(words: Sequence[str], probs: Sequence[float], title: str = "") -> str:
    """A ranked list of words with probability bars (the top-k of a prediction)."""
    rows = "".join(
        f'<tr><td style="padding:2px 8px">{html.escape(w)}</td>'
        f'<td style="padding:2px 8px;width:220px"><div style="background:#4c72b0;height:12px;'
        f'width:{max(1, round(200 * p))}px"></div></td><td style="padding:2px 8px">{p:.2f}</td></tr>'
        for w, p in zip(words, probs, strict=True)
    )
    head = f"<div style='font-weight:bold;margin:4px 0'>{html.escape(title)}</div>" if title else ""
    return f"<div class='selfsup-demo'>{head}<table>{rows}</table></div>"


def attention_html(weights: np.ndarray | Sequence[Sequence[float]], tokens: Sequence[str], title: str = "") -> str:
    """An attention matrix as an HTML table shaded by weight (light enough to precompute dozens)."""
    w = np.asarray(weights, dtype=float)
    esc = [html.escape(t) for t in tokens]
    top = max(1e-9, float(w.max()))
    header = "<tr><th></th>" + "".join(f"<th class='key'>{t}</th>" for t in esc) + "</tr>"
    body = []
    for i, t in enumerate(esc):
        cells = "".join(
            f"<td title='{w[i, j]:.2f}' style='background:rgba(31,119,180,{w[i, j] / top:.2f})'></td>"
            for j in range(len(esc))
        )
        body.append(f"<tr><th class='query'>{t}</th>{cells}</tr>")
    head = f"<div style='font-weight:bold;margin:4px 0'>{html.escape(title)}</div>" if title else ""
    return f"<div class='selfsup-demo selfsup-attention'>{head}<table>{header}{''.join(body)}</table></div>"


def _panel(content: object) -> object:
    """A demo panel from HTML text or a widget."""
    import ipywidgets as w

    return w.HTML(content) if isinstance(content, str) else content


def choice_demo(panels: Mapping[str, object], *, description: str, slider: bool = False) -> object:
    """A dropdown (or, with `slider`, a slider) that shows one panel of `panels` (HTML text or widgets).

    The control is `jslink`ed to a Stack, so the switch happens in the browser, also in the static book.
    """
    import ipywidgets as w

    names = list(panels)
    if not names:
        raise ValueError("a demo needs at least one panel")
    stack = w.Stack([_panel(panels[n]) for n in names], selected_index=0)
    if slider:
        control = w.SelectionSlider(options=names, value=names[0], description=description, continuous_update=True)
    else:
        control = w.Dropdown(options=names, value=names[0], description=description)
    control.style.description_width = "initial"
    w.jslink((control, "index"), (stack, "selected_index"))
    return w.VBox([control, stack])


def grid_demo(
    panels: Mapping[str, Mapping[str, object]], *, row_description: str, col_description: str, col_slider: bool = True
) -> object:
    """Two controls over a grid of panels: `panels[row][col]` (every row has the same columns).

    A dropdown picks the row; a slider (or dropdown) picks the column. Each row is a Stack of its columns,
    and one column control is linked to all of them, so both choices switch in the browser.
    """
    import ipywidgets as w

    rows = list(panels)
    if not rows:
        raise ValueError("a demo needs at least one row of panels")
    cols = list(panels[rows[0]])
    if any(list(panels[r]) != cols for r in rows):
        raise ValueError("every row of a grid demo must have the same columns, in the same order")
    inner = [w.Stack([_panel(panels[r][c]) for c in cols], selected_index=0) for r in rows]
    outer = w.Stack(inner, selected_index=0)
    row_control = w.Dropdown(options=rows, value=rows[0], description=row_description)
    if col_slider:
        col_control = w.SelectionSlider(options=cols, value=cols[0], description=col_description)
    else:
        col_control = w.Dropdown(options=cols, value=cols[0], description=col_description)
    for c in (row_control, col_control):
        c.style.description_width = "initial"
    w.jslink((row_control, "index"), (outer, "selected_index"))
    for stack in inner:
        w.jslink((col_control, "index"), (stack, "selected_index"))
    return w.VBox([w.HBox([row_control, col_control]), outer])
