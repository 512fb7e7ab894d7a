"""Looking at a spatial latent (C, h, w), as the VAEs of latent diffusion make: each channel as a
picture, their statistics against the N(0, 1) a diffusion model expects, and the cheap colour
preview diffusion interfaces draw while they sample (a linear map from the C channels to RGB,
fitted here by least squares)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def channel_statistics(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (C,) of latents (N, C, h, w) over images and positions."""
    flat = means.transpose(0, 1).reshape(means.shape[1], -1).double()
    return flat.mean(1), flat.std(1, correction=0)


def unit_variance_scale(means: torch.Tensor) -> float:
    """The scaling factor that gives these latents unit variance over all channels: 1 / their
    standard deviation, how Rombach et al. (arXiv:2112.10752, appendix G) chose Stable Diffusion's 0.18215."""
    return 1.0 / float(means.double().std(correction=0))


def rgb_preview_fit(means: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The (C + 1, 3) matrix that best maps a latent position's C channels (and 1) to the mean
    colour of the image pixels it covers, by least squares over every position of every image.
    means (N, C, h, w), images (N, 3, H, W) in [0, 1] with H = f h and W = f w."""
    factor = images.shape[-1] // means.shape[-1]
    colours = F.avg_pool2d(images.double(), factor)  # (N, 3, h, w)
    x = means.double().permute(0, 2, 3, 1).reshape(-1, means.shape[1])  # (N h w, C)
    x = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    y = colours.permute(0, 2, 3, 1).reshape(-1, 3)
    return torch.linalg.lstsq(x, y).solution


def rgb_preview(mean: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """A latent (C, h, w) as a small colour picture (3, h, w) in [0, 1], through a fitted matrix."""
    x = mean.double().permute(1, 2, 0) @ matrix[:-1] + matrix[-1]
    return x.permute(2, 0, 1).clamp(0, 1).float()


def channel_pictures(mean: torch.Tensor, spread: float = 3.0) -> torch.Tensor:
    """Each channel of a latent (C, h, w) as a grey picture (C, 1, h, w) in [0, 1]: -spread black,
    0 mid-grey, +spread white, the same scale for every channel so they can be compared."""
    return ((mean.float() / spread + 1) / 2).clamp(0, 1)[:, None]


def neighbour_correlation(mean: torch.Tensor) -> float:
    """How alike horizontally neighbouring positions of a latent (C, h, w) are: the correlation of
    each position's value with its right neighbour's, per channel, averaged over the channels. Near
    0 for a draw from N(0, I); photos' latents are smooth, so theirs is high."""
    left, right = mean[:, :, :-1].double(), mean[:, :, 1:].double()
    left = left.reshape(len(mean), -1) - left.reshape(len(mean), -1).mean(1, keepdim=True)
    right = right.reshape(len(mean), -1) - right.reshape(len(mean), -1).mean(1, keepdim=True)
    return float(((left * right).sum(1) / (left.norm(dim=1) * right.norm(dim=1)).clamp_min(1e-12)).mean())


class ChannelMoments:
    """Per-channel mean and standard deviation of many latents (C, h, w) of different sizes, added
    one at a time (sums in float64): what a folder of photos' latents look like against the N(0, 1)
    a diffusion model expects, and the scaling factor that gives them unit variance."""

    def __init__(self, channels: int):
        self.count = 0
        self.total = torch.zeros(channels, dtype=torch.float64)
        self.squares = torch.zeros(channels, dtype=torch.float64)

    def add(self, mean: torch.Tensor) -> None:
        flat = mean.double().reshape(len(mean), -1)
        self.count += flat.shape[1]
        self.total += flat.sum(1)
        self.squares += (flat**2).sum(1)

    @property
    def mean(self) -> torch.Tensor:
        return self.total / max(self.count, 1)

    @property
    def std(self) -> torch.Tensor:
        return (self.squares / max(self.count, 1) - self.mean**2).clamp_min(0).sqrt()

    def unit_variance_scale(self) -> float:
        """1 / the standard deviation of every value of every channel together."""
        n = max(self.count * len(self.total), 1)
        variance = float(self.squares.sum()) / n - (float(self.total.sum()) / n) ** 2
        return 1.0 / max(variance, 1e-24) ** 0.5


def interpolate_latents(a: torch.Tensor, b: torch.Tensor, t: float, method: str = "linear") -> torch.Tensor:
    """The point t of the way from latent a to latent b (both (C, h, w)), position by position:
    "linear", or "slerp" along the great circle between each position's two C-vectors (where
    they are (nearly) parallel or opposite, the line), as latent.interpolation_at does for one vector."""
    if method == "linear":
        return (1 - t) * a + t * b
    if method != "slerp":
        raise ValueError(f"unknown interpolation method {method!r}; use linear or slerp")
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum(0) / (a64.norm(dim=0) * b64.norm(dim=0)).clamp_min(1e-12)  # (h, w)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    curved = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / sin.clamp_min(1e-12)
    line = (1 - t) * a64 + t * b64
    return torch.where(sin < 1e-4, line, curved).to(a.dtype)


def paste_patch(
    target: torch.Tensor, source: torch.Tensor, top: int, left: int, height: int, width: int
) -> torch.Tensor:
    """`target` (C, h, w) with the box [top, top + height) x [left, left + width) of latent positions
    taken from `source` (the same shape): a piece of one photo's latent moved into another's."""
    out = target.clone()
    out[:, top : top + height, left : left + width] = source[:, top : top + height, left : left + width]
    return out


def changed_outside(before: torch.Tensor, after: torch.Tensor, box: tuple, factor: int, levels: int = 2) -> float:
    """The share of pixels outside a box of latent positions (top, left, height, width) that differ
    between two decoded images (3, H, W) in [0, 1] by more than `levels` grey levels in any channel:
    how far the decoder carries a change made inside the box."""
    top, left, height, width = box
    changed = (after - before).abs().amax(0) > levels / 255  # (H, W)
    inside = torch.zeros_like(changed)
    inside[top * factor : (top + height) * factor, left * factor : (left + width) * factor] = True
    outside = ~inside
    return float(changed[outside].double().mean()) if outside.any() else 0.0


MAX_DABS = 5000  # dabs of the brush one painting may hold (a long stroke at 60 moves a second is a few hundred)


def brush(shape: tuple[int, int], row: float, col: float, radius: float) -> torch.Tensor:
    """The brush's weight at each latent position (h, w): (1 - d^2 / R^2)^2 within the distance R =
    `radius` of the point (row, col), in latent positions, and 0 beyond; smooth, and nothing outside
    its disc changes, so a stroke's reach is known before it is decoded."""
    rows = torch.arange(shape[0], dtype=torch.float64)[:, None] - row
    cols = torch.arange(shape[1], dtype=torch.float64)[None, :] - col
    inside = (1 - (rows**2 + cols**2) / radius**2).clamp(min=0)
    return inside**2


def paint_latent(z: torch.Tensor, dabs, source: torch.Tensor | None = None) -> torch.Tensor:
    """A latent (C, h, w) with each dab (channel, row, col, radius, amount) of a brush applied in turn:
    amount times `brush` added to that channel (positive adds, negative subtracts); channel -1 moves every
    channel amount times `brush` of the way to `source` (another photo's latent of the same shape): a
    patch of it copied in, blended at the rim. The browser's painter (app/live/paint/paint.js) applies the
    same dabs in the same order."""
    out = z.clone()
    for channel, row, col, radius, amount in dabs:
        weight = (float(amount) * brush(out.shape[1:], float(row), float(col), float(radius))).to(out.dtype)
        if int(channel) >= 0:
            out[int(channel)] += weight
        elif source is None:
            raise ValueError("a copying dab (channel -1) needs the source latent")
        else:
            out += weight * (source - out)
    return out


@torch.no_grad()
def receptive_radius(decode, channels: int, factor: int, side: int = 33) -> int:
    """How many latent positions away a change at one position reaches in the decoded image: the decoder
    (`decode`, latents (1, C, h, w) -> images) is run on zeros and on zeros with one position changed, and
    the farthest changed pixel is measured in latent positions. Decoding a window that reaches this far
    beyond a change gives, inside it, the pixels of decoding the whole latent."""
    z = torch.zeros(1, channels, side, side)
    moved = z.clone()
    moved[0, :, side // 2, side // 2] = 1.0
    changed = (decode(moved) - decode(z)).abs().amax((0, 1)) > 0  # (side f, side f)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    if not len(rows):
        return 0
    reach = torch.maximum((rows // factor - side // 2).abs(), (cols // factor - side // 2).abs())
    return int(reach.max())
