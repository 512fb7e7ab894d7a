"""Sentences that cite numbers say the comparison the numbers make (issue: Learn said the IWAE model's ELBO was
higher while its table showed a higher neg-ELBO)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import PATIENCE_S, REPO
from vae_explorer.app.sentences import iwae_comparison


@pytest.mark.parametrize("bound, elbo, words", [
    (23.19, 24.09, ["23.19 nats against the plain VAE's 23.43 (lower: a better fit", "24.09 against 23.74 (higher: its ELBO is lower)"]),
    (23.60, 23.50, ["23.60 nats against the plain VAE's 23.43 (higher: a worse fit to the data)", "23.50 against 23.74 (lower: its ELBO is higher)"]),
])
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
    table = next(d.value for d in at.dataframe if "IWAE bound (k=100)" in d.value.columns)
    rows = {row["model"]: row for _, row in table.iterrows()}
    cited = re.search(r"its −L_100 is ([\d.]+) nats against the plain VAE's ([\d.]+) \((lower|higher)[^)]*\), and its "
                      r"neg-ELBO ([\d.]+) against ([\d.]+) \((lower|higher)", text)
    assert cited, text
    assert cited[1] == rows["digits-iwae"]["IWAE bound (k=100)"] and cited[2] == rows["digits-mlp"]["IWAE bound (k=100)"]
    assert cited[4] == rows["digits-iwae"]["neg-ELBO"] and cited[5] == rows["digits-mlp"]["neg-ELBO"]
    assert (cited[3] == "lower") == (iwae["iwae_nll"] < plain["iwae_nll"])
    assert (cited[6] == "lower") == (iwae["neg_elbo"] < plain["neg_elbo"])


def test_evaluate_says_why_its_figures_differ_from_home_s():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages/8_Evaluate.py"), default_timeout=PATIENCE_S)
    at.query_params["model"] = "digits-mlp"
    at.run()
    assert not at.exception and not at.error
    assert not any("Why these can differ" in c.value for c in at.caption)  # all 359 test images, k = 100: Home's figures
    at.selectbox(key="eval_k").set_value(10).run()
    saved = json.loads((REPO / "checkpoints/digits-mlp/metrics.json").read_text())
    why = next(c.value for c in at.caption if "Why these can differ" in c.value)
    assert f"({saved['n_test']:,} test images, k = {saved['iwae_k']}), these are on {saved['n_test']:,} with k = 10" in why


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
