"""A small, real, deterministic stand-in for ``vq_models.runtime.ShotModel`` used by the server tests.

It implements the ShotModel interface with plain numpy so the server, client, node and farm can be
tested end to end before (and independently of) a trained model. Label maps are drawn from the frame
number, the "renderer" maps each code to a colour, and the frame render is warped (nearest neighbour)
into a box of the plate. A model folder holds ``model.json`` (see :func:`write_model`). The lead swaps
the fixture in tests/server_fixtures.py to a real tiny trained shot at integration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vq_models.errors import InputError, VQEditError


@dataclass
class FrameRender:
    rgba: np.ndarray  # (h, w, 4) float32 premultiplied over the data window, plate colour space
    alpha: np.ndarray  # (h, w)
    changed: np.ndarray  # (L, L) bool
    data_window: tuple[int, int, int, int]
    display_window: tuple[int, int, int, int]
    colorspace: str


def write_model(folder: Path, **over: Any) -> Path:
    """Create a model folder with a ``model.json``; keyword arguments override the defaults."""
    spec: dict[str, Any] = {
        "name": folder.name,
        "num_codes": 16,
        "frames": list(range(1001, 1006)),
        "label_size": 16,
        "render_size": 32,
        "plate": {
            "width": 64,
            "height": 48,
            "display_window": [0, 0, 64, 48],
            "data_window": [0, 0, 64, 48],
            "colorspace": "lin_rec709",
            "pixel_aspect": 1.0,
        },
        "crop_box": [16, 8, 32],
        "memory_bytes": 1 << 20,
        "delay_s": 0.0,
    }
    spec.update(over)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(spec))
    return folder


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


class FakeShotModel:
    """Deterministic numpy implementation of the ShotModel interface."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.name = str(spec["name"])
        self.num_codes = int(spec["num_codes"])
        self.frames = [int(f) for f in spec["frames"]]
        self.label_size = int(spec["label_size"])
        self.render_size = int(spec["render_size"])
        self.plate_info = dict(spec["plate"])
        self._prior: dict[str, list[int]] = {"face": list(range(1, self.num_codes))}
        rng = np.random.default_rng(7)
        self._lut = rng.uniform(0.05, 0.95, size=(self.num_codes, 3)).astype(np.float32)

    @classmethod
    def load(cls, shot_dir: str | Path, device: str = "cpu") -> FakeShotModel:
        path = Path(shot_dir) / "model.json"
        if not path.is_file():
            raise InputError(f"{shot_dir}: no model.json")
        spec = json.loads(path.read_text())
        if spec.get("broken"):
            raise RuntimeError("weights are corrupt")
        return cls(spec)

    def _check(self, frame: int) -> None:
        if frame not in self.frames:
            raise InputError(f"frame {frame} is not in the shot")

    def label_map(self, frame: int) -> np.ndarray:
        self._check(frame)
        L = self.label_size
        yy, xx = np.mgrid[0:L, 0:L]
        codes = 1 + (xx // 2 + yy // 3 + frame) % (self.num_codes - 1)
        inside = (xx - (L - 1) / 2) ** 2 + (yy - (L - 1) / 2) ** 2 <= (L / 2.2) ** 2
        return np.where(inside, codes, 0).astype(np.uint8)

    def labels_from_image(self, rgb: np.ndarray) -> np.ndarray:
        img = np.asarray(rgb, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"image: expected (H, W, 3), got {img.shape}")
        small = cv2.resize(img.mean(axis=2), (self.label_size, self.label_size), interpolation=cv2.INTER_AREA)
        return np.clip(np.floor(small * self.num_codes), 0, self.num_codes - 1).astype(np.uint8)

    def render_window(self, labels: np.ndarray) -> np.ndarray:
        lab = np.asarray(labels)
        if lab.shape != (3, self.label_size, self.label_size):
            raise InputError(f"labels: expected (3, L, L), got {lab.shape}")
        delay = float(self.spec.get("delay_s", 0.0))
        if delay:
            time.sleep(delay)
        rgb = self._lut[lab[1]]
        rep = self.render_size // self.label_size
        return np.repeat(np.repeat(rgb, rep, axis=0), rep, axis=1).astype(np.float32)

    def _apply_program(self, labels: np.ndarray, program: dict | None, frame: int) -> np.ndarray:
        """Toy semantics of the edit format's ``replace`` op (code → code, on where its value ≥ 0.5);
        keyframes are evaluated with the edits module's own interpolation."""
        from vq_models.edits.program import parse_program

        out = labels.copy()
        if program is None:
            return out
        for edit, value in parse_program(program).values_at(frame):
            if edit.op == "replace" and "code" in edit.params and float(value) >= 0.5:  # type: ignore[arg-type]
                out[labels == int(edit.params["code"])] = int(edit.params["to"])
        return out

    def render_frame(
        self,
        frame: int,
        program: dict | None = None,
        *,
        feather: float = 8.0,
        mode: str = "identity",
        labels: np.ndarray | None = None,
    ) -> FrameRender:
        self._check(frame)
        base = self.label_map(frame)
        lab = self._apply_program(base if labels is None else np.asarray(labels, dtype=np.uint8), program, frame)
        changed = lab != base
        crop = self.render_window(np.stack([lab, lab, lab]))
        rep = self.render_size // self.label_size
        alpha_crop = np.repeat(np.repeat((lab > 0).astype(np.float32), rep, 0), rep, 1)
        if mode == "edit-only":
            alpha_crop *= np.repeat(np.repeat(changed.astype(np.float32), rep, 0), rep, 1)
        k = int(min(feather, 6.0))
        if k > 0:
            alpha_crop = cv2.blur(alpha_crop, (2 * k + 1, 2 * k + 1), borderType=cv2.BORDER_CONSTANT)
        x0, y0, size = (int(v) for v in self.spec["crop_box"])
        crop_p = cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)
        alpha_p = cv2.resize(alpha_crop, (size, size), interpolation=cv2.INTER_NEAREST)
        plate = self.plate_info
        dx, dy, dw, dh = (int(v) for v in plate["data_window"])
        rgba = np.zeros((dh, dw, 4), dtype=np.float32)
        lin = _srgb_to_linear(crop_p) if plate["colorspace"] != "sRGB" else crop_p
        # paste the box (plate coordinates) into the data window, clipped
        bx0, by0 = max(x0, dx), max(y0, dy)
        bx1, by1 = min(x0 + size, dx + dw), min(y0 + size, dy + dh)
        if bx1 > bx0 and by1 > by0:
            a = alpha_p[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
            rgba[by0 - dy : by1 - dy, bx0 - dx : bx1 - dx, :3] = lin[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] * a[..., None]
            rgba[by0 - dy : by1 - dy, bx0 - dx : bx1 - dx, 3] = a
        return FrameRender(
            rgba=rgba,
            alpha=rgba[..., 3].copy(),
            changed=changed,
            data_window=(dx, dy, dw, dh),
            display_window=tuple(int(v) for v in plate["display_window"]),  # type: ignore[arg-type]
            colorspace=str(plate["colorspace"]),
        )

    def exemplar_png(self, frame: int | None = None) -> bytes:
        f = self.frames[0] if frame is None else frame
        lab = self.label_map(f)
        rgb = self.render_window(np.stack([lab, lab, lab]))
        ok, buf = cv2.imencode(".png", (rgb[..., ::-1] * 255).astype(np.uint8))
        assert ok
        return buf.tobytes()

    def get_prior(self) -> dict:
        return {"version": 1, "num_codes": self.num_codes, "segments": {k: list(v) for k, v in self._prior.items()}}

    def set_prior(self, prior: dict) -> None:
        from vq_models.edits.prior import validate_prior

        checked = validate_prior(prior)
        if checked.num_codes != self.num_codes:
            raise VQEditError(f"prior: num_codes {checked.num_codes}, the model has {self.num_codes}")
        self._prior = {k: list(v) for k, v in prior["segments"].items()}

    def memory_bytes(self) -> int:
        return int(self.spec.get("memory_bytes", 0))


load = FakeShotModel.load
