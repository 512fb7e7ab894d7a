"""The corpus in tests/data (made by tests/data/make_bad_files.py): every bad upload gets one clear
sentence naming the file; every awkward but valid one becomes a proper model input."""

import pytest
import torch
from conftest import REPO

from vae_explorer.data.uploads import ImageError, prepare_image

DATA = REPO / "tests" / "data"
EXPECTED = {
    "empty.png": "is empty",
    "text.png": "is not an image",
    "truncated.jpg": "damaged or truncated",
    "one-pixel.png": "only 1x1 pixels",
    "bomb-30000x30000.png": "too large to decode safely",
    "drawing.svg": "is not an image",
    "archive.zip": "is not an image",
}


def test_the_corpus_is_complete():
    assert {p.name for p in (DATA / "bad").iterdir()} == set(EXPECTED)
    assert len(list((DATA / "ok").iterdir())) >= 7


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_uploads_name_the_file_and_the_fix(name):
    with pytest.raises(ImageError) as info:
        prepare_image((DATA / "bad" / name).read_bytes(), (1, 28, 28), name=name)
    message = str(info.value)
    assert EXPECTED[name] in message and name in message and message.endswith(".")
    assert message.count(". ") == 0  # one sentence


@pytest.mark.parametrize("path", sorted((DATA / "ok").iterdir()), ids=lambda p: p.name)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_awkward_but_valid_uploads_work(path, shape):
    x = prepare_image(path.read_bytes(), shape, name=path.name)
    assert x.shape == shape and torch.isfinite(x).all() and 0 <= float(x.min()) <= float(x.max()) <= 1
