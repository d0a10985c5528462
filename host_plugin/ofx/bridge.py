"""The Python side of an OpenFX plug-in shell: parameter table and the render entry point.

An OFX C++ shell describes :data:`PARAMS` to the host, reads their values at the render time and calls
:func:`render` with the source clip's pixels. Everything else (requests, compositing) is the same
:class:`~host_plugin.node.EditNode` the Nuke gizmo and the farm use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_plugin.node import FACE_KNOBS, FILL_KNOBS, EditKnobs, EditNode, Plate

PARAMS: list[dict[str, Any]] = [
    {"name": "server", "type": "string", "default": "tcp://127.0.0.1:5555"},
    {"name": "model", "type": "string", "default": ""},
    {"name": "colorspace", "type": "string", "default": "lin_rec709"},
    {"name": "feather", "type": "double", "default": 8.0, "min": 0.0, "max": 64.0},
    {"name": "mix", "type": "double", "default": 1.0, "min": 0.0, "max": 1.0},
    {"name": "mode", "type": "choice", "default": "identity", "options": ["identity", "edit-only"]},
    *({"name": k, "type": "double", "default": neutral} for k, (_, neutral) in FACE_KNOBS.items()),
    *({"name": k, "type": "string", "default": ""} for k in FILL_KNOBS),
]

_NODES: dict[str, EditNode] = {}


def render(instance: str, params: dict[str, Any], time: float, src_rgba: np.ndarray, src_bounds: tuple[int, int, int, int]) -> np.ndarray:
    """kOfxImageEffectActionRender: ``src_rgba`` (H, W, 4) float32 over ``src_bounds`` (x1, y1, x2, y2)
    → the composite over the same bounds. ``params`` are the parameter values at ``time``."""
    x1, y1, x2, y2 = src_bounds
    node = _NODES.setdefault(instance, EditNode())
    node.knobs = EditKnobs(
        server=str(params["server"]), model=str(params["model"]), mode=str(params.get("mode", "identity")),
        face={**{k: float(params[k]) for k in FACE_KNOBS if k in params},
              **{k: str(params[k]) for k in FILL_KNOBS if k in params}},
        feather=float(params.get("feather", 8.0)), mix=float(params.get("mix", 1.0)),
    )
    window = (x1, y1, x2 - x1, y2 - y1)
    plate = Plate(np.asarray(src_rgba, np.float32), window, window, str(params.get("colorspace", "lin_rec709")))
    return node.evaluate(int(round(time)), plate).image
