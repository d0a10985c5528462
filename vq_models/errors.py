"""User-facing errors.

Anything a user can cause (a missing file, a malformed sequence, a bad JSON program) raises a
:class:`VQEditError` with one line that names the thing and the problem. The CLI prints that line and
exits non-zero; it never shows a traceback for these. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class VQEditError(Exception):
    """An error the user can fix; its message is shown as-is, on one line."""


class InputError(VQEditError):
    """Bad input: a file, a sequence, a config or a program that cannot be used."""


class ImageIOError(InputError):
    """An image or video could not be read or written."""
