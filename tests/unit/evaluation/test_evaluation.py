import math

import pytest
import torch

from vae_explorer.evaluation import active_units, evaluate, iwae_log_likelihood
from vae_explorer.latent import interpolate, manifold_grid, normal_quantiles, sample_prior, traverse


@pytest.fixture(scope="module")
def metrics(tiny_run, tiny_data):
    model, _, _ = tiny_run
    return evaluate(model, tiny_data, k=20)


def test_metrics_keys_and_consistency(metrics, tiny_run):
    assert {"neg_elbo", "recon", "kl", "kl_per_dim", "active_units", "iwae_nll", "iwae_k"} <= set(metrics)
    assert metrics["neg_elbo"] == pytest.approx(metrics["recon"] + metrics["kl"])
    assert len(metrics["kl_per_dim"]) == 2 and min(metrics["kl_per_dim"]) >= 0
    assert sum(metrics["kl_per_dim"]) == pytest.approx(metrics["kl"], rel=1e-4)  # analytic KL is exact per image
    assert metrics["iwae_k"] == 20 and 0 <= metrics["active_units"] <= 2


def test_iwae_bound_is_tighter_than_the_elbo(metrics):
    # -L_k <= -L_1: the importance-weighted bound on -log p(x) sits below the negative ELBO.
    assert metrics["iwae_nll"] <= metrics["neg_elbo"] + 0.05


def test_iwae_tightens_with_k(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x
    bound = {
        k: float(iwae_log_likelihood(model, x, k=k, generator=torch.Generator().manual_seed(0)).mean())
        for k in (1, 10, 200)
    }
    assert bound[1] < bound[10] < bound[200]


def test_evaluation_is_repeatable(tiny_run, tiny_data, metrics):
    model, _, _ = tiny_run
    again = evaluate(model, tiny_data, k=20)
    assert again["neg_elbo"] == metrics["neg_elbo"] and again["iwae_nll"] == metrics["iwae_nll"]


def test_active_units_on_a_constructed_case():
    torch.manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500)  # variance 1: active
    mu[:, 1] = 0.5 * torch.randn(500)  # variance 0.25: active
    mu[:, 2] = 0.05 * torch.randn(500)  # variance 0.0025: collapsed
    assert active_units(mu) == 2


def test_latent_helpers(tiny_run):
    model, _, _ = tiny_run
    assert sample_prior(model, 5).shape == (5, 1, 8, 8)
    assert manifold_grid(model, 3).shape == (9, 1, 8, 8)
    q = normal_quantiles(3)
    assert float(q[1]) == pytest.approx(0.0, abs=1e-6) and float(q[2]) == pytest.approx(1.6449, abs=1e-3)
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    line, arc = interpolate(z0, z1, 5, "linear"), interpolate(z0, z1, 5, "slerp")
    assert torch.allclose(line[0], z0) and torch.allclose(line[-1], z1) and torch.allclose(arc[-1], z1, atol=1e-5)
    assert float(arc[2].norm()) > float(line[2].norm())  # slerp keeps away from the origin
    grid = traverse(model, [0, 1], 4)
    assert grid.shape == (8, 1, 8, 8)


def test_shapes_models_get_disentanglement_metrics():
    from vae_explorer import DataConfig, ModelConfig, build_model, fit_to_data, load_dataset

    data = load_dataset(DataConfig(dataset="shapes", max_train=32, max_test=400))
    model = build_model(
        fit_to_data(
            ModelConfig(architecture="conv", latent_dim=3, channels=[4, 4], hidden_sizes=[8]),
            data.image_shape,
            data.class_names,
        ),
        seed=0,
    )
    metrics = evaluate(model, data, k=2)
    assert 0.0 <= metrics["mig"] <= 1.0 and 0.0 <= metrics["factor_vae_score"] <= 1.0
    assert set(metrics["mig_per_factor"]) == {"shape", "scale", "rotation", "pos_x", "pos_y"}


