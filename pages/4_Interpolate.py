"""Interpolate: walk between images in latent space, along a line and along a great circle."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from vae_explorer.errors import VaeExplorerError
from vae_explorer.images import gif_bytes, png_bytes, to_uint8, upscale
from vae_explorer.latent import interpolate
from vae_explorer.preprocess import prepare_image
from vae_explorer.ui import state

st.set_page_config(page_title="Interpolate · vae-explorer", page_icon="🧭", layout="wide")
checkpoint = state.select_model()
model = checkpoint.model
names = state.class_names(checkpoint)
path, saved = str(checkpoint.path), state.stamp(checkpoint.path)
st.title("Interpolate")
data = state.dataset_of(checkpoint)
mu, _, labels = state.encoded_test_set(path, saved, 10_000)
if data is None or not len(mu):
    st.stop()
n = len(mu)


def decode_all(z: np.ndarray | torch.Tensor, label: int) -> torch.Tensor:
    z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
    y = torch.full((len(z),), label) if model.cond_dim else None
    with torch.inference_mode():
        return model.generate(z, y)


def pick(slot: str, default: int, column) -> tuple[np.ndarray, int, torch.Tensor]:
    """One end point: a test image by index, or an uploaded one. Returns (z, label, image)."""
    with column:
        index = st.number_input(f"Image {slot}: test image", 0, n - 1, key=f"interp_{slot}",
                                **state.from_url(f"interp_{slot}", state.in_range(0, n - 1), value=default))
        upload = st.file_uploader(f"…or upload image {slot}", type=["png", "jpg", "jpeg", "bmp", "webp", "gif"], key=f"interp_upload_{slot}")
        z, label, image = mu[index], int(labels[index]), data.test_x[index: index + 1]
        if upload is not None:
            try:
                image = prepare_image(upload.getvalue(), checkpoint.config.model.image_shape, "auto", True, name=upload.name)[None]
                with torch.inference_mode():
                    z = model.encode(image, torch.tensor([label]) if model.cond_dim else None).mean[0].numpy()
            except VaeExplorerError as exc:
                st.error(str(exc))
        st.image(upscale(to_uint8(image)[0].squeeze(), 96), caption=f"{slot}: {names[label]}", width=96)
    return z, label, image


ends = st.columns(3)
z_a, label_a, _ = pick("A", 0, ends[0])
z_b, label_b, _ = pick("B", min(1, n - 1), ends[1])
steps = ends[2].slider("Steps", 5, 16, key="interp_steps", **state.from_url("interp_steps", state.in_range(5, 16), value=10))
state.to_url(interp_A=st.session_state["interp_A"], interp_B=st.session_state["interp_B"], interp_steps=steps)
if model.cond_dim:
    ends[2].caption(f"This conditional model decodes the whole path as class {names[label_a]} (image A's class).")

# --- line and great circle ---------------------------------------------------------------------------
st.subheader("A to B: a straight line and a great circle")
st.caption("Linear interpolation cuts through the middle of the space, where |z| is small and the prior has little "
           "mass in high dimensions; spherical interpolation (slerp) keeps |z| near the typical radius √d.")
za, zb = torch.from_numpy(z_a).float(), torch.from_numpy(z_b).float()
paths = {method: interpolate(za, zb, steps, method) for method in ("linear", "slerp")}
rows = torch.cat([decode_all(paths["linear"], label_a), decode_all(paths["slerp"], label_a)])
strip = png_bytes(rows, nrow=steps, min_cell=56)
left, right = st.columns([3, 2], gap="medium")
with left:
    st.image(strip, width="stretch", caption="top row: linear; bottom row: slerp")
    buttons = st.columns(2)
    buttons[0].download_button("Download (PNG)", strip, "interpolation.png", "image/png", key="interp_png", on_click="ignore")
    buttons[1].download_button("Download linear path (GIF)", gif_bytes(rows[:steps]), "interpolation.gif", "image/gif",
                               key="interp_gif", on_click="ignore")
with right:
    figure = go.Figure()
    t = np.linspace(0, 1, steps)
    for method, points in paths.items():
        figure.add_trace(go.Scatter(x=t, y=points.norm(dim=1).numpy(), mode="lines+markers", name=method))
    figure.add_hline(y=float(np.sqrt(model.latent_dim)), line_dash="dot", annotation_text="√d")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title="|z| along each path", xaxis_title="t from A to B")
    st.plotly_chart(figure, key="interp_norm")

# --- four corners ----------------------------------------------------------------------------------------
st.subheader("A grid between four images")
corners = st.columns(3)
index_c = corners[0].number_input("Image C: test image", 0, n - 1, min(2, n - 1), key="interp_C")
index_d = corners[1].number_input("Image D: test image", 0, n - 1, min(3, n - 1), key="interp_D")
side = corners[2].slider("Grid size", 4, 12, 7, key="interp_side")
s = np.linspace(0, 1, side)[:, None, None]
t = np.linspace(0, 1, side)[None, :, None]
# Bilinear in latent space: A top-left, B top-right, C bottom-left, D bottom-right.
grid_z = (1 - s) * ((1 - t) * z_a + t * z_b) + s * ((1 - t) * mu[index_c] + t * mu[index_d])
grid = png_bytes(decode_all(grid_z.reshape(-1, model.latent_dim), label_a), nrow=side, min_cell=48, padding=1)
st.image(grid, width=min(720, side * 72), caption="corners: A top-left, B top-right, C bottom-left, D bottom-right")
st.download_button("Download grid (PNG)", grid, "four_corners.png", "image/png", key="interp_grid_png", on_click="ignore")

# --- arithmetic ---------------------------------------------------------------------------------------------
st.subheader("Latent arithmetic with class centroids")
st.caption("A class centroid is the mean z of that class's test images. Adding the difference of two centroids to "
           "image A moves it in the direction that separates those classes, e.g. shirt + (sneaker − sandal).")
centroids = np.stack([mu[labels == k].mean(0) if (labels == k).any() else np.zeros(model.latent_dim) for k in range(len(names))])
terms = st.columns(3)
plus = terms[0].selectbox("plus class", range(len(names)), index=min(7, len(names) - 1), format_func=lambda i: names[i], key="interp_plus")
minus = terms[1].selectbox("minus class", range(len(names)), index=min(5, len(names) - 1), format_func=lambda i: names[i], key="interp_minus")
scale = terms[2].slider("amount", 0.0, 2.0, 1.0, 0.1, key="interp_amount")
result = z_a + scale * (centroids[plus] - centroids[minus])
parts = decode_all(np.stack([z_a, centroids[plus], centroids[minus], result]), label_a)
st.image(png_bytes(parts, nrow=4, min_cell=72), width=480,
         caption=f"A,  centroid of {names[plus]},  centroid of {names[minus]},  A + {scale:g} × ({names[plus]} − {names[minus]})")
