"""Built-in face tracker: MediaPipe Face Mesh (478 points with irises) and selfie segmentation.

This is the ONLY module that imports mediapipe, so the rest of vqedit depends on a small interface
(:class:`FaceTracker`, :class:`FaceDetection`) and a different tracker can replace it. mediapipe 0.10.21
ships its models inside the wheel, so nothing is downloaded at run time (see docs/prep.md for the pin).

Coordinates are plate pixels with pixel *centres* on integers (OpenCV's convention, as in
:class:`vq_models.shot.CropTransform`): MediaPipe's normalised x maps to ``x * width - 0.5``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vq_models.errors import InputError


@dataclass(frozen=True)
class FaceDetection:
    """One face in one frame: the dense mesh in plate pixels (z in the same pixel units) and a score."""

    landmarks478: np.ndarray  # (478, 3) float64
    score: float

    @property
    def centre(self) -> np.ndarray:
        return self.landmarks478[:, :2].mean(0)

    @property
    def size(self) -> float:
        """Rough face size in pixels (bounding box diagonal), used to judge identity across frames."""
        pts = self.landmarks478[:, :2]
        return float(np.hypot(*(pts.max(0) - pts.min(0))))


def _import_solutions() -> Any:
    try:
        from mediapipe.python.solutions import face_mesh, selfie_segmentation
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError(
            f"built-in face tracker unavailable (mediapipe: {exc}); pass --tracking FILE instead"
        ) from None
    return face_mesh, selfie_segmentation


def _allow_denormals() -> None:
    """Turn flush-to-zero off before MediaPipe builds a graph.

    The trainers turn torch's flush-denormal mode on for CPU speed; MediaPipe's XNNPack delegate then fails
    to prepare ("failed to reshape runtime"), and its worker threads inherit the mode from the thread that
    creates them. Resetting it here keeps tracking working in a process that trained before.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)


class FaceTracker:
    """Tracks faces through a sequence of frames (video mode: each frame seeds the next).

    ``max_side`` downsizes large plates before tracking (MediaPipe works on a 192-pixel face crop anyway,
    so a 4K plate tracks as well at 1280 pixels and far faster); landmarks are scaled back to the plate.
    """

    def __init__(self, max_faces: int = 4, video: bool = True, max_side: int = 1280,
                 min_confidence: float = 0.5) -> None:
        self._modules = _import_solutions()
        self._mesh_args = dict(
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self._mesh: Any = None  # created on first use: a shot with external tracking only segments
        self._selfie: Any = None
        self.max_side = int(max_side)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        if self._selfie is not None:
            self._selfie.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _as_uint8(rgb: np.ndarray) -> np.ndarray:
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {arr.shape}")
        arr = arr[..., :3]
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(arr)

    def track(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Faces in one frame (sRGB uint8, or float in [0, 1]), in MediaPipe's order."""
        img = self._as_uint8(rgb)
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        th, tw = img.shape[:2]
        if self._mesh is None:
            _allow_denormals()
            self._mesh = self._modules[0].FaceMesh(**self._mesh_args)
        result = self._mesh.process(img)
        faces: list[FaceDetection] = []
        for lms in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
            # normalised -> pixels of the tracked image (centres on integers) -> plate pixels
            xy = pts[:, :2] * [tw, th] - 0.5
            xy = (xy + 0.5) / scale - 0.5
            z = pts[:, 2:] * tw / scale
            faces.append(FaceDetection(np.hstack([xy, z]), 1.0))
        return faces

    def person_mask(self, rgb: np.ndarray) -> np.ndarray:
        """Soft person-vs-background mask, float32 (H, W) in [0, 1] (hair and clothes count as person)."""
        img = self._as_uint8(rgb)
        if self._selfie is None:
            _allow_denormals()
            self._selfie = self._modules[1].SelfieSegmentation(model_selection=0)
        mask = self._selfie.process(img).segmentation_mask
        if mask is None:
            return np.zeros(img.shape[:2], np.float32)
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)


def mediapipe_contour_edges() -> dict[str, set[tuple[int, int]]]:
    """MediaPipe's own contour connection sets, keyed by our contour names (for checking topology.py)."""
    from mediapipe.python.solutions import face_mesh_connections as c

    return {
        "face_oval": set(c.FACEMESH_FACE_OVAL),
        "left_eye": set(c.FACEMESH_RIGHT_EYE),
        "right_eye": set(c.FACEMESH_LEFT_EYE),
        "left_brow": set(c.FACEMESH_RIGHT_EYEBROW),
        "right_brow": set(c.FACEMESH_LEFT_EYEBROW),
        "left_iris": set(c.FACEMESH_RIGHT_IRIS),
        "right_iris": set(c.FACEMESH_LEFT_IRIS),
        "lips": set(c.FACEMESH_LIPS),
    }
