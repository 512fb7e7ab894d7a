import io
import zipfile

import pytest

from vae_explorer import CheckpointError, load_checkpoint
from vae_explorer.checkpoints import import_checkpoint_zip, sanitize_name


def zip_of(files: dict[str, bytes], links=()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
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


def test_a_checkpoint_that_fails_to_load_leaves_nothing_and_names_no_server_path(files, tmp_path):
    broken = {**files, "model.safetensors": b"\x00" * 64}
    with pytest.raises(CheckpointError) as refused:
        import_checkpoint_zip(zip_of(broken), "broken.zip", tmp_path)
    message = str(refused.value)
    assert message.startswith("broken.zip: model.safetensors is not a valid safetensors file")
    assert str(tmp_path) not in message and "uploading" not in message and "restore it from a copy" not in message
    assert message.endswith("zip the checkpoint folder again.")
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


def nothing_written(root) -> bool:
    return not any(p.is_file() for p in root.rglob("*"))


def test_a_bomb_under_the_size_cap_is_refused_by_its_compression_ratio(files, tmp_path):
    # 20 MB of zeros passes the 200 MB cap on model.safetensors but deflates about 1,000-fold.
    bomb = zip_of({**files, "model.safetensors": b"\x00" * (20 * 2**20)})
    assert len(bomb) < 100_000
    with pytest.raises(
        CheckpointError, match="bomb.zip: model.safetensors expands [0-9]+-fold, like a zip bomb; refused."
    ):
        import_checkpoint_zip(bomb, "bomb.zip", tmp_path / "models")
    assert nothing_written(tmp_path)


def _lie_about_size(data: bytes, name: str, claimed: int) -> bytes:
    """The zip with `name`'s uncompressed size (local header and central directory) set to `claimed`."""
    import re
    import struct

    offset = zipfile.ZipFile(io.BytesIO(data)).getinfo(name).header_offset
    out = bytearray(data)
    struct.pack_into("<I", out, offset + 22, claimed)  # local file header: uncompressed size
    for entry in re.finditer(rb"PK\x01\x02", data):  # its central directory entry, found by the offset it points to
        if struct.unpack_from("<I", data, entry.start() + 42)[0] == offset:
            struct.pack_into("<I", out, entry.start() + 24, claimed)
    return bytes(out)


def test_a_member_larger_than_its_header_claims_is_refused(files, tmp_path):
    honest = zip_of({f"tiny/{k}": v for k, v in files.items()})
    lying = _lie_about_size(honest, "tiny/model.safetensors", 100)
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("tiny/model.safetensors").file_size == 100
    with pytest.raises(CheckpointError, match="lying.zip could not be unpacked"):
        import_checkpoint_zip(lying, "lying.zip", tmp_path / "models")
    assert nothing_written(tmp_path)
    huge = _lie_about_size(
        honest, "tiny/model.safetensors", 300 * 2**20
    )  # a header over the cap: refused before reading
    with pytest.raises(CheckpointError, match="model.safetensors is 300.0 MB, over the 200 MB limit"):
        import_checkpoint_zip(huge, "huge.zip", tmp_path / "models")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    "names",
    [
        ["config.json", "config.json"],
        ["a/config.json", "b/config.json"],
        ["model.safetensors", "tiny/model.safetensors"],
    ],
)
def test_duplicate_names_are_refused(files, tmp_path, names):
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, and writes it
        for name, data in files.items():
            if name not in {n.rsplit("/", 1)[-1] for n in names}:
                archive.writestr(name, data)
        for name in names:
            archive.writestr(name, files[name.rsplit("/", 1)[-1]])
    duplicate = names[0].rsplit("/", 1)[-1]
    with pytest.raises(CheckpointError, match=f"twice.zip holds {duplicate} twice; zip a single checkpoint folder."):
        import_checkpoint_zip(buffer.getvalue(), "twice.zip", tmp_path / "models")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "..\\..\\evil.json",
        "\\evil.json",
        "tiny\\..\\..\\config.json",
        "C:evil.json",
        "C:\\Windows\\config.json",
        "c:/x/config.json",
        "\\\\server\\share\\config.json",
    ],
)
def test_backslash_and_drive_letter_names_are_refused(files, tmp_path, name):
    with pytest.raises(CheckpointError, match="unsafe path"):
        import_checkpoint_zip(zip_of({**files, name: b"{}"}), "windows.zip", tmp_path / "models")
    assert nothing_written(tmp_path)


