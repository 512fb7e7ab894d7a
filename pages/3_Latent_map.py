"""Latent map: the encoded test set as a 2-D scatter coloured by class; click to look closer."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae_explorer.app import state
from vae_explorer.data import prepare_image
from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import to_uint8, upscale
from vae_explorer.latent import encode_image, pca_2d, pca_inverse, place_by_neighbours, reconstruction_rows

checkpoint = state.page("Latent map", "Each dot is one test image, placed by its posterior mean (never a sample). PCA is "
                        "a linear projection: distances along it are real and any place on it can be decoded. t-SNE keeps "
                        "neighbours together but bends the space, so only its dots can be clicked.")
model = checkpoint.model
names = state.class_names(checkpoint)
path, saved = str(checkpoint.path), state.stamp(checkpoint.path)

data = state.dataset_of(checkpoint)
if data is None:
    st.stop()
controls = st.columns([1, 1, 1])
method = controls[0].radio("Method", ["PCA", "t-SNE"], horizontal=True, key="map_method",
                           **state.from_url("map_method", state.one_of(["PCA", "t-SNE"]), index=0))
sizes = [n for n in (500, 1000, 2000, 5000) if n < len(data.test_x)] + [min(10_000, len(data.test_x))]
if len(sizes) > 1:
    limit = controls[1].select_slider("Points", sizes, key="map_points",
                                      **state.from_url("map_points", state.one_of(sizes), value=min(2000, sizes[-1])))
else:
    limit = sizes[0]
    controls[1].markdown(f"**Points**: all {limit} test images")
perplexity = controls[2].slider("t-SNE perplexity", 5, 100, key="map_perplexity", disabled=method != "t-SNE",
                                help="About how many neighbours each point attends to.",
                                **state.from_url("map_perplexity", state.in_range(5, 100), value=30))
state.to_url(map_method=method, map_points=limit, map_perplexity=perplexity)
mu, logvar, labels = state.encoded_test_set(path, saved, limit)
coords, pca_mean, pca_directions = pca_2d(mu)
if method == "t-SNE":
    coords, cached = state.tsne_map(path, saved, limit, float(perplexity))
    if not cached:
        st.toast(f"t-SNE of {len(mu):,} points computed and saved beside the checkpoint.")

# An uploaded image placed on the map.
upload = st.sidebar.file_uploader("Place your own image on the map", type=["png", "jpg", "jpeg", "bmp", "webp", "gif"], key="map_upload")
placed = None
if upload is not None:
    try:
        x = prepare_image(upload.getvalue(), checkpoint.config.model.image_shape, "auto", True, name=upload.name)
        z_upload = encode_image(model, x, 0, samples=0).mean
        if method == "PCA":
            placed = (z_upload - pca_mean) @ pca_directions.T
        else:
            placed = place_by_neighbours(z_upload, mu, coords)
    except VaeExplorerError as exc:
        st.sidebar.error(str(exc))

figure = go.Figure()
palette = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]
if method == "PCA":  # an invisible grid of clickable points, so an empty place can be decoded too
    span = np.abs(coords).max(0) * 1.1 + 1e-6
    gx, gy = np.meshgrid(np.linspace(-span[0], span[0], 41), np.linspace(-span[1], span[1], 41))
    figure.add_trace(go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", name="empty place", showlegend=False,
                                marker=dict(size=9, opacity=0.0), hovertemplate="decode here<extra></extra>",
                                selected=dict(marker=dict(opacity=1.0, color="black", size=12)),
                                unselected=dict(marker=dict(opacity=0.0))))
for k, name in enumerate(names):
    rows = np.where(labels == k)[0]
    figure.add_trace(go.Scatter(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name, customdata=rows,
                                marker=dict(size=5, color=palette[k % len(palette)], opacity=0.75),
                                selected=dict(marker=dict(size=11, opacity=1.0)), unselected=dict(marker=dict(opacity=0.75)),
                                hovertemplate=f"{name}<br>test image %{{customdata}}<extra></extra>"))
if placed is not None:
    figure.add_trace(go.Scatter(x=[placed[0]], y=[placed[1]], mode="markers+text", name="your image", text=["your image"],
                                textposition="top center", marker=dict(size=18, symbol="star", color="black")))
figure.update_layout(height=620, margin=dict(l=10, r=10, t=10, b=10), legend=dict(itemsizing="constant"),
                     xaxis_title="PC 1" if method == "PCA" else "t-SNE 1", yaxis_title="PC 2" if method == "PCA" else "t-SNE 2",
                     clickmode="event+select", dragmode="pan")
left, right = st.columns([3, 1], gap="medium")
with left:
    event = st.plotly_chart(figure, key="map_chart", on_select="rerun", selection_mode="points")
with right:
    points = (event.selection.points if event and event.selection else []) or []
    if not points:
        st.info("Click a dot to see its image and reconstruction" + (", or an empty place to decode it." if method == "PCA" else "."))
    else:
        point = points[0]
        if point.get("customdata") is not None and not isinstance(point.get("customdata"), list):
            index = int(point["customdata"])
            pair = to_uint8(reconstruction_rows(model, data.test_x[index: index + 1], data.test_y[index: index + 1], 1))
            st.markdown(f"**Test image {index}**: {names[int(labels[index])]}")
            st.image(upscale(pair[0].squeeze()), caption="the image", width=180, output_format="PNG")
            st.image(upscale(pair[1].squeeze()), caption="its reconstruction", width=180, output_format="PNG")
        elif method == "PCA":
            z = pca_inverse(np.array([[point["x"], point["y"]]]), pca_mean, pca_directions)[0]
            st.markdown(f"**Decoded at ({point['x']:.2f}, {point['y']:.2f})**")
            st.image(upscale(state.picture(checkpoint, z, 0)), caption="z = mean + position along the PCA plane",
                     width=180, output_format="PNG")
