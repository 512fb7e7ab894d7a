"""What every page has around its content: the browser title, the sidebar (presentation mode, the
model picker), the heading, picture and chart sizes for a projector, and the progress of a map
computed in the background."""

from __future__ import annotations

import streamlit as st

from ..checkpoints import Checkpoint
from . import catalog, safety

MAX_SLIDERS = 64  # a latent of more dimensions (up to 512, imported) gets sliders for those that carry the most KL

PRESENTING_KEY = "presenting"  # the session's presentation mode (not the toggle's own key: widgets forget across pages)
PRESENTATION_SCALE = 1.5
# Streamlit sizes its text in rem, so a larger root font size enlarges every word on the page, the
# components' included; pictures grow through px(). The toolbar (Deploy, the menu) is hidden.
PRESENTATION_CSS = """<style>
html { font-size: 22px; }
h1 { font-size: 3.2rem !important; }
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; padding-left: 2.5rem; padding-right: 2.5rem; max-width: none; }
[data-testid="stToolbar"] { display: none; }
[data-testid="stSidebar"][data-collapsed="false"] { width: 22rem !important; }  /* the model picker's names whole */
</style>"""


def presenting() -> bool:
    return bool(st.session_state.get(PRESENTING_KEY))


def px(size: int) -> int:
    """A picture's size in CSS pixels: larger in presentation mode."""
    return int(round(size * (PRESENTATION_SCALE if presenting() else 1.0)))


def chart(figure, key: str, container=None) -> None:
    """st.plotly_chart, with the figure's text and height enlarged in presentation mode (per figure:
    a plotly template would be process-wide, every session's)."""
    if presenting():
        figure.update_layout(font=dict(size=18), height=int((figure.layout.height or 450) * 1.3))
        figure.update_annotations(font_size=20)  # subplot titles
    # no toolbar in presentation mode (it covers what is beneath it); never a wheel that zooms instead of scrolling the page
    config = {"scrollZoom": False, "displayModeBar": False if presenting() else "hover"}
    (container or st).plotly_chart(figure, key=key, config=config)


def presentation_toggle() -> None:
    """The sidebar's presentation-mode switch, shared by every page and kept in the URL (?present=1)."""
    if PRESENTING_KEY not in st.session_state:
        st.session_state[PRESENTING_KEY] = st.query_params.get("present") == "1"
    on = st.sidebar.toggle(
        "Presentation mode",
        value=st.session_state[PRESENTING_KEY],
        key="present_toggle",
        help="Large type and pictures for a projector, without the toolbar.",
    )
    st.session_state[PRESENTING_KEY] = on
    if on:
        st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]


def sidebar() -> Checkpoint:
    """The sidebar every page shares: presentation mode, then the model picker. Returns the chosen model."""
    presentation_toggle()
    return catalog.select_model()


def page(title: str, caption: str | None = None) -> Checkpoint:
    """The top of every page: its browser title, the shared model picker, the heading. Returns the chosen model."""
    st.set_page_config(page_title=f"{title} · vae-explorer", page_icon="🧭", layout="wide")
    checkpoint = sidebar()
    st.title(title)
    if caption:
        st.caption(caption)
    return checkpoint


MAP_LIBRARIES = {"tsne": "openTSNE", "umap": "umap-learn"}


def show_map_progress(task, what: str) -> None:
    """A progress bar for a map being computed, polled every second; the page reruns when it is
    ready. A failure is said in one line."""
    method = task.key[2]

    @st.fragment(run_every=1.0)
    @safety.boundary()  # a fragment reruns alone, outside the page's boundary
    def poll() -> None:
        if task.state in ("done", "replaced"):
            st.rerun()
        elif task.state == "failed":
            if task.error in ("ImportError", "ModuleNotFoundError"):
                st.error(
                    f"The {what} needs {MAP_LIBRARIES.get(method, method)}, which is not installed here; "
                    "run `pip install -r requirements.txt` and restart the app."
                )
            elif task.error == "MemoryError":
                st.error(f"The machine ran out of memory computing the {what}; choose fewer points.")
            else:
                st.error(f"The {what} could not be computed; choose fewer points or another method.")
        else:
            waiting = " (after the map being computed now)" if task.state == "waiting" else ""
            st.progress(
                min(task.done / task.total, 1.0),
                text=f"Computing the {what}{waiting}: {100 * task.done / task.total:.0f}%. "
                "It is kept, so it opens at once next time.",
            )

    poll()
