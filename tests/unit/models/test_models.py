import math

import pytest
import torch

from vae_explorer.config import ModelConfig
from vae_explorer.errors import ConfigError
from vae_explorer.models import ARCHITECTURES, build_model, register_architecture
from vae_explorer.models.losses import gaussian_kl, vae_loss

SHAPES = [[1, 8, 8], [1, 28, 28], [1, 32, 32], [3, 32, 32], [3, 64, 64], [1, 64, 64]]


def tiny(architecture="mlp", shape=(1, 8, 8), **kw):
    base = dict(
        architecture=architecture,
        latent_dim=3,
        hidden_sizes=[16],
        channels=[4, 8],
        image_shape=list(shape),
        num_classes=10,
    )
    base.update(kw)
    return build_model(ModelConfig(**base))


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_every_variant_has_the_right_shapes(architecture, shape, likelihood):
    torch.manual_seed(0)
    model = tiny(architecture, shape, likelihood=likelihood)
    x = torch.rand(5, *shape)
    params, q, z = model(x)
    assert params.shape == x.shape
    assert q.mean.shape == q.logvar.shape == z.shape == (5, 3)
    parts = model.loss(x)
    for part in parts:
        assert part.shape == (5,) and torch.isfinite(part).all()
    assert (parts.kl >= 0).all()
    images = model.generate(torch.randn(4, 3))
    assert images.shape == (4, *shape) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_conditional_model_uses_the_label(architecture):
    torch.manual_seed(0)
    model = tiny(architecture, (1, 28, 28), conditional=True)
    z = torch.randn(1, 3)
    a, b = model.generate(z, torch.tensor([1])), model.generate(z, torch.tensor([7]))
    assert a.shape == (1, 1, 28, 28) and not torch.allclose(a, b)
    assert model.generate(z.repeat(2, 1), torch.tensor(4)).shape == (2, 1, 28, 28)  # one label for a batch
    with pytest.raises(ValueError, match="labels"):
        model.encode(torch.rand(1, 1, 28, 28))


def test_mlp_matches_pytorch_examples_layer_sizes():
    model = tiny("mlp", (1, 28, 28), latent_dim=20, hidden_sizes=[400])
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sizes = sorted((m.in_features, m.out_features) for m in linears)
    # fc1 784-400, fc21+fc22 as one 400-40 head, fc3 20-400, fc4 400-784
    assert sizes == sorted([(784, 400), (400, 40), (20, 400), (400, 784)])
    assert model.num_parameters() == 784 * 400 + 400 + 400 * 40 + 40 + 20 * 400 + 400 + 400 * 784 + 784


def test_analytic_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.3, -0.7, 0.1]])
    analytic = gaussian_kl(mu, logvar).sum()
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert float(analytic) == pytest.approx(float(monte_carlo), abs=0.02)
    assert float(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).sum()) == 0.0


def test_loss_parts_and_beta():
    x = torch.rand(2, 1, 4, 4)
    logits, mu, logvar = torch.randn(2, 1, 4, 4), torch.randn(2, 3), torch.randn(2, 3)
    plain, heavy = vae_loss(x, logits, mu, logvar, "bernoulli", 1.0), vae_loss(x, logits, mu, logvar, "bernoulli", 4.0)
    assert torch.allclose(plain.total, plain.recon + plain.kl)
    assert torch.allclose(heavy.total, heavy.recon + 4 * heavy.kl)
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(plain.recon, expected, atol=1e-4)  # nats per image, summed over pixels


