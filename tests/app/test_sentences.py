"""Sentences that cite numbers say the comparison the numbers make (issue: Learn said the IWAE model's ELBO was
higher while its table showed a higher neg-ELBO)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import PATIENCE_S, REPO

from vae_explorer.app.sentences import elbo_sum, iwae_comparison


@pytest.mark.parametrize(
    "bound, elbo, words",
    [
        (
            23.19,
            24.09,
            [
                "23.19 nats against the plain VAE's 23.43 (lower: a better fit",
                "24.09 against 23.74 (higher: its ELBO is lower)",
            ],
        ),
        (
            23.60,
            23.50,
            [
                "23.60 nats against the plain VAE's 23.43 (higher: a worse fit to the data)",
                "23.50 against 23.74 (lower: its ELBO is higher)",
            ],
        ),
    ],
)
def test_the_direction_follows_the_numbers(bound, elbo, words):
    said = iwae_comparison({"iwae_nll": bound, "neg_elbo": elbo}, {"iwae_nll": 23.43, "neg_elbo": 23.74})
    for part in words:
        assert part in said, said


def test_missing_numbers_give_no_comparison():
    assert iwae_comparison({}, {"iwae_nll": 1.0}).endswith("posterior.")
    assert "against" not in iwae_comparison({"iwae_nll": float("nan"), "neg_elbo": 1}, {"iwae_nll": 1, "neg_elbo": 1})


def test_learn_cites_the_numbers_of_its_own_table():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages/6_Learn.py"), default_timeout=PATIENCE_S)
    at.run()
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    plain = json.loads((REPO / "checkpoints/digits-mlp/metrics.json").read_text())
    iwae = json.loads((REPO / "checkpoints/digits-iwae/metrics.json").read_text())
    table = next(d.value for d in at.table if "IWAE bound (k=100)" in d.value.columns)
    rows = {row["model"]: row for _, row in table.iterrows()}
    cited = re.search(
        r"its −L_100 is ([\d.]+) nats against the plain VAE's ([\d.]+) \((lower|higher)[^)]*\), and its "
        r"neg-ELBO ([\d.]+) against ([\d.]+) \((lower|higher)",
        text,
    )
    assert cited, text
    assert (
        cited[1] == rows["digits-iwae"]["IWAE bound (k=100)"] and cited[2] == rows["digits-mlp"]["IWAE bound (k=100)"]
    )
    assert cited[4] == rows["digits-iwae"]["neg-ELBO"] and cited[5] == rows["digits-mlp"]["neg-ELBO"]
    assert (cited[3] == "lower") == (iwae["iwae_nll"] < plain["iwae_nll"])
    assert (cited[6] == "lower") == (iwae["neg_elbo"] < plain["neg_elbo"])


def test_evaluate_says_why_its_figures_differ_from_home_s():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages/8_Evaluate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.run()
    assert not at.exception and not at.error
    assert not any(
        "Why these can differ" in c.value for c in at.caption
    )  # all 359 test images, k = 100: Home's figures
    at.selectbox(key="eval_k").set_value(10).run()
    saved = json.loads((REPO / "checkpoints/digits-mlp/metrics.json").read_text())
    why = next(c.value for c in at.caption if "Why these can differ" in c.value)
    assert (
        f"({saved['n_test']:,} test images, k = {saved['iwae_k']}), these are on {saved['n_test']:,} with k = 10" in why
    )


def test_home_lists_every_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=PATIENCE_S)
    at.run()
    listed = " ".join(m.value for m in at.markdown)
    for page in sorted((REPO / "pages").glob("*.py")):
        name = page.stem.split("_", 1)[1].replace("_", " ")
        assert f"**{name}**" in listed, name


def test_beta_is_shown_on_the_same_data():
    """Learn's section 3 and Compare pair beta = 1 and beta = 4 of one network on one dataset."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages/6_Learn.py"), default_timeout=PATIENCE_S)
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "**shapes-vae**: β = 1" in text and "**shapes-betavae**: β = 4" in text
    at = AppTest.from_file(str(REPO / "pages/9_Compare.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "shapes-betavae"
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="cmp_other").value == "shapes-vae"


def test_an_image_unlike_the_data_is_said_to_be_far_from_it():
    """china.jpg on digits-mlp was reconstructed as a blob with no word: its neg-ELBO is set against the test images'."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    from vae_explorer import load_checkpoint, load_dataset
    from vae_explorer.app.sentences import typicality
    from vae_explorer.data import prepare_image
    from vae_explorer.evaluation import neg_elbo_per_image
    from vae_explorer.training import average_loss

    checkpoint = load_checkpoint(REPO / "checkpoints" / "digits-mlp")
    data = load_dataset(checkpoint.config.data)
    values = neg_elbo_per_image(checkpoint.model, data.test_x)
    expected = average_loss(checkpoint.model, data.test_x, None, seed=0)
    assert float(values.mean()) == pytest.approx(expected["recon"] + expected["kl"], rel=1e-6)  # the same draws of z
    rng = np.random.default_rng(0)
    photo = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((20, 20, 1))).astype(
        np.uint8
    )  # blocks of colour, 240x320
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    x = prepare_image(buffer.getvalue(), (1, 8, 8), "auto", True, name="photo.png")
    value = float(neg_elbo_per_image(checkpoint.model, x.unsqueeze(0))[0])
    said, far = typicality("digits-mlp", value, values.numpy())
    assert far and said.startswith(
        f"Far from the data digits-mlp was trained on: this image's neg-ELBO is {value:.1f} nats, "
        f"more than any of its 359 test images'"
    )
    said, far = typicality("digits-mlp", float(values[5]), values.numpy())
    assert not far and said.startswith("Like the data digits-mlp was trained on")
    said, far = typicality("m", 2.0, [1.0, 2.0, 3.0, 4.0])
    assert not far and "higher than 50% of its test images' (median 2.5)" in said
    assert typicality("m", float("nan"), [1.0]) == ("", False) and torch.isfinite(values).all()


@pytest.mark.parametrize(
    "recon, kl, total, said",
    [
        (27.271562, 12.060811, 39.332373, "reconstruction 27.27 + KL 12.06 = 39.33 nats per image"),
        (
            37.7986,
            6.9914,
            44.7900 - 0.0100,
            "reconstruction 37.80 + KL 6.99 ≈ 44.78 nats per image",
        ),  # 44.79 written would be false
    ],
)
def test_a_sum_is_an_equation_only_where_its_figures_add_up(recon, kl, total, said):
    assert elbo_sum({"recon": recon, "kl": kl, "neg_elbo": total}) == said
    assert elbo_sum({"recon": recon, "kl": float("nan"), "neg_elbo": total}) == ""


@pytest.mark.parametrize("name", ["digits-mlp", "shapes-vae", "shapes-betavae", "digits-vamp"])
def test_learn_and_compare_cite_each_model_s_saved_figures(name):
    """Learn's sum and Compare's summary of a model give its metrics.json figures, and an '=' the reader can check."""
    from streamlit.testing.v1 import AppTest

    saved = json.loads((REPO / "checkpoints" / name / "metrics.json").read_text())
    at = AppTest.from_file(str(REPO / "pages/6_Learn.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = name
    at.run()
    assert not at.exception and not at.error
    said = next(i.value for i in at.info if "on its test set" in i.value)
    recon, kl, sign, total = re.search(r"reconstruction ([\d.]+) \+ KL ([\d.]+) ([=≈]) ([\d.]+) nats", said).groups()
    assert (float(recon), float(kl), float(total)) == (
        round(saved["recon"], 2),
        round(saved["kl"], 2),
        round(saved["neg_elbo"], 2),
    )
    assert (sign == "=") == (f"{float(recon) + float(kl):.2f}" == total)
    at = AppTest.from_file(str(REPO / "pages/9_Compare.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = name
    at.run()
    assert not at.exception and not at.error
    summary = next(m.value for m in at.markdown if m.value.startswith(f"**{name}**"))
    assert f"neg-ELBO {saved['neg_elbo']:.2f}, KL {saved['kl']:.2f} nats, {saved['active_units']} of" in summary
