import io
import zipfile

import pytest

from vae_explorer import CheckpointError, load_checkpoint
from vae_explorer.checkpoint_zip import import_checkpoint_zip, sanitize_name


def zip_of(files: dict[str, bytes], links=()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a symbolic link
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture
def files(tiny_checkpoint):
    return {p.name: p.read_bytes() for p in tiny_checkpoint.iterdir()}


def test_a_good_zip_is_imported(files, tmp_path):
    folder = import_checkpoint_zip(zip_of({f"tiny/{k}": v for k, v in files.items()}), "my model!.zip", tmp_path)
    assert folder == tmp_path / "my-model"
    assert load_checkpoint(folder).history
    assert [p.name for p in tmp_path.iterdir()] == ["my-model"]


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"../evil.json": b"{}"}, "unsafe path"),
        ({"/etc/evil": b"x"}, "unsafe path"),
        ({"weights.pkl": b"\x80\x04K\x01."}, "not a checkpoint file"),
        ({"a/b/config.json": b"{}"}, "nested too deep"),
    ],
)
def test_unsafe_members_refuse_the_whole_upload(files, tmp_path, extra, match):
    with pytest.raises(CheckpointError, match=match):
        import_checkpoint_zip(zip_of({**files, **extra}), "bad.zip", tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert not (tmp_path / "evil.json").exists()


def test_links_and_bombs_and_junk(files, tmp_path):
    with pytest.raises(CheckpointError, match="symbolic link"):
        import_checkpoint_zip(zip_of(files, links=["evil-link"]), "link.zip", tmp_path)
    with pytest.raises(CheckpointError, match="zip bomb|over the"):
        import_checkpoint_zip(zip_of({**files, "metrics.json": b"0" * (3 * 2**20)}), "bomb.zip", tmp_path)
    with pytest.raises(CheckpointError, match="not a zip file"):
        import_checkpoint_zip(b"plain text", "junk.zip", tmp_path)
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        import_checkpoint_zip(zip_of({"config.json": files["config.json"]}), "half.zip", tmp_path)


def test_a_checkpoint_that_fails_to_load_leaves_nothing(files, tmp_path):
    broken = {**files, "model.safetensors": b"\x00" * 64}
    with pytest.raises(CheckpointError, match="model.safetensors"):
        import_checkpoint_zip(zip_of(broken), "broken.zip", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_names_are_not_overwritten(files, tmp_path):
    import_checkpoint_zip(zip_of(files), "same.zip", tmp_path)
    with pytest.raises(CheckpointError, match="already exists"):
        import_checkpoint_zip(zip_of(files), "same.zip", tmp_path)


def test_sanitize_name():
    assert sanitize_name("../../etc/passwd") == "etc-passwd"
    assert sanitize_name(".hidden") == "hidden"
    assert sanitize_name("***") == "uploaded-model"
    assert len(sanitize_name("a" * 300)) == 64
