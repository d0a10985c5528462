"""The render request's expression-transfer fields: ``driver``, ``driver_frame``, ``driver_strength``,
``driver_neutral`` (docs/protocol.md).

A request naming a driver renders the target model's frame with the driver shot's expression at
``driver_frame`` (:class:`vq_models.transfer.ExpressionTransfer`); everything else in the request (program,
mode, feather, labels, paint, pass, format) applies as without it. The driver is any prepped shot folder
under ``--models`` (it needs tracking, not a trained model); the transfer onto a model is built once per
(driver, neutral) and kept with the model's cache entry, so it goes when the model is evicted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host_plugin.protocol import BAD_FRAME, BAD_REQUEST, ProtocolError, get_field
from render_server.models import Entry, ModelCache
from render_server.protocol import model_name
from vq_models.face.expression import RetargetOptions
from vq_models.runtime import LabelOverride
from vq_models.transfer import MAX_STRENGTH, ExpressionTransfer


def driver_override(
    cache: ModelCache, entry: Entry, fields: Mapping[str, Any], frame: int
) -> LabelOverride | None:
    """The labels ``frame`` renders from when the request names a driver (None when it does not). Call it
    under the model's lock: it labels new overlays with the model's Stage I."""
    if fields.get("driver") is None:
        return None
    name = model_name(fields, "driver")
    driver_frame = get_field(fields, "driver_frame", int)
    strength = float(get_field(fields, "driver_strength", (int, float), 1.0))
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise ProtocolError(BAD_REQUEST, f"driver_strength: {strength:g}, expected 0-{MAX_STRENGTH:g}")
    neutral = get_field(fields, "driver_neutral", int, None)
    driver = cache.driver(name)
    if driver_frame not in set(driver.frames):
        raise ProtocolError(
            BAD_FRAME,
            f"driver_frame: {driver_frame} is not in driver shot {name!r} "
            f"({driver.frames[0]}-{driver.frames[-1]})",
        )
    if neutral is not None and neutral not in set(driver.frames):
        raise ProtocolError(
            BAD_FRAME,
            f"driver_neutral: {neutral} is not in driver shot {name!r} "
            f"({driver.frames[0]}-{driver.frames[-1]})",
        )
    key = (name, neutral)
    transfer = entry.transfers.get(key)
    if transfer is None or transfer.driver is not driver:
        transfer = entry.transfers[key] = ExpressionTransfer(
            entry.model, driver, RetargetOptions(driver_neutral=neutral)
        )
    return transfer.override(frame, driver_frame, strength)
