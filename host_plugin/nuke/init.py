# Run by Nuke at start-up (GUI and `nuke -t`) for every NUKE_PATH folder: make vqedit's host package importable
# and the VQFaceEdit gizmo findable. Kept free of UI calls so farm (terminal) sessions load it too.
# host_plugin is normally pip-installed into Nuke's Python (docs/nuke.md); a repository checkout works too.
import os
import sys

import nuke

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
try:
    import host_plugin  # noqa: F401 - installed with `pip install ./host_plugin`
except ImportError:
    if _REPO not in sys.path:
        sys.path.insert(0, _REPO)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
nuke.pluginAddPath(os.path.join(_REPO, "gizmos"))
