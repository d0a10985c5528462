"""User-facing errors, one definition for the whole of vqedit.

They live in the thin host package because a host (Nuke's own Python, a farm blade) must be able to
catch them without importing the model code; :mod:`vq_models.errors` re-exports them and adds its own
subclasses. Anything a user can cause raises a :class:`VQEditError` whose message is one line naming the
thing and the problem; the CLI and the hosts show that line, never a traceback.
"""

from __future__ import annotations


class VQEditError(Exception):
    """An error the user can fix; its message is shown as-is, on one line."""


class InputError(VQEditError):
    """Bad input: a file, a sequence, a config, a knob or a program that cannot be used."""