def test_iwae_gap_is_never_negative_and_zero_for_one_sample(tiny_run, tiny_data):
    from vae_explorer.evaluation import evaluate_with_gaps, first_test_images

    model, _, _ = tiny_run
    data = first_test_images(tiny_data, 32)
    metrics, gaps = evaluate_with_gaps(model, data, k=50)
    assert gaps.shape == (32,) and (gaps >= 0).all() and gaps.mean() == pytest.approx(metrics["elbo_iwae_gap"])
    assert metrics["n_test"] == 32
    _, one = evaluate_with_gaps(model, data, k=1)
    assert abs(one).max() < 1e-9


def test_active_units_either_side_of_the_threshold():
    from vae_explorer.evaluation import active_dimensions

    signs = torch.tensor([1.0, -1.0]).repeat(50)  # 100 codes, mean 0
    variances = [0.0101, 0.0099, 0.5, 0.0]  # unbiased variance across the data; the line is 0.01 (Burda et al.)
    mu = torch.stack([signs * math.sqrt(v * 99 / 100) for v in variances], 1)
    assert mu.var(0).tolist() == pytest.approx(variances, rel=1e-4)
    assert active_dimensions(mu).tolist() == [True, False, True, False]
    assert active_units(mu) == 2 and active_units(mu, threshold=0.4) == 1
    assert active_units(mu[:1]) == 0  # one code cannot vary


def test_kl_per_dimension_is_the_mean_analytic_kl():
    from vae_explorer.evaluation import kl_per_dimension

    mu, logvar = torch.tensor([[1.0, 0.0], [-1.0, 2.0]]), torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    assert kl_per_dimension(mu, logvar).tolist() == pytest.approx([0.5, (0.5 * (4 - 1 - math.log(4)) + 2.0) / 2])


def test_first_test_images_keeps_labels_and_factors_in_step(tiny_data):
    from vae_explorer.evaluation import first_test_images

    part = first_test_images(tiny_data, 10)
    assert torch.equal(part.test_x, tiny_data.test_x[:10]) and torch.equal(part.test_y, tiny_data.test_y[:10])
    assert part.train_x is tiny_data.train_x and first_test_images(tiny_data, None) is tiny_data
    assert first_test_images(tiny_data, 10**6) is tiny_data


def test_active_dimensions_of_one_and_two_codes():
    from vae_explorer.evaluation import active_dimensions

    one = active_dimensions(torch.tensor([[1.0, 2.0]]))
    assert one.dtype == torch.bool and one.tolist() == [False, False]
    assert active_dimensions(torch.tensor([[0.0, 1.0], [1.0, 1.0]])).tolist() == [True, False]  # variance 0.5 and 0