def test_gaussian_nll_is_the_normal_density():
    x, mean = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    parts = vae_loss(x, mean, torch.zeros(2, 1), torch.zeros(2, 1), "gaussian", log_sigma=torch.tensor([math.log(0.2)]))
    expected = -torch.distributions.Normal(mean, 0.2).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(parts.recon, expected, atol=1e-4)


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_one_step_lowers_the_loss(architecture):
    torch.manual_seed(0)
    model = tiny(architecture, (1, 8, 8))
    x = torch.rand(16, 1, 8, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def generator():  # the same eps before and after
        return torch.Generator().manual_seed(1)

    before = model.loss(x, generator=generator()).total.mean()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    after = model.loss(x, generator=generator()).total.mean()
    assert after.item() < before.item()


def test_learned_sigma_is_a_parameter_and_fixed_is_not_saved():
    learned, fixed = tiny(likelihood="gaussian-learned"), tiny(likelihood="gaussian")
    assert "log_sigma" in dict(learned.named_parameters())
    assert "log_sigma" not in fixed.state_dict()


def test_registry_rejects_unknown_and_duplicate_names():
    with pytest.raises(ConfigError, match="unknown; use one of mlp, conv"):
        tiny("transformer")
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("mlp")(lambda config, cond: None)
    assert set(ARCHITECTURES) >= {"mlp", "conv"}


def test_too_many_conv_layers_is_a_config_error():
    with pytest.raises(ConfigError, match="model.channels has 4 stride-2 layers, too many for 8x8"):
        tiny("conv", (1, 8, 8), channels=[4, 4, 4, 4])


def test_reconstruct_is_deterministic():
    model = tiny()
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(model.reconstruct(x), model.reconstruct(x))


def test_reparameterized_samples_have_the_posterior_mean_and_spread():
    from vae_explorer.models import VAE, Posterior

    mu = torch.tensor([[0.5, -2.0, 3.0, 0.0]])
    logvar = torch.tensor([[0.0, 2.0, -3.0, 1.0]])  # sigma = 1, e, e^-1.5, e^0.5
    sigma = torch.tensor([1.0, math.e, math.exp(-1.5), math.exp(0.5)])
    n = 200_000
    for z in (
        VAE.reparameterize(mu.expand(n, 4), logvar.expand(n, 4), torch.Generator().manual_seed(0)),
        Posterior(mu.expand(n, 4), logvar.expand(n, 4)).sample(torch.Generator().manual_seed(1)),
    ):
        assert torch.allclose(z.mean(0), mu[0], atol=4 * float(sigma.max()) / math.sqrt(n))
        assert torch.allclose(z.std(0), sigma, rtol=0.01)
    q = Posterior(mu, logvar)
    assert torch.allclose(q.stddev, logvar.exp().sqrt())
    assert torch.allclose(q.kl_per_dim(), 0.5 * (mu**2 + sigma**2 - 1 - logvar)) and torch.allclose(
        q.kl(), q.kl_per_dim().sum(1)
    )
    z = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    assert torch.allclose(q.log_prob(z), torch.distributions.Normal(mu, sigma).log_prob(z).sum(1))


def test_reparameterization_is_differentiable_in_mu_and_sigma():
    from vae_explorer.models import VAE

    mu, logvar = torch.tensor([[1.0, -1.0]], requires_grad=True), torch.tensor([[0.4, -0.6]], requires_grad=True)
    z = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    eps = (z - mu) / torch.exp(0.5 * logvar)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1, 2))  # dz/dmu = 1
    assert torch.allclose(logvar.grad, (0.5 * eps * torch.exp(0.5 * logvar)).detach())  # dz/dlogvar = eps sigma / 2


def test_encode_decode_and_reconstruct_are_the_layers_in_order():
    model = tiny("mlp", (1, 8, 8), likelihood="bernoulli")
    x = torch.rand(3, 1, 8, 8)
    stats = model.to_latent(model.encoder(x))
    q = model.encode(x)
    assert torch.equal(q.mean, stats[:, :3]) and torch.equal(q.logvar, stats[:, 3:])
    z = torch.tensor([[0.3, -1.2, 2.0]])
    assert torch.equal(model.decode(z), model.decoder(z))
    assert torch.allclose(model.generate(z), torch.sigmoid(model.decoder(z)))
    assert torch.allclose(model.reconstruct(x), torch.sigmoid(model.decoder(stats[:, :3])))
    gaussian = tiny("mlp", (1, 8, 8), likelihood="gaussian")
    assert torch.allclose(gaussian.generate(z), gaussian.decoder(z).clamp(0, 1))


