"""Choosing one face among several and following it through the shot.

The face is chosen once — by index (faces ordered left to right in the first frame that has any) or by
a picked plate point (the face whose landmarks' bounding box contains it, else the nearest) — and then
followed frame to frame by proximity, so a second person walking through never swaps identities.
A frame whose nearest face is too far from the last position (more than ``max_jump`` face sizes) counts
as lost for this face rather than jumping to someone else.
"""

from __future__ import annotations

import numpy as np

from vq_models.errors import InputError
from vq_models.face.tracker import FaceDetection


class FaceSelector:
    def __init__(self, face_index: int = 0, pick: tuple[float, float] | None = None, max_jump: float = 0.5):
        if face_index < 0:
            raise InputError(f"--face {face_index}: must be 0 or more")
        self.face_index = int(face_index)
        self.pick = None if pick is None else np.asarray(pick, np.float64)
        self.max_jump = float(max_jump)
        self._last: FaceDetection | None = None
        self.faces_seen = 0

    def _initial(self, faces: list[FaceDetection], frame: int) -> FaceDetection:
        ordered = sorted(faces, key=lambda d: float(d.centre[0]))
        if self.pick is not None:
            def cost(d: FaceDetection) -> float:
                pts = d.landmarks478[:, :2]
                lo, hi = pts.min(0), pts.max(0)
                inside = bool(np.all(self.pick >= lo) and np.all(self.pick <= hi))
                return (0.0 if inside else 1e9) + float(np.hypot(*(d.centre - self.pick)))
            return min(ordered, key=cost)
        if self.face_index >= len(ordered):
            raise InputError(
                f"--face {self.face_index}: frame {frame} has only {len(ordered)} face(s) (faces are numbered "
                "from 0, left to right)"
            )
        return ordered[self.face_index]

    def choose(self, faces: list[FaceDetection], frame: int) -> FaceDetection | None:
        """The tracked face in this frame, or None when it is lost."""
        self.faces_seen = max(self.faces_seen, len(faces))
        if not faces:
            return None
        if self._last is None:
            chosen = self._initial(faces, frame)
        else:
            last = self._last
            chosen = min(faces, key=lambda d: float(np.hypot(*(d.centre - last.centre))))
            if np.hypot(*(chosen.centre - last.centre)) > self.max_jump * last.size:
                return None
        self._last = chosen
        return chosen
