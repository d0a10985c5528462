"""The passive vector quantizer that turns StyleGAN feature maps into an unsupervised face segmentation.

Paper Section 3.2: a codebook ``Z`` of ``K`` entries of dimension ``d`` is learnt *online* while Stage I
inverts the shot, by assigning every feature vector to its nearest entry under **cosine** distance and
moving each entry with the exponential-moving-average update of Eq. 2::

    N_j := N_j * gamma + n_j * (1 - gamma)
    m_j := m_j * gamma + sum_{i assigned to j} g_i * (1 - gamma)
    z_j := m_j / N_j

The quantizer is *passive*: it reads detached features under ``torch.no_grad`` and its output is never fed
back into the generator, so it can neither destabilise the generator nor be shaped by the inversion loss.

Why our own module rather than ``vector-quantize-pytorch``: that library L2-normalises features before
the EMA and Laplace-smooths the cluster counts, which departs from Eq. 2 (raw features are averaged,
counts are used as they are). Matching the equation exactly keeps the paper's ``gamma`` meaningful.

What it reads, X_VQ (the tapped feature maps, optionally the RGB and context colour), is built in
``vq_input.py``.

Two practical additions the paper's implementation also relies on: a cosine k-means warm start on the
first batch (so the first assignments are not random), and re-seeding of dead codes whose EMA count falls
below a threshold from random features of the current batch. All state (codebook, counts, sums, the
initialised flag, the restart total) lives in buffers, so it is saved and restored with ``state_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vq_models.metrics import perplexity
from vq_models.vq_input import resize_mask

__all__ = ["VectorQuantizer", "VQStats", "cosine_kmeans", "kmeans_pp_seeds"]

@dataclass
class VQStats:
    """What one quantizer call saw: for logging, not for gradients."""

    usage: torch.Tensor  # (K,) long, foreground pixels assigned to each code in this batch
    perplexity: float  # exp(entropy) of the foreground code distribution, 1..K
    dead_restarts: int  # codes re-seeded in this call
    active_codes: int  # codes used by at least one foreground pixel
    foreground_pixels: int
    background_pixels: int  # assigned too (crop space has no reserved label) but excluded from statistics

    def as_scalars(self, prefix: str = "vq/") -> dict[str, float]:
        return {
            f"{prefix}perplexity": float(self.perplexity),
            f"{prefix}active_codes": float(self.active_codes),
            f"{prefix}dead_restarts": float(self.dead_restarts),
            f"{prefix}foreground_fraction": float(
                self.foreground_pixels / max(1, self.foreground_pixels + self.background_pixels)
            ),
        }


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@torch.no_grad()
def kmeans_pp_seeds(
    points: torch.Tensor, k: int, generator: torch.Generator | None = None, existing: torch.Tensor | None = None
) -> torch.Tensor:
    """Pick ``k`` seed rows of ``points`` by k-means++ under cosine distance (D² sampling).

    Why: random seeds land where the pixels are, i.e. on skin. A part covering 0.5 % of the face (a pupil)
    then never gets a seed and Lloyd iterations cannot create one. D² sampling picks each next seed with
    probability proportional to its squared cosine distance from the seeds so far, so small but distinct
    parts are found. ``existing`` (m, d) are centres already placed (seeds avoid them too).
    Returns (k, d) rows copied from ``points``.
    """
    n = points.shape[0]
    unit = F.normalize(points.float(), dim=1)
    chosen: list[int] = []
    if existing is not None and len(existing):
        best = (unit @ F.normalize(existing.float(), dim=1).T).max(dim=1).values
    else:
        chosen.append(int(torch.randint(0, n, (1,), generator=generator)))
        best = unit @ unit[chosen[0]]
    while len(chosen) < k:
        d2 = (1.0 - best).clamp_min(0.0) ** 2
        total = float(d2.sum())
        if total <= 0:
            nxt = int(torch.randint(0, n, (1,), generator=generator))
        else:
            nxt = int(torch.multinomial((d2 / total).cpu(), 1, generator=generator))
        chosen.append(nxt)
        best = torch.maximum(best, unit @ unit[nxt])
    return points[torch.tensor(chosen, dtype=torch.long, device=points.device)].clone()


@torch.no_grad()
def cosine_kmeans(
    points: torch.Tensor, k: int, iters: int = 100, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means: k-means++ seeds, assignment by cosine similarity, centroid = mean of the raw member
    vectors (the same estimate Eq. 2 converges to, so the warm start is a fixed point of the EMA update).

    Returns ``(centroids (k, d), counts (k,))``. Empty clusters are re-seeded with the point farthest
    (by cosine) from its centroid, and the result always has ``k`` pairwise distinct rows.
    """
    n, d = points.shape
    device = points.device
    unit = F.normalize(points, dim=1)
    if n >= k:
        centroids = kmeans_pp_seeds(points, k, generator)
    else:  # fewer points than codes: repeat and perturb so every centroid is distinct
        idx = torch.randint(0, n, (k,), generator=generator, device="cpu").to(device)
        centroids = points[idx].clone()
    centroids = _make_distinct(centroids, generator)
    counts = torch.zeros(k, device=device)
    for _ in range(max(1, iters)):
        sim = unit @ F.normalize(centroids, dim=1).T
        best_sim, assign = sim.max(dim=1)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1.0)[:, None], centroids)
        empty = (counts == 0).nonzero().flatten()
        if len(empty) and n >= k:
            far = torch.argsort(best_sim)[: len(empty)]  # worst-served points start the empty clusters
            new[empty] = points[far]
        if torch.allclose(new, centroids):
            centroids = new
            break
        centroids = new
    return _make_distinct(centroids, generator), counts


