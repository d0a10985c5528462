"""The face-part vocabulary shared by the synthetic ground truth and the artist prior.

One list so a part renamed in one place cannot silently stop matching in the other: the synthetic shot's
label ids (parts.json) and the segment names the edit operations understand are the same names.
"""

from __future__ import annotations

#: Ground-truth part ids of synthetic shots, in id order (background is 0).
FACE_PARTS: tuple[str, ...] = (
    "background",
    "hair",
    "skin",
    "brows",
    "eyelids",
    "eye_whites",
    "irises",
    "pupils",
    "nose",
    "upper_lip",
    "lower_lip",
    "mouth_interior",
    "upper_teeth",
    "lower_teeth",
    "tongue",
)
