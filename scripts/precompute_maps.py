"""Compute the t-SNE maps the Latent map page shows by default and keep them beside each shipped
checkpoint (checkpoints/NAME/embeddings/), so the page opens at once. Run after retraining."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_explorer import load_checkpoint, load_dataset  # noqa: E402
from vae_explorer.latent import (
    encode_means,  # noqa: E402
    load_or_compute_tsne,  # noqa: E402
)

PERPLEXITY = 30.0
for folder in sorted((Path(__file__).resolve().parents[1] / "checkpoints").iterdir()):
    if not (folder / "config.json").is_file():
        continue
    checkpoint = load_checkpoint(folder)
    data = load_dataset(checkpoint.config.data)
    for limit in sorted({min(2000, len(data.test_x)), min(10_000, len(data.test_x))}):
        y = data.test_y[:limit] if checkpoint.model.cond_dim else None
        mu, _ = encode_means(checkpoint.model, data.test_x[:limit], y)
        start = time.perf_counter()
        _, cached = load_or_compute_tsne(mu.numpy(), folder, PERPLEXITY, beside_shipped=True)
        print(
            f"{folder.name}: t-SNE of {limit} points {'was there' if cached else f'took {time.perf_counter() - start:.1f} s'}"
        )