def test_a_conditional_model_appends_the_one_hot_class():
    model = tiny("mlp", (1, 8, 8), conditional=True, num_classes=4)
    z = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]])
    y = torch.tensor([2, 0])
    one_hot = torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]])
    assert torch.equal(model.decode(z, y), model.decoder(torch.cat([z, one_hot], 1)))
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(model.encode(x, y).mean, model.to_latent(torch.cat([model.encoder(x), one_hot], 1))[:, :3])


def test_a_registered_architecture_is_built_and_deeper_mlps_keep_every_layer():
    from vae_explorer.models.architectures import mlp

    register_architecture("test-mlp-copy")(mlp)
    try:
        model = tiny("test-mlp-copy", hidden_sizes=[16, 8])
        assert model.num_parameters() == tiny("mlp", hidden_sizes=[16, 8]).num_parameters()
    finally:
        del ARCHITECTURES["test-mlp-copy"]
    linears = [m for m in tiny("mlp", hidden_sizes=[16, 8]).encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 16), (16, 8)]


def test_kl_is_per_image_and_bernoulli_has_no_sigma():
    from vae_explorer.models import Posterior

    q = Posterior(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2, 2))
    assert q.kl().tolist() == pytest.approx([0.5, 2.0])
    assert tiny(likelihood="bernoulli").sigma_log() is None
    assert float(tiny(likelihood="gaussian", gaussian_sigma=0.5).sigma_log()) == pytest.approx(math.log(0.5))


def test_a_conditional_model_uses_its_labels_everywhere():
    model = tiny("mlp", (1, 8, 8), conditional=True, num_classes=4)
    x = torch.rand(3, 1, 8, 8)
    y, other = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 3])
    q = model.encode(x, torch.tensor(2))  # one label for the whole batch
    assert torch.equal(q.mean, model.encode(x, torch.tensor([2, 2, 2])).mean)
    torch.manual_seed(0)
    params, _, z = model(x, y)
    assert torch.equal(params, model.decode(z, y)) and not torch.equal(params, model.decode(z, other))
    a = model.loss(x, y, generator=torch.Generator().manual_seed(1))
    b = model.loss(x, other, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a.recon, b.recon) and not torch.allclose(a.kl, b.kl)
    with pytest.raises(ValueError, match="^this conditional model needs class labels y$"):
        model.decode(z)


def test_fit_to_data_and_incomplete_configs():
    from vae_explorer.models import fit_to_data

    fitted = fit_to_data(ModelConfig(), (1, 8, 8), ["a", "b", "c"])
    assert fitted.image_shape == [1, 8, 8] and fitted.num_classes == 3 and fitted.class_names == ["a", "b", "c"]
    with pytest.raises(
        ConfigError,
        match=r"^model.image_shape must be \[channels, height, width\]; it is set from the "
        r"dataset when training.$",
    ):
        build_model(ModelConfig())
    with pytest.raises(ConfigError, match="^model.image_shape must be"):
        build_model(ModelConfig(image_shape=[8, 8]))
    with pytest.raises(
        ConfigError, match="^model.conditional needs model.num_classes; it is set from the dataset when training.$"
    ):
        build_model(ModelConfig(image_shape=[1, 8, 8], conditional=True))


