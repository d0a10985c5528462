# Run by Nuke at start-up (GUI and `nuke -t`) for every NUKE_PATH folder: make vqedit importable and the
# VQFaceEdit gizmo findable. Kept free of UI calls so farm (terminal) sessions load it too.
import os
import sys

import nuke

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
nuke.pluginAddPath(os.path.join(_REPO, "gizmos"))
