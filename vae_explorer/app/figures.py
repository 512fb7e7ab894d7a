"""Figures more than one page draws: how each latent dimension learned, epoch by epoch."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..evaluation.metrics import ACTIVE_UNIT_THRESHOLD
from .safety import label


def has_dimension_history(history: list[dict]) -> bool:
    """Whether a run's history holds the per-dimension figures (runs trained before they were recorded do not)."""
    return bool(history) and all("test_kl_per_dim" in r and "test_mu_var" in r for r in history)


def dimension_history_figure(history: list[dict]) -> go.Figure:
    """A heatmap of the test KL per latent dimension (rows) at each epoch (columns), and the active
    units at each epoch (posterior means varying more than 0.01 across the test set, Burda et al.)."""
    epochs = [r["epoch"] for r in history]
    kl = np.array([r["test_kl_per_dim"] for r in history]).T  # (D, E)
    active = [int((np.asarray(r["test_mu_var"]) > ACTIVE_UNIT_THRESHOLD).sum()) for r in history]
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.7, 0.3],
        horizontal_spacing=0.14,
        subplot_titles=("KL per latent dimension (nats), test set", f"active units (of {len(kl)})"),
    )
    figure.add_trace(
        go.Heatmap(
            z=kl,
            x=epochs,
            y=[f"z{i}" for i in range(len(kl))],
            colorscale="Viridis",
            zmin=0,
            colorbar=dict(title="nats", x=0.615, xanchor="left", thickness=12),
            hovertemplate="epoch %{x}, %{y}: %{z:.2f} nats<extra></extra>",
        ),
        1,
        1,
    )
    figure.add_trace(
        go.Scatter(
            x=epochs,
            y=active,
            mode="lines+markers",
            line=dict(color="#332288"),
            showlegend=False,
            hovertemplate="epoch %{x}: %{y} active<extra></extra>",
        ),
        1,
        2,
    )
    figure.update_xaxes(title_text="epoch", tick0=0, dtick=max(1, -(-len(epochs) // 10)))  # whole epochs: no 0.5, 1.5
    figure.update_yaxes(autorange="reversed", col=1)
    figure.update_yaxes(range=[0, len(kl) + 0.5], col=2)
    figure.update_layout(height=max(260, 22 * len(kl) + 120), margin=dict(l=10, r=10, t=40, b=10))
    return figure


def epochs_map_figure(
    frames: list[dict], names: list[str], colours: list[str], samples: list[bytes] | None = None
) -> go.Figure:
    """The preview's latent scatter at each epoch as a plotly animation: a slider over the epochs
    and a play button, played in the browser. Each frame is that epoch's top-2 PCA plane and, with
    `samples` (one PNG per frame: the same prior draws decoded after that epoch), the row of decodes
    above it: one slider and one play button move both."""

    def traces(frame):
        out = []
        for k, name in enumerate(names):
            mask = frame["labels"] == k
            out.append(
                go.Scattergl(
                    x=frame["scatter"][mask, 0],
                    y=frame["scatter"][mask, 1],
                    mode="markers",
                    name=label(name),
                    marker=dict(size=5, color=colours[k % len(colours)]),
                )
            )
        return out

    def strip(png: bytes) -> list[dict]:  # the decodes, a row across the top of the figure
        return [
            dict(
                source="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
                xref="paper",
                yref="paper",
                x=0.5,
                y=1.0,
                sizex=1.0,
                sizey=STRIP,
                xanchor="center",
                yanchor="top",
                sizing="contain",
                layer="above",
            )
        ]

    every = np.concatenate([f["scatter"] for f in frames])
    span = np.abs(every).max(0) * 1.05 + 1e-6
    shown = samples is not None
    figure = go.Figure(
        data=traces(frames[-1]),
        frames=[
            go.Frame(data=traces(f), name=str(f["epoch"]), layout=dict(images=strip(samples[i])) if shown else None)
            for i, f in enumerate(frames)
        ],
    )
    steps = [
        dict(
            method="animate",
            label=str(f["epoch"]),
            args=[[str(f["epoch"])], dict(mode="immediate", frame=dict(duration=0, redraw=True))],
        )
        for f in frames
    ]
    figure.update_layout(
        height=470 + (150 if shown else 0),
        margin=dict(l=10, r=10, t=40, b=10),
        title="the same 8 prior draws decoded, and the test images in latent space (top-2 PCA)"
        if shown
        else "test images in latent space (top-2 PCA)",
        xaxis=dict(range=[-span[0], span[0]]),
        yaxis=dict(range=[-span[1], span[1]], domain=[0, 1 - STRIP - 0.04] if shown else [0, 1]),
        images=strip(samples[-1]) if shown else [],
        # the play button beside the slider, bottom left: at the top right, plotly's toolbar covered it ("Zoom in")
        sliders=[
            dict(
                active=len(frames) - 1,
                steps=steps,
                currentvalue=dict(prefix="epoch ", xanchor="right"),
                pad=dict(t=30),
                x=0.14,
                len=0.86,
            )
        ],
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                x=0,
                y=0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=38),
                buttons=[
                    dict(
                        label="▶ play",
                        method="animate",
                        args=[
                            None,
                            dict(frame=dict(duration=500, redraw=True), fromcurrent=False, transition=dict(duration=0)),
                        ],
                    )
                ],
            )
        ],
    )
    return figure


STRIP = 0.2  # the share of the replay's height its row of decodes takes


def kl_bars(kl: np.ndarray, active: np.ndarray, title: str, height: int) -> go.Figure:
    """KL per latent dimension (nats), most first; a collapsed dimension's bar is grey and, being
    about zero high, carries the word "collapsed" upright above it (never shrunk to fit the bar)."""
    order = [int(i) for i in np.argsort(-kl)]
    figure = go.Figure(
        go.Bar(
            x=[f"z{i}" for i in order],
            y=[float(kl[i]) for i in order],
            marker_color=["#4c78a8" if active[i] else "#bab0ac" for i in order],
            text=["" if active[i] else "collapsed" for i in order],
            textposition="outside",
            textangle=-90,
            constraintext="none",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.2f} nats<extra></extra>",
        )
    )
    figure.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        title=title,
        yaxis_title="nats",
        yaxis_range=[0, float(max(kl.max(), 0.0)) * 1.15 + 1e-3],
        xaxis_tickangle=0,
    )
    return figure
