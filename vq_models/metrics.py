"""Image and video quality metrics for renders against ground truth (paper Sec. 4.1, Tab. 1).

Everything compares display sRGB float images in [0, 1] (H, W, 3), the space the networks see, so the
numbers mean the same for EXR and PNG plates. Each metric has a masked variant (a weighted mean over a
soft mask), because an edit only claims to be good inside the face.

* MSE, PSNR, SSIM (own Gaussian-window implementation of Wang et al. 2004 with the usual constants:
  11-tap window, sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances, symmetric border and the
  border band excluded from the mean — the same definition scikit-image uses with
  ``gaussian_weights=True``).
* LPIPS through :func:`vq_models.nets.lpips.lpips_distance` when ImageNet backbone weights exist,
  otherwise reported as ``"unavailable: ..."`` (never silently replaced by another number).
* Temporal flicker: mean absolute change between consecutive frames of the prediction and of the ground
  truth, and their ratio (> 1: the render flickers more than the footage).
* Perplexity of a code histogram (Stage I's quantizer and its label maps): how many codes are in use.
* FID / FVD need Inception / I3D weights that are not shipped; :func:`frechet_distance` is the shared
  statistic, the feature extractors are reported unavailable with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from vq_models.nets.ssim import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW  # one definition with the torch map


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(pred, dtype=np.float64)
    b = np.asarray(gt, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"prediction {a.shape} and ground truth {b.shape} differ in shape")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return a, b


def _weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    w = np.asarray(mask, dtype=np.float64)
    if w.ndim == 3:
        w = w[..., 0]
    if w.shape != shape[:2]:
        raise ValueError(f"mask {w.shape} does not match image {shape[:2]}")
    return np.clip(w, 0.0, 1.0)


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over pixels and channels (weighted by ``mask`` when given)."""
    a, b = _pair(pred, gt)
    err = ((a - b) ** 2).mean(axis=2)
    w = _weights(mask, a.shape)
    if w is None:
        return float(err.mean())
    total = w.sum()
    return float((err * w).sum() / total) if total > 0 else float("nan")


def psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    m = mse(pred, gt, mask)
    if m == 0:
        return float("inf")
    return float(10.0 * math.log10(data_range**2 / m)) if m == m else float("nan")


def psnr_in_boxes(pred: np.ndarray, gt: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> float:
    """PSNR (dB, peak 1) over the pixels of the boxes (x0, y0, x1, y1) taken together: the what-ifs' eye and
    mouth boxes; ``inf`` for identical pixels."""
    err = np.concatenate([((pred[y0:y1, x0:x1] - gt[y0:y1, x0:x1]) ** 2).ravel() for x0, y0, x1, y1 in boxes])
    m = float(err.mean())
    return float("inf") if m == 0 else 10.0 * math.log10(1.0 / m)


def _blur(x: np.ndarray) -> np.ndarray:
    k = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F)
    return cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)


