"""Nuke integration: put this folder on NUKE_PATH (docs/nuke.md). ``init.py``/``menu.py`` are run by Nuke
itself; ``vqedit_nuke`` is the adapter the VQFaceEdit gizmo's buttons call."""
