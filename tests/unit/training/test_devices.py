"""Devices and the options behind config keys: torch.compile on the CPU here, and on a GPU where
there is one (the GPU tests skip elsewhere; a skip is not a pass)."""

import dataclasses

import pytest
import torch
from conftest import TINY_TRAIN, two_epochs

from vae_explorer import ConfigError, TrainingError, build_model, load_checkpoint, save_checkpoint, train
from vae_explorer.config import TrainConfig

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights(tiny_run, tiny_data, tmp_path):
    _, config, _ = tiny_run
    train_config = dataclasses.replace(TINY_TRAIN, epochs=1)
    eager = train(build_model(config.model, seed=0), tiny_data, train_config)
    model = build_model(config.model, seed=0)
    compiled = train(model, tiny_data, dataclasses.replace(train_config, compile=True))
    assert compiled[-1]["test_loss"] == pytest.approx(eager[-1]["test_loss"], rel=1e-4)
    assert not any("_orig_mod" in key for key in model.state_dict())  # the checkpoint does not change shape
    save_checkpoint(tmp_path / "compiled", model, config, compiled)
    assert load_checkpoint(tmp_path / "compiled").history == compiled


@needs_cuda
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_on_the_gpu(tiny_run, tiny_data, precision):
    _, config, _ = tiny_run
    cpu = train(build_model(config.model, seed=0), tiny_data, dataclasses.replace(TINY_TRAIN, epochs=2))
    model = build_model(config.model, seed=0)
    gpu = train(model, tiny_data, dataclasses.replace(TINY_TRAIN, epochs=2, device="cuda", precision=precision))
    assert next(model.parameters()).device.type == "cuda"
    assert gpu[-1]["test_loss"] == pytest.approx(cpu[-1]["test_loss"], rel=0.05)


@needs_cuda
def test_resume_on_the_gpu_is_four_straight_epochs(tiny_run, tiny_data):
    _, config, _ = tiny_run
    train_config = dataclasses.replace(TINY_TRAIN, epochs=4, device="cuda")
    whole = train(build_model(config.model, seed=0), tiny_data, train_config)
    model = build_model(config.model, seed=0)
    part, state = two_epochs(model, tiny_data, train_config)
    rest = train(model, tiny_data, train_config, resume=state)
    assert [r["test_loss"] for r in part + rest] == pytest.approx([r["test_loss"] for r in whole], rel=1e-5)


@needs_cuda
@pytest.mark.slow
def test_compiled_training_on_the_gpu(tiny_run, tiny_data):
    _, config, _ = tiny_run
    history = train(
        build_model(config.model, seed=0),
        tiny_data,
        dataclasses.replace(TINY_TRAIN, epochs=1, device="cuda", compile=True, precision="bfloat16"),
    )
    assert history[-1]["test_loss"] > 0


@needs_cuda
@pytest.mark.parametrize("name", ["digits-mlp", "digits-vamp", "digits-two-level", "shapes-betavae"])
def test_the_same_seed_gives_the_same_figures_on_the_gpu(name):
    """Evaluation, prior samples and samples of q(z|x) draw their noise on the CPU, so a metric does
    not depend on the device it ran on (the GPU's arithmetic differs from the CPU's only in rounding)."""
    from vae_explorer import load_dataset
    from vae_explorer.evaluation import evaluate, find_classifier
    from vae_explorer.evaluation.fid import load_classifier
    from vae_explorer.latent import encode_image, generate, sample_prior

    cpu, gpu = load_checkpoint(name), load_checkpoint(name, device="cuda")
    data = load_dataset(cpu.config.data)
    z = torch.randn(16, cpu.model.latent_dim, generator=torch.Generator().manual_seed(0))
    pictures = {
        "decoded": (generate(gpu.model, z), generate(cpu.model, z)),
        "prior samples": (sample_prior(gpu.model, 16, seed=3), sample_prior(cpu.model, 16, seed=3)),
        "samples of q(z|x)": (
            encode_image(gpu.model, data.test_x[0]).samples,
            encode_image(cpu.model, data.test_x[0]).samples,
        ),
    }
    classifier, _ = load_classifier(find_classifier(cpu.config.data))
    on_cpu, on_gpu = (evaluate(c.model, data, k=20, classifier=classifier) for c in (cpu, gpu))
    keys = ("neg_elbo", "recon", "kl", "iwae_nll", "elbo_iwae_gap", "fid")
    print(
        name,
        {what: float((a.cpu() - b).abs().max()) for what, (a, b) in pictures.items()},
        {key: (on_cpu[key], on_gpu[key]) for key in keys},
    )
    # convolutions on the GPU run in TF32 by default (cuDNN), a rounding of about 1e-3: within one grey level
    for what, (a, b) in pictures.items():
        assert torch.allclose(a.cpu(), b, atol=1 / 255), what
    for key in keys:
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-3, abs=1e-3), key
    assert on_gpu["kl_per_dim"] == pytest.approx(on_cpu["kl_per_dim"], abs=1e-3)
    assert on_gpu["active_units"] == on_cpu["active_units"]