def test_the_iwae_helper_is_the_importance_weighted_bound(tiny_run, tiny_data):
    import dataclasses

    from vae_explorer import build_model
    from vae_explorer.evaluation import importance_bounds

    model, config, _ = tiny_run
    x = tiny_data.test_x[:8]
    bound = iwae_log_likelihood(model, x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(bound, importance_bounds(model, x, k=100, generator=torch.Generator().manual_seed(4))[1])
    conditional = build_model(dataclasses.replace(config.model, conditional=True), seed=0)
    y = tiny_data.test_y[:8]
    with_y = iwae_log_likelihood(conditional, x, y, k=5, generator=torch.Generator().manual_seed(4))
    other = iwae_log_likelihood(conditional, x, (y + 1) % 10, k=5, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(with_y, other)  # the labels are used


def test_evaluate_defaults_and_a_feature_classifier(tiny_run, tiny_data):
    from vae_explorer.evaluation import first_test_images
    from vae_explorer.evaluation.fid import frechet_distance

    class Pixels:  # a stand-in classifier whose features are the pixels themselves
        @staticmethod
        def embed(x):
            return x.flatten(1).double().numpy()

    model, _, _ = tiny_run
    data = first_test_images(tiny_data, 40)
    info = {"key": "pixels-0", "test_accuracy": 1.0, "epochs": 0, "extra": "not copied"}
    metrics = evaluate(model, data, classifier=Pixels(), classifier_info=info)
    assert metrics["iwae_k"] == 100 and metrics["eval_seed"] == 0 and "beta_loss" not in metrics
    assert metrics["fid_classifier"] == {"key": "pixels-0", "test_accuracy": 1.0, "epochs": 0}
    assert metrics["fid_n"] == 40
    assert metrics["fid_floor"] == pytest.approx(
        frechet_distance(Pixels.embed(data.test_x), Pixels.embed(data.train_x[:40]))
    )
    weighted = evaluate(model, data, k=3, beta=4.0)
    assert weighted["beta_loss"] == pytest.approx(weighted["recon"] + 4.0 * weighted["kl"])


def test_first_test_images_slices_factors_too():
    from vae_explorer import DataConfig, load_dataset
    from vae_explorer.evaluation import first_test_images

    shapes = load_dataset(DataConfig(dataset="shapes", max_train=16, max_test=50))
    part = first_test_images(shapes, 7)
    assert torch.equal(part.test_factors, shapes.test_factors[:7]) and len(part.test_x) == 7
    assert first_test_images(shapes, 50) is shapes


def test_an_evaluation_reports_its_progress_and_computes_the_same_figures(tiny_run, tiny_data):
    from vae_explorer.evaluation import evaluate_with_gaps, first_test_images

    model, _, _ = tiny_run
    data = first_test_images(tiny_data, 40)
    heard = []
    metrics, gaps = evaluate_with_gaps(
        model, data, k=50, batch_size=100, progress=lambda f, what: heard.append((f, what))
    )
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    # k = 50 with batch_size 100: 20 images a chunk, so two chunks of the IWAE bound, each said with its images
    assert [w for _, w in heard if w.startswith("the IWAE bound")] == [
        "the IWAE bound, images 1 to 20 of 40, 50 samples each",
        "the IWAE bound, images 21 to 40 of 40, 50 samples each",
    ]
    quiet, quiet_gaps = evaluate_with_gaps(model, data, k=50, batch_size=100)
    assert quiet == metrics and (quiet_gaps == gaps).all()  # listening changes nothing


def test_the_app_computes_an_evaluation_once_for_sessions_asking_together(tiny_checkpoint, monkeypatch):
    import threading

    from conftest import PATIENCE_S

    import vae_explorer.evaluation as evaluation
    from vae_explorer.app import catalog, evaluations

    calls, release = [], threading.Event()
    real = evaluation.evaluate_with_gaps

    def slow(*args, **kwargs):
        calls.append(1)
        release.wait(PATIENCE_S)  # the second session arrives while the first computes
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_with_gaps", slow)
    monkeypatch.setattr(evaluations, "_evaluated", type(evaluations._evaluated)())
    key = (catalog.load(tiny_checkpoint), 5, 16, None)
    results, heard = [None, None], [[], []]

    def session(i):
        results[i] = evaluations.evaluation(*key, None, lambda f, what: heard[i].append(what))

    def wait_for(condition):
        for _ in range(PATIENCE_S * 100):
            if condition():
                return
            threading.Event().wait(0.01)
        raise AssertionError("waited too long")

    first = threading.Thread(target=session, args=(0,), daemon=True)
    first.start()
    wait_for(lambda: calls)
    second = threading.Thread(target=session, args=(1,), daemon=True)
    second.start()
    wait_for(lambda: heard[1])
    release.set()
    first.join(PATIENCE_S)
    second.join(PATIENCE_S)
    assert len(calls) == 1 and results[0] is results[1]
    assert heard[1] == ["the same figures are being computed for another visitor; waiting for them"]
    assert (
        evaluations.evaluation(*key, None, lambda f, what: heard[1].append(what)) is results[0] and len(heard[1]) == 1
    )