def _make_distinct(centroids: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Nudge duplicate rows (identical after normalisation) apart so every code can win some vector."""
    out = centroids.clone()
    unit = F.normalize(out, dim=1)
    sim = unit @ unit.T
    sim.fill_diagonal_(-2.0)
    dup = torch.triu(sim > 1.0 - 1e-6, diagonal=1).any(dim=0)
    if dup.any():
        scale = out.abs().mean().clamp_min(1e-3) * 1e-2
        noise = torch.randn(int(dup.sum()), out.shape[1], generator=generator).to(out)
        out[dup] = out[dup] + scale * noise
    return out


class VectorQuantizer(nn.Module):
    """Passive EMA vector quantizer (paper Eq. 2) with cosine assignment.

    Every knob is a named argument: ``num_codes`` (K, paper 128), ``dim`` (d, the concatenated channel
    count of the tapped layers), ``decay`` (gamma of Eq. 2; the paper uses 1e-3, i.e. almost no memory),
    ``kmeans_iters`` (warm start on the first batch, paper 100), ``kmeans_max_samples`` (cap on the pixels
    the warm start clusters, for speed), ``dead_code_threshold`` (EMA count below which a code is
    re-seeded, paper 2; 0 disables), ``eps`` (guards the division in Eq. 2).
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    cluster_sum: torch.Tensor
    initialized: torch.Tensor
    restarts_total: torch.Tensor

    def __init__(
        self,
        num_codes: int = 128,
        dim: int = 996,
        decay: float = 1e-3,
        kmeans_iters: int = 100,
        kmeans_max_samples: int = 65536,
        dead_code_threshold: float = 2.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_codes < 1 or num_codes > 255:
            raise ValueError(f"num_codes must be 1..255 (labels are stored as uint8), got {num_codes}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.num_codes = int(num_codes)
        self.dim = int(dim)
        self.decay = float(decay)
        self.kmeans_iters = int(kmeans_iters)
        self.kmeans_max_samples = int(kmeans_max_samples)
        self.dead_code_threshold = float(dead_code_threshold)
        self.eps = float(eps)
        self.register_buffer("codebook", torch.zeros(num_codes, dim))
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("cluster_sum", torch.zeros(num_codes, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarts_total", torch.zeros((), dtype=torch.long))

    # --- assignment ------------------------------------------------------------------------------
    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code by cosine distance for every pixel: (B, d, H, W) -> (B, H, W) long."""
        b, d, h, w = x.shape
        if d != self.dim:
            raise ValueError(f"quantizer expects {self.dim} channels, got {d}")
        flat = x.detach().permute(0, 2, 3, 1).reshape(-1, d).float()
        codes = self._assign_flat(flat)
        return codes.view(b, h, w)

    def _assign_flat(self, flat: torch.Tensor) -> torch.Tensor:
        unit_codes = F.normalize(self.codebook.float(), dim=1)
        out = torch.empty(flat.shape[0], dtype=torch.long, device=flat.device)
        chunk = 1 << 16  # bounds the (N, K) similarity matrix at paper resolution
        for s in range(0, flat.shape[0], chunk):
            part = F.normalize(flat[s : s + chunk], dim=1)
            out[s : s + chunk] = (part @ unit_codes.T).argmax(dim=1)
        return out

    # --- training-time update --------------------------------------------------------------------
    @torch.no_grad()
    def forward(
        self, x: torch.Tensor, fg_mask: torch.Tensor | None = None, update: bool | None = None
    ) -> tuple[torch.Tensor, VQStats]:
        """Assign codes to ``x`` (B, d, H, W) and, when ``update`` (default: ``self.training``), run the warm
        start (first call), the Eq. 2 EMA update and dead-code re-seeding.

        ``fg_mask`` (B, H', W') or (B, 1, H', W'): pixels with mask < 0.5 are assigned but excluded from
        every statistic. Returns ``(codes (B, H, W) long, stats)``; codes come from the codebook as it was
        before this call's update.
        """
        update = self.training if update is None else update
        b, d, h, w = x.shape
        flat = x.detach().permute(0, 2, 3, 1).reshape(-1, d).float()
        if fg_mask is None:
            valid = torch.ones(flat.shape[0], dtype=torch.bool, device=flat.device)
        else:
            valid = (resize_mask(fg_mask, (h, w)).to(flat.device)[:, 0] >= 0.5).reshape(-1)
        fg = flat[valid]
        if update and not bool(self.initialized):
            self._warm_start(fg if len(fg) else flat)
        codes = self._assign_flat(flat)
        fg_codes = codes[valid]
        counts = torch.bincount(fg_codes, minlength=self.num_codes).float()
        sums = torch.zeros(self.num_codes, d, device=flat.device).index_add_(0, fg_codes, fg)
        restarts = 0
        if update:
            if _is_distributed():
                torch.distributed.all_reduce(counts)
                torch.distributed.all_reduce(sums)
            self._ema_update(counts, sums)
            restarts = self._restart_dead(fg if len(fg) else flat)
        usage = counts.long()
        stats = VQStats(
            usage=usage,
            perplexity=perplexity(counts),
            dead_restarts=restarts,
            active_codes=int((usage > 0).sum()),
            foreground_pixels=int(valid.sum()),
            background_pixels=int((~valid).sum()),
        )
        return codes.view(b, h, w), stats

    def _ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """Eq. 2, literally."""
        g = self.decay
        self.cluster_size.mul_(g).add_(counts.to(self.cluster_size), alpha=1.0 - g)
        self.cluster_sum.mul_(g).add_(sums.to(self.cluster_sum), alpha=1.0 - g)
        ok = self.cluster_size > self.eps
        z = self.cluster_sum / self.cluster_size.clamp_min(self.eps)[:, None]
        self.codebook.copy_(torch.where(ok[:, None], z, self.codebook))

    def _warm_start(self, feats: torch.Tensor) -> None:
        """Cosine k-means on (a sample of) the first batch; counts/sums set so z = m / N holds."""
        sample = feats
        if len(sample) > self.kmeans_max_samples:
            sample = sample[torch.randperm(len(sample))[: self.kmeans_max_samples].to(sample.device)]
        if not _is_distributed() or torch.distributed.get_rank() == 0:
            centroids, counts = cosine_kmeans(sample, self.num_codes, self.kmeans_iters)
            centroids = centroids.to(self.codebook)
        else:
            centroids = torch.zeros_like(self.codebook)
            counts = torch.zeros_like(self.cluster_size)
        counts = counts.to(self.cluster_size)
        if _is_distributed():
            torch.distributed.broadcast(centroids, 0)
            torch.distributed.broadcast(counts, 0)
        # scale counts to a per-batch count so the first EMA step is not swamped
        scale = len(feats) / max(1, len(sample))
        self.codebook.copy_(centroids)
        self.cluster_size.copy_(counts * scale)
        self.cluster_sum.copy_(centroids * self.cluster_size[:, None])
        self.initialized.fill_(True)

    def _restart_dead(self, feats: torch.Tensor) -> int:
        """Re-seed codes whose EMA count fell below the threshold from current features, picked by D²
        sampling against the live codes (:func:`kmeans_pp_seeds`): a dead code moves to features the
        codebook serves worst — typically a small part that no code covers yet — not to more skin."""
        if self.dead_code_threshold <= 0 or len(feats) == 0:
            return 0
        dead = (self.cluster_size < self.dead_code_threshold).nonzero().flatten()
        n = len(dead)
        if n == 0:
            return 0
        new = kmeans_pp_seeds(feats, n, existing=self.codebook[self.cluster_size >= self.dead_code_threshold])
        new = new.to(self.codebook)
        if _is_distributed():
            torch.distributed.broadcast(new, 0)
        self.codebook[dead] = new
        self.cluster_size[dead] = self.dead_code_threshold
        self.cluster_sum[dead] = new * self.dead_code_threshold
        self.restarts_total += n
        return n

    # --- whole-shot refinement ---------------------------------------------------------------------
    @torch.no_grad()
    def refine(self, points: torch.Tensor, iters: int = 10, generator: torch.Generator | None = None) -> int:
        """Lloyd passes of Eq. 2 over a whole shot's foreground features ``points`` (N, d) at once.

        Each pass assigns every point (cosine), then sets ``N_j``, ``m_j`` and ``z_j = m_j / N_j`` from the
        full assignment: Eq. 2 with gamma = 0 and the whole shot as one batch. Codes left with fewer than
        ``dead_code_threshold`` members (or none) are re-seeded by D² sampling from the points, so they end
        on parts the codebook served worst. Why: online EMA codes last saw features of a still-moving
        network, one batch at a time; this settles them on the final features of every frame. Stops early
        when assignments no longer change. ``points`` may be float16 (memory); work is chunked in float32.
        Returns the number of passes run. Afterwards ``N_j`` holds the final counts scaled down to at most
        ``kmeans_max_samples`` in total (one warm-start batch), so later online updates can still move codes.
        """
        n, d = points.shape
        if d != self.dim:
            raise ValueError(f"quantizer expects {self.dim} channels, got {d}")
        if n == 0:
            return 0
        if not bool(self.initialized):
            self._warm_start(points[: self.kmeans_max_samples].float())
        chunk = 1 << 16
        prev: torch.Tensor | None = None
        done = 0
        for _ in range(max(0, iters)):
            unit_codes = F.normalize(self.codebook.float(), dim=1)
            assign = torch.empty(n, dtype=torch.long, device=points.device)
            best = torch.empty(n, device=points.device)
            counts = torch.zeros(self.num_codes, device=points.device)
            sums = torch.zeros(self.num_codes, d, device=points.device)
            for s in range(0, n, chunk):
                part = points[s : s + chunk].float()
                sim = F.normalize(part, dim=1) @ unit_codes.T
                b, a = sim.max(dim=1)
                assign[s : s + chunk], best[s : s + chunk] = a, b
                counts += torch.bincount(a, minlength=self.num_codes).float()
                sums.index_add_(0, a, part)
            done += 1
            if prev is not None and torch.equal(prev, assign):
                break
            prev = assign
            live = counts >= max(1.0, self.dead_code_threshold)
            self.codebook[live] = (sums[live] / counts[live, None]).to(self.codebook)
            dead = (~live).nonzero().flatten()
            if len(dead):
                self.codebook[dead] = kmeans_pp_seeds(points.float(), len(dead), generator,
                                                      existing=self.codebook[live]).to(self.codebook)
                self.restarts_total += len(dead)
        # keep the EMA state consistent with z = m / N at a batch-like scale
        frames_scale = max(1.0, float(counts.sum()) / max(1, self.kmeans_max_samples))
        self.cluster_size.copy_((counts / frames_scale).clamp_min(self.eps))
        self.cluster_sum.copy_(self.codebook * self.cluster_size[:, None])
        self.initialized.fill_(True)
        return done