def ssim_map(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-pixel SSIM (H, W), averaged over channels."""
    a, b = _pair(pred, gt)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    maps = []
    for ch in range(a.shape[2]):
        x, y = np.ascontiguousarray(a[..., ch]), np.ascontiguousarray(b[..., ch])
        mx, my = _blur(x), _blur(y)
        vx = _blur(x * x) - mx * mx
        vy = _blur(y * y) - my * my
        cov = _blur(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def ssim(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Mean SSIM. Unmasked, the band of half a window at the border is left out (as in the reference
    definition); masked, the SSIM map is averaged with the mask's weights."""
    a, _ = _pair(pred, gt)
    smap = ssim_map(pred, gt, data_range)
    w = _weights(mask, a.shape)
    if w is None:
        pad = (SSIM_WINDOW - 1) // 2
        inner = smap[pad:-pad, pad:-pad] if min(smap.shape) > 2 * pad else smap
        return float(inner.mean())
    total = w.sum()
    return float((smap * w).sum() / total) if total > 0 else float("nan")


def mean_abs_change(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |cur - prev| over pixels and channels: one step of the temporal flicker measure."""
    a, b = _pair(cur, prev)
    d = np.abs(a - b).mean(axis=2)
    w = _weights(mask, a.shape)
    if w is None:
        return float(d.mean())
    total = w.sum()
    return float((d * w).sum() / total) if total > 0 else float("nan")


def temporal_flicker(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean absolute frame-to-frame change of prediction and ground truth, and pred / gt."""
    if len(pred_frames) != len(gt_frames) or len(pred_frames) < 2:
        raise ValueError("temporal flicker needs two equally long sequences of at least 2 frames")
    p = float(np.mean([mean_abs_change(a, b) for a, b in zip(pred_frames[:-1], pred_frames[1:], strict=True)]))
    g = float(np.mean([mean_abs_change(a, b) for a, b in zip(gt_frames[:-1], gt_frames[1:], strict=True)]))
    return {"pred": p, "gt": g, "ratio": p / g if g > 0 else float("inf")}


def perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of a code histogram ``counts`` (K,): the number of codes in effective use, 1..K; 0 for an
    empty histogram. Integer counts are summed exactly before dividing."""
    total = counts.sum()
    if not total > 0:
        return 0.0
    p = counts.float() / total
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians (the statistic behind FID and FVD):
    ``|mu1 - mu2|² + tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½)``, via symmetric eigendecompositions (no scipy)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)

    def sqrt_psd(m: np.ndarray) -> np.ndarray:
        vals, vecs = np.linalg.eigh((m + m.T) / 2.0)
        return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T

    r1 = sqrt_psd(s1)
    middle = np.linalg.eigvalsh((r1 @ s2 @ r1 + (r1 @ s2 @ r1).T) / 2.0)
    tr_cross = float(np.sqrt(np.clip(middle, 0.0, None)).sum())
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross)


def lpips_value(pred: np.ndarray, gt: np.ndarray, backbone_path: str | None = None) -> float | str:
    """LPIPS (AlexNet) between two sRGB images, or ``"unavailable: ..."`` with the reason."""
    try:
        import torch

        from vq_models.nets.lpips import lpips_distance
    except ImportError as exc:
        return f"unavailable: {exc}"
    from vq_models.errors import VQEditError

    def tensor(x: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None] * 2.0 - 1.0

    try:
        return float(lpips_distance(tensor(pred), tensor(gt), "alex", backbone_path)[0])
    except VQEditError as exc:
        return f"unavailable: no ImageNet backbone weights; {exc}"


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass
class SequenceMetrics:
    """Accumulates per-frame metrics over a sequence without holding the frames (2 frames at a time).

    ``add(pred, gt, mask)`` per frame in order; ``summary()`` gives means over frames, the temporal
    flicker of prediction vs ground truth, and per-frame values.
    """

    use_lpips: bool = True
    lpips_backbone: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    _prev: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    _flicker: dict[str, list[float]] = field(default_factory=lambda: {"pred": [], "gt": [], "pred_masked": [],
                                                                        "gt_masked": []})
    _lpips_reason: str | None = None

    def add(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, frame: int | None = None) -> dict:
        row: dict[str, Any] = {"frame": frame, "mse": mse(pred, gt), "psnr": psnr(pred, gt), "ssim": ssim(pred, gt)}
        if mask is not None:
            row.update(mse_masked=mse(pred, gt, mask), psnr_masked=psnr(pred, gt, mask),
                       ssim_masked=ssim(pred, gt, mask))
        if self.use_lpips and self._lpips_reason is None:
            value = lpips_value(pred, gt, self.lpips_backbone)
            if isinstance(value, str):
                self._lpips_reason = value
            else:
                row["lpips"] = value
        if self._prev is not None:
            pp, pg, _ = self._prev
            self._flicker["pred"].append(mean_abs_change(pp, pred))
            self._flicker["gt"].append(mean_abs_change(pg, gt))
            if mask is not None:
                self._flicker["pred_masked"].append(mean_abs_change(pp, pred, mask))
                self._flicker["gt_masked"].append(mean_abs_change(pg, gt, mask))
        self._prev = (np.asarray(pred), np.asarray(gt), mask)
        self.frames.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"num_frames": len(self.frames)}
        keys = [k for k in self.frames[0] if k != "frame"] if self.frames else []
        for key in keys:
            vals = [r[key] for r in self.frames if _is_num(r.get(key))]
            out[key] = float(np.mean(vals)) if vals else None
        if not self.use_lpips:
            out["lpips"] = "unavailable: disabled (--no-lpips)"
        elif self._lpips_reason is not None:
            out["lpips"] = self._lpips_reason
        for suffix in ("", "_masked"):
            p, g = self._flicker["pred" + suffix], self._flicker["gt" + suffix]
            if p:
                mp, mg = float(np.mean(p)), float(np.mean(g))
                out["flicker" + suffix] = {"pred": mp, "gt": mg, "ratio": mp / mg if mg > 0 else float("inf")}
        if "flicker" not in out:
            out["flicker"] = "unavailable: needs at least 2 frames"
        return out


def unavailable_fid(inception: str | None) -> str:
    if inception is None:
        return "unavailable: no Inception weights given (--inception PATH)"
    return f"unavailable: loading Inception weights ({inception}) is not implemented yet"


def unavailable_fvd(i3d: str | None) -> str:
    if i3d is None:
        return "unavailable: no I3D weights given (--i3d PATH)"
    return f"unavailable: loading I3D weights ({i3d}) is not implemented yet"


def json_safe(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) with strings so the report parses everywhere."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def format_table(summary: dict[str, Any]) -> str:
    """A two-column text table of a summary for the terminal."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                rows.append((f"{key}.{sub}", f"{v:.6g}" if _is_num(v) else str(v)))
        elif key != "frames":
            rows.append((key, f"{value:.6g}" if _is_num(value) else str(value)))
    width = max(len(k) for k, _ in rows) if rows else 0
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
