"""Per-frame face tracking (landmarks, contours, mesh) in plate pixels.

The file format lives in :mod:`vq_models.tracking.schema`; synthetic shots and real trackers both write
it, so every later stage (crops, masks, the local face overlay) reads one thing.
"""

from vq_models.tracking.schema import (
    CONTOUR_NAMES,
    TRACKING_VERSION,
    FrameTrack,
    Tracking,
    load_tracking,
    save_tracking,
    tracking_to_json,
    validate_tracking,
)

__all__ = [
    "CONTOUR_NAMES",
    "TRACKING_VERSION",
    "FrameTrack",
    "Tracking",
    "load_tracking",
    "save_tracking",
    "tracking_to_json",
    "validate_tracking",
]