def test_a_windows_zip_with_backslash_folders_is_imported(files, tmp_path):
    folder = import_checkpoint_zip(zip_of({f"tiny\\{k}": v for k, v in files.items()}), "win.zip", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)


def test_hidden_files_and_mac_folders_are_skipped_wherever_they_come(files, tmp_path):
    junk = {
        "__MACOSX/tiny/._config.json": b"\x00\x05\x16\x07",
        "__MACOSX/notes.txt": b"resource fork",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "tiny/.hidden": b"x",
    }
    folder = import_checkpoint_zip(zip_of({**junk, **{f"tiny/{k}": v for k, v in files.items()}}), "mac.zip", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)


def test_the_refusal_names_the_allowed_files(files, tmp_path):
    with pytest.raises(CheckpointError) as refused:
        import_checkpoint_zip(zip_of({**files, "notes.txt": b"hi"}), "extra.zip", tmp_path)
    assert str(refused.value) == (
        "extra.zip holds 'notes.txt', which is not a checkpoint file; a checkpoint zip holds only "
        "config.json, history.json, metrics.json, model.safetensors (and epochs.safetensors), or an imported pair's "
        "onnx_encoder.onnx, "
        "onnx_decoder.onnx, onnx.json (nothing pickled)."
    )


def test_sizes_at_the_limits(files, tmp_path):
    # A member exactly at its size limit is taken (and, at 1 MB, not judged by its compression ratio);
    # one byte more is refused. A large member that barely compresses is taken whatever its size.
    config = files["config.json"]
    padded = config + b" " * (2**20 - len(config))  # valid JSON, exactly 1 MB, compresses about 1,000-fold
    folder = import_checkpoint_zip(zip_of({**files, "config.json": padded}), "at-limit.zip", tmp_path / "a")
    assert (folder / "config.json").stat().st_size == 2**20
    with pytest.raises(CheckpointError) as refused:
        import_checkpoint_zip(zip_of({**files, "config.json": padded + b" "}), "over.zip", tmp_path / "b")
    assert str(refused.value) == (
        "over.zip: config.json is 1.1 MB, over the 1 MB limit for uploads; copy a checkpoint that "
        "large into the server's runs folder instead."
    )
    rng = __import__("random").Random(0)
    keys = ("train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl")
    history = (
        "["
        + ", ".join(
            "{" + f'"epoch": {i + 1}, ' + ", ".join(f'"{k}": {rng.random()!r}' for k in keys) + "}"
            for i in range(20_000)
        )
        + "]"
    ).encode()
    assert len(history) > 2 * 2**20
    folder = import_checkpoint_zip(zip_of({**files, "history.json": history}), "long.zip", tmp_path / "c")
    assert len(load_checkpoint(folder).history) == 20_000
    small_but_squeezable = config + b" " * 400_000  # under 1 MB: not a bomb whatever its ratio
    import_checkpoint_zip(zip_of({**files, "config.json": small_but_squeezable}), "squeezable.zip", tmp_path / "d")


@pytest.mark.parametrize("megabytes", [1.5, 20])
def test_bombs_of_every_size_above_a_megabyte_are_refused(files, tmp_path, megabytes):
    bomb = zip_of({**files, "model.safetensors": b"\x00" * int(megabytes * 2**20)})
    with pytest.raises(CheckpointError, match="like a zip bomb"):
        import_checkpoint_zip(bomb, "bomb.zip", tmp_path)
    assert nothing_written(tmp_path)


def test_an_import_into_a_new_nested_folder_after_a_killed_one(files, tmp_path):
    target = tmp_path / "a" / "b"
    stale = target / ".model.uploading"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")  # what an import killed half-way leaves
    folder = import_checkpoint_zip(zip_of(files), "model.zip", target)
    assert folder == target / "model" and not stale.exists()
    assert import_checkpoint_zip(zip_of(files), "other.zip", tmp_path / "x" / "y" / "z").is_dir()


def test_names_keep_capitals_and_letters_near_the_edges():
    assert sanitize_name("MyModel v2") == "MyModel-v2"
    assert sanitize_name("X-ray_X") == "X-ray_X"