def test_vae_loss_is_the_plain_elbo_by_default():
    x, logits = torch.rand(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    mu, logvar = torch.randn(2, 3), torch.randn(2, 3)
    parts = vae_loss(x, logits, mu, logvar, "bernoulli")
    assert torch.allclose(parts.total, parts.recon + parts.kl)


def test_under_autocast_the_posterior_and_the_loss_stay_in_float32():
    from vae_explorer.models.losses import full_precision

    assert full_precision(torch.zeros(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert full_precision(torch.zeros(2, dtype=torch.float16)).dtype == torch.float32
    assert full_precision(torch.zeros(2, dtype=torch.float64)).dtype == torch.float64
    model = tiny("mlp", (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = model.encode(x)
        parts = model.loss(x, generator=torch.Generator().manual_seed(0))
        assert model.decode(q.mean).dtype == torch.bfloat16  # the layers do run in bfloat16
    assert q.mean.dtype == q.logvar.dtype == torch.float32
    assert parts.recon.dtype == parts.kl.dtype == parts.total.dtype == torch.float32


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(architecture="mlp", latent_dim=8, hidden_sizes=[256, 128], image_shape=[1, 8, 8], num_classes=10),
        ModelConfig(
            architecture="conv",
            latent_dim=16,
            channels=[32, 64, 64],
            hidden_sizes=[256],
            image_shape=[1, 28, 28],
            num_classes=10,
        ),
        ModelConfig(
            architecture="conv",
            latent_dim=4,
            channels=[8, 16],
            hidden_sizes=[32],
            image_shape=[3, 13, 17],
            num_classes=3,
        ),
        ModelConfig(
            architecture="mlp", latent_dim=5, hidden_sizes=[64], image_shape=[1, 8, 8], num_classes=10, conditional=True
        ),
        ModelConfig(
            architecture="mlp",
            latent_dim=4,
            hidden_sizes=[32],
            image_shape=[1, 8, 8],
            num_classes=10,
            prior="vamp",
            pseudo_inputs=7,
        ),
        ModelConfig(
            architecture="mlp", latent_dim=4, hidden_sizes=[32], image_shape=[1, 8, 8], num_classes=10, top_latent_dim=2
        ),
        ModelConfig(
            architecture="spatial",
            latent_dim=4,
            channels=[8, 16],
            image_shape=[3, 16, 24],
            likelihood="gaussian-learned",
        ),
    ],
    ids=["mlp", "conv", "conv, odd sides, RGB", "conditional", "vamp", "two levels", "spatial"],
)
def test_a_model_s_size_is_known_from_its_config_before_it_is_built(config):
    """model_size (built on the meta device, values from each layer's settings) against the model
    itself: its parameters, and the size of every layer's output for one image, by forward hooks."""
    from vae_explorer.models.vae import model_size

    model, values = build_model(config, seed=0), []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda module, inputs, out: values.append(out[0].numel())) for m in leaves]
    with torch.no_grad():
        y = torch.zeros(1, dtype=torch.long) if model.cond_dim else None
        model.decode(model.encode(torch.zeros(1, *config.image_shape), y).mean, y)
    for hook in hooks:
        hook.remove()
    assert model_size(config) == (model.num_parameters(), sum(values))


def test_a_model_too_large_is_refused_before_it_is_built():
    with pytest.raises(
        ConfigError, match=r"this model would have 1,489,634,080 parameters \(5.5 GB\), more than the 50,000,000"
    ):
        build_model(ModelConfig(hidden_sizes=[8192] * 12, image_shape=[1, 28, 28], num_classes=10))
    with pytest.raises(ConfigError, match=r"this model would compute [\d,]+ values per image"):
        build_model(
            ModelConfig(
                architecture="conv",
                channels=[64, 1],
                hidden_sizes=[1],
                latent_dim=1,
                image_shape=[1, 1024, 1024],
                num_classes=10,
            )
        )  # few weights, but 64 x 512 x 512 values after the first convolution alone


def test_the_size_of_a_registered_architecture_with_other_layers_is_found_by_running_it_on_the_meta_device():
    from torch import nn

    from vae_explorer.models.vae import model_size

    @register_architecture("test-batchnorm-mlp")
    def batchnorm_mlp(config, cond_dim):
        c, h, w = config.image_shape
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 32), nn.BatchNorm1d(32), nn.ReLU())
        decoder = nn.Sequential(
            nn.Linear(config.latent_dim + cond_dim, 32), nn.ReLU(), nn.Linear(32, c * h * w), nn.Unflatten(1, (c, h, w))
        )
        return encoder, 32, decoder

    try:
        config = ModelConfig(architecture="test-batchnorm-mlp", latent_dim=3, image_shape=[1, 8, 8], num_classes=10)
        model = build_model(config, seed=0)
        # by hand: flatten 64, linear 32, batch norm 32, relu 32; head 6; linear 32, relu 32, linear 64, unflatten 64
        assert model_size(config) == (model.num_parameters(), 64 + 32 + 32 + 32 + 6 + 32 + 32 + 64 + 64)
    finally:
        ARCHITECTURES.pop("test-batchnorm-mlp")
