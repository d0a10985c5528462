"""The thin host side of vqedit: a render client, a host-agnostic edit node, the farm renderer and
host adapters (Nuke in ``host_plugin/nuke``, OpenFX in ``host_plugin/ofx``).

Installable on its own (``pip install ./host_plugin``: pyzmq and msgpack, numpy where pixels pass through
Python) on Python 3.9-3.13: nothing here imports torch, OpenImageIO, OpenCV or the model code. The names
below are imported on first use, so ``import host_plugin.errors`` (which the models do) stays free of
pyzmq.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RenderClient": "host_plugin.client",
    "RequestTimeout": "host_plugin.client",
    "ServerError": "host_plugin.client",
    "ServerUnavailable": "host_plugin.client",
    "EditKnobs": "host_plugin.node",
    "EditNode": "host_plugin.node",
    "PaintMatte": "host_plugin.node",
    "composite_over": "host_plugin.node",
    "VQEditError": "host_plugin.errors",
    "InputError": "host_plugin.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'host_plugin' has no attribute {name!r}")
