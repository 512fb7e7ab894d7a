"""The tutorial notebook runs top to bottom on a CPU and shows what each step promises."""

import pytest
from conftest import PATIENCE_S, REPO, require

pytestmark = pytest.mark.slow  # a Jupyter kernel runs the whole tutorial

NOTEBOOK = REPO / "notebooks" / "vae_tutorial.ipynb"


def test_tutorial_notebook_runs_top_to_bottom():
    try:
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager
        from nbclient import NotebookClient

        have_kernel = "python3" in KernelSpecManager().find_kernel_specs()
    except ImportError:
        have_kernel = False
    require(have_kernel, "nbclient with the ipykernel python3 kernel (pip install -r requirements.txt)")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # run the committed source, not the committed outputs
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(
        notebook, timeout=PATIENCE_S, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 7  # data, curves, reconstructions, samples, interpolation, latent map, traversals
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "iwae_nll" in printed and "saved and reloaded" in printed