# --- train.capture: the whole step recorded as a CUDA graph -------------------------------------------

CAPTURED = TrainConfig(epochs=3, batch_size=48, lr=3e-3, seed=5, device="cpu", lr_schedule="cosine", warmup_epochs=2)
# 256 training images: five batches of 48 and a last one of 16, run as it comes; beta and lr change every step


@pytest.fixture
def unrecorded(monkeypatch):
    """train.capture on the CPU: the recorded step's fixed tensors, tensor learning rate and beta, run
    without recording (CUDA graphs need a GPU), so the CPU checks everything but the recording."""
    from vae_explorer.training import loop

    monkeypatch.setattr(loop, "check_capture", lambda config, device: None)


def _weights(model) -> dict:
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("conditional", [False, True])
def test_the_fixed_tensors_of_a_captured_step_train_as_the_plain_step_to_the_last_bit(
    tiny_run, tiny_data, unrecorded, conditional
):
    _, config, _ = tiny_run
    model_config = dataclasses.replace(config.model, conditional=conditional)
    plain, captured = build_model(model_config, seed=0), build_model(model_config, seed=0)
    steps = []
    expected = train(plain, tiny_data, CAPTURED)
    got = train(
        captured,
        tiny_data,
        dataclasses.replace(CAPTURED, capture=True),
        [lambda e: steps.append(e.loss) if e.kind == "step" else None],
    )
    for key in ("train_loss", "train_recon", "train_kl", "test_loss", "lr", "beta"):
        assert [r[key] for r in got] == [r[key] for r in expected], key
    assert len(steps) == 3 * 6 and len(set(steps)) == len(steps)  # each step's own loss, not the last one's
    for (name, a), b in zip(_weights(plain).items(), _weights(captured).values()):
        assert torch.equal(a, b), name


def test_a_resume_crosses_between_the_captured_and_the_plain_step(tiny_run, tiny_data, unrecorded):
    _, config, _ = tiny_run
    whole_model = build_model(config.model, seed=0)
    whole = train(whole_model, tiny_data, CAPTURED)
    first = build_model(config.model, seed=0)
    part, state = two_epochs(first, tiny_data, dataclasses.replace(CAPTURED, capture=True))
    assert all(type(group["lr"]) is float for group in state.optimizer["param_groups"])  # saved as a number
    rest = train(first, tiny_data, CAPTURED, resume=state)
    assert [r["test_loss"] for r in part + rest] == [r["test_loss"] for r in whole]
    for (name, a), b in zip(_weights(whole_model).items(), _weights(first).values()):
        assert torch.equal(a, b), name


