"""Synthetic talking-face shots with per-pixel ground truth: vqedit's embedded default footage.

``performance(n, seed)`` gives per-frame :class:`FaceState`; ``render(state, size)`` draws one frame
(sRGB + labels + geometry); ``render_whatif(frame, edited_state)`` redraws only what an edit changes;
``write_synth_shot(out, ...)`` writes a whole shot (``vqedit synth``).
"""

from vq_models.synth.draw import SynthFrame, render, render_whatif
from vq_models.synth.face_model import PART_ID, PARTS, FaceGeometry, FaceState, Identity, face_geometry
from vq_models.synth.performance import WHATIFS, performance
from vq_models.synth.writer import SynthResult, write_synth_shot

__all__ = [
    "PARTS",
    "PART_ID",
    "WHATIFS",
    "FaceGeometry",
    "FaceState",
    "Identity",
    "SynthFrame",
    "SynthResult",
    "face_geometry",
    "performance",
    "render",
    "render_whatif",
    "write_synth_shot",
]
