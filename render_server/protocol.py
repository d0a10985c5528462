"""Server-side request checks on top of the wire codec.

The codec itself (packing, arrays, error codes, request/reply framing) has one owner,
:mod:`host_plugin.protocol`, shared with every host. What is here needs the server's view of things:
model names (folders under ``--models``) and label maps checked against a model's codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from host_plugin.protocol import BAD_LABELS, BAD_REQUEST, MAX_NAME_LEN, ProtocolError, get_field


def model_name(fields: Mapping[str, Any], field: str = "model") -> str:
    """The ``model`` field (or another naming a shot, e.g. ``driver``): a plain directory name (no path
    separators, no dot-dot)."""
    name = get_field(fields, field, str)
    if not name or len(name) > MAX_NAME_LEN or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ProtocolError(BAD_REQUEST, f"{field}: expected a shot name (a folder in the server's --models DIR)")
    return name


def check_labels(labels: np.ndarray, num_codes: int, label_size: int, field: str, stacked: bool) -> np.ndarray:
    """Check a label map (or a 3-frame window) against the model: shape (3?, L, L), codes < K."""
    want = (3, label_size, label_size) if stacked else (label_size, label_size)
    if labels.shape != want:
        raise ProtocolError(BAD_LABELS, f"{field}: shape {list(labels.shape)}, the model needs {list(want)}")
    top = int(labels.max()) if labels.size else 0
    if top >= num_codes:
        raise ProtocolError(BAD_LABELS, f"{field}: code {top} out of range, the model has {num_codes} codes")
    return labels