def test_a_non_finite_loss_in_a_captured_step_stops_as_in_a_plain_one(tiny_run, tiny_data, unrecorded):
    _, config, _ = tiny_run

    def poison(event):
        if event.kind == "step" and event.epoch == 2 and event.step == 9:
            with torch.no_grad():
                next(event.model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step 4.*restored to the end of epoch 1"):
        train(build_model(config.model, seed=0), tiny_data, dataclasses.replace(CAPTURED, capture=True), [poison])


def test_capture_where_it_cannot_run_is_one_sentence(tiny_run, tiny_data, monkeypatch):
    from vae_explorer.training import distributed

    _, config, _ = tiny_run
    model = build_model(config.model, seed=0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^train.capture records the training step as a CUDA graph, and the "):
            train(model, tiny_data, dataclasses.replace(CAPTURED, capture=True))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with pytest.raises(ConfigError, match=r"capture and train.compile cannot be combined"):
        train(model, tiny_data, dataclasses.replace(CAPTURED, capture=True, compile=True, device=device))
    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    with pytest.raises(ConfigError, match=r"works in one process; leave train.capture off under torchrun"):
        from vae_explorer.training import loop

        monkeypatch.setattr(loop, "check_capture", lambda config, device: None)
        train(model, tiny_data, dataclasses.replace(CAPTURED, capture=True))


def test_the_cli_says_capture_needs_a_cuda_gpu(tmp_path):
    import subprocess
    import sys

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = subprocess.run(
        [sys.executable, "-m", "vae_explorer", "train", "--dataset", "digits", "--epochs", "1", "--capture"]
        + ["--out", str(tmp_path / "run"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "train.capture records the training step as a CUDA graph, and the device here is cpu" in result.stderr


def _count_replays(monkeypatch) -> list:
    replays = []
    replay = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda graph: replays.append(1) or replay(graph))
    return replays


@needs_cuda
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_step_recorded_as_a_cuda_graph_trains_as_the_plain_step(
    tiny_run, tiny_data, monkeypatch, conditional, precision
):
    from vae_explorer.training.step import WARMUP_STEPS

    _, config, _ = tiny_run
    model_config = dataclasses.replace(config.model, conditional=conditional)
    gpu = dataclasses.replace(CAPTURED, device="cuda", precision=precision)
    plain = train(build_model(model_config, seed=0), tiny_data, gpu)
    replays = _count_replays(monkeypatch)
    model = build_model(model_config, seed=0)
    captured = train(model, tiny_data, dataclasses.replace(gpu, capture=True))
    assert len(replays) == 3 * 5 - WARMUP_STEPS  # every full batch after the warm-up, the partial ones as they come
    assert [r["test_loss"] for r in captured] == pytest.approx([r["test_loss"] for r in plain], rel=1e-3)
    assert [r["train_loss"] for r in captured] == pytest.approx([r["train_loss"] for r in plain], rel=1e-3)


@needs_cuda
def test_a_captured_run_resumed_is_the_straight_captured_run(tiny_run, tiny_data):
    _, config, _ = tiny_run
    gpu = dataclasses.replace(CAPTURED, device="cuda", capture=True, epochs=4)
    whole = train(build_model(config.model, seed=0), tiny_data, gpu)
    model = build_model(config.model, seed=0)
    part, state = two_epochs(model, tiny_data, gpu)
    rest = train(model, tiny_data, gpu, resume=state)
    assert [r["test_loss"] for r in part + rest] == pytest.approx([r["test_loss"] for r in whole], rel=1e-5)


# --- train.memory_format: convolutions channels-last --------------------------------------------------


def _conv_config(tiny_run):
    _, config, _ = tiny_run
    return dataclasses.replace(config, model=dataclasses.replace(config.model, architecture="conv", channels=[8, 16]))


def test_a_conv_model_trains_channels_last_and_comes_back_as_it_went_in(tiny_run, tiny_data):
    from vae_explorer.training import loop

    config = _conv_config(tiny_run)
    train_config = dataclasses.replace(CAPTURED, epochs=2)
    model = build_model(config.model, seed=0)
    cpu = torch.device("cpu")
    assert loop.channels_last(train_config, model, cpu) and not loop.channels_last(train_config, tiny_run[0], cpu)
    seen = []

    def look(event):
        if event.kind == "step":
            seen.append(
                next(p for p in event.model.parameters() if p.dim() == 4).is_contiguous(
                    memory_format=torch.channels_last
                )
            )

    laid = train(model, tiny_data, train_config, [look])
    assert seen and all(seen)  # trained channels-last
    assert all(p.is_contiguous() for p in model.parameters())  # handed back in channel planes
    planes = train(
        build_model(config.model, seed=0), tiny_data, dataclasses.replace(train_config, memory_format="contiguous")
    )
    # other convolution kernels, the same sums up to rounding
    assert [r["test_loss"] for r in laid] == pytest.approx([r["test_loss"] for r in planes], rel=1e-4)


@pytest.mark.parametrize(
    "asked, device, conv, expected",
    [
        ("auto", "cpu", True, True),
        ("auto", "cuda", True, True),
        ("auto", "mps", True, False),  # torch's channels-last convolution backward ran ~30x slower there
        ("auto", "cpu", False, False),  # nothing to lay out
        ("channels_last", "mps", True, True),  # asked for: the user's call
        ("contiguous", "cuda", True, False),
    ],
)
def test_auto_lays_out_channels_last_for_convolutions_on_a_cpu_or_cuda_only(tiny_run, asked, device, conv, expected):
    from vae_explorer.training import loop

    model = build_model(_conv_config(tiny_run).model, seed=0) if conv else tiny_run[0]
    config = dataclasses.replace(CAPTURED, memory_format=asked)
    assert loop.channels_last(config, model, torch.device(device)) is expected


@pytest.mark.parametrize("then", ["auto", "contiguous"])
def test_a_channels_last_run_resumed_from_its_checkpoint_is_the_straight_run(tiny_run, tiny_data, tmp_path, then):
    """The checkpoint holds Adam's moments in channel planes; a channels-last weight must get them
    channels-last again (the fused kernel walks both as flat memory), or the resumed run goes astray."""
    from vae_explorer import load_training_state

    config = _conv_config(tiny_run)
    train_config = dataclasses.replace(CAPTURED, epochs=4, memory_format=then)
    whole_model = build_model(config.model, seed=0)
    whole = train(whole_model, tiny_data, train_config)
    model = build_model(config.model, seed=0)
    part, state = two_epochs(model, tiny_data, dataclasses.replace(train_config, memory_format="auto"))
    save_checkpoint(tmp_path / "run", model, config, part, state=state)
    loaded = load_checkpoint(tmp_path / "run")
    rest = train(loaded.model, tiny_data, train_config, resume=load_training_state(tmp_path / "run", loaded.model))
    if then == "auto":  # the same kernels all along: the same run to the last bit
        assert [r["test_loss"] for r in part + rest] == [r["test_loss"] for r in whole]
        for (name, a), b in zip(_weights(whole_model).items(), _weights(loaded.model).values()):
            assert torch.equal(a, b), name
    else:
        assert [r["test_loss"] for r in part + rest] == pytest.approx([r["test_loss"] for r in whole], rel=1e-4)
