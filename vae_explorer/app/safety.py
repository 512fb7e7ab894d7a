"""What reaches a browser: text people typed or uploaded shown as text, and no traceback ever.

- `plain(text)`: a name, a class, a dataset, a file name or a message quoting one, made safe to put
  in Streamlit's markdown (st.markdown, st.caption, st.error, ...): each character markdown (or
  Streamlit's math and colour directives) gives a meaning to is backslash-escaped, which CommonMark
  renders as the character itself, so `![x](http://...)` shows as those characters and fetches
  nothing, and `**` stays two stars; a line cannot start a list or a heading.
- `label(text)`: the same for plotly, whose text takes a few HTML tags (<a href>, <b>, <br>).
- `say(exc)`: an error of ours as the page shows it: its sentence, with the server's folders named
  rather than spelled out, as plain text.
- `boundary()`: around a page's body (and each fragment's), anything unexpected becomes one
  sentence in the page and a traceback in the server's log; Streamlit's own error display is the
  last line behind it, told in .streamlit/config.toml to show no details.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
from pathlib import Path

import streamlit as st

from ..errors import VaeExplorerError

LOG = logging.getLogger("vae_explorer.app")
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>#!|~$&])")  # inline markup; '-', '+', '.' mean something only at a line's start
UNEXPECTED = (
    "Something went wrong on this page (the server's log has the details for whoever runs it); reload the "
    "page, or pick another model in the sidebar."
)


def plain(text: object) -> str:
    """`text` as markdown that shows exactly these characters."""
    text = (
        _MARKUP.sub(r"\\\1", str(text)).replace("\n", " ").replace("://", "\\://").replace("www.", "www\\.")
    )  # no autolinks
    return re.sub(
        r"^(\s*)([-+=]|\d+(?=[.)]))",
        lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)),
        text,
    )


def label(text: object) -> str:
    """`text` for a plotly figure (axis titles, legends, hover text), its markup shown as text."""
    return html.escape(str(text), quote=False)


def _server_folders() -> list[tuple[str, str]]:
    """(folder, how a page names it), longest first, so the most precise name wins."""
    from ..data.access import data_root
    from ..paths import cache_root, runs_dir, shipped_root

    named = [
        (runs_dir(), "the runs folder"),
        (cache_root(), "the cache folder"),
        (shipped_root(), "the app's folder"),
        (Path.home(), "the server's home folder"),
    ]
    root = data_root()
    if root is not None:
        named.append((root, "the data folder"))
    pairs = []
    for folder, name in named:
        for spelling in {str(folder), str(Path(folder).expanduser().resolve())}:
            pairs.append((spelling, name))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def server_paths_named(message: str) -> str:
    """`message` with the server's own folders named instead of spelled out, and any other absolute
    path reduced to its last part."""
    for folder, name in _server_folders():
        if folder and folder != "/":
            message = message.replace(folder, name)
    return re.sub(r"(?<![\w.])/(?:[^\s/,;:'\"()]+/)+([^\s/,;:'\"()]+)", r"…/\1", message)


def dataset_name(dataset: str) -> str:
    """A dataset as a page names it (markdown-safe): an image folder by its own name, never its path."""
    if dataset.startswith("folder:"):
        return plain(f"the image folder {Path(dataset[len('folder:') :]).name or 'of its own'}")
    return plain(dataset)


def say(exc: BaseException) -> str:
    """The page's sentence for an error of ours (markdown-safe)."""
    return plain(server_paths_named(str(exc)))


class boundary(contextlib.ContextDecorator):
    """Turns an exception escaping a page (or a fragment) into one sentence on the page."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, trace) -> bool:
        if exc is None or not isinstance(exc, Exception):  # st.stop() and st.rerun() are BaseExceptions: let them pass
            return False
        if isinstance(exc, VaeExplorerError):
            st.error(say(exc))
        else:
            LOG.error("unexpected error on a page", exc_info=(kind, exc, trace))
            st.error(UNEXPECTED)
        return True
