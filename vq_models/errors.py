"""User-facing errors.

Anything a user can cause (a missing file, a malformed sequence, a bad JSON program) raises a
:class:`VQEditError` with one line that names the thing and the problem. The CLI prints that line and
exits non-zero; it never shows a traceback for these. Programming errors stay ordinary exceptions.
The base classes are defined in :mod:`host_plugin.errors` so a host catches them without the models.
"""

from __future__ import annotations

from host_plugin.errors import InputError, VQEditError  # one definition, shared with the thin host side

__all__ = ["VQEditError", "InputError", "ImageIOError"]


class ImageIOError(InputError):
    """An image or video could not be read or written."""
