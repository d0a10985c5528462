"""The thin host side of vqedit: a render client, a host-agnostic edit node, the farm renderer and
host adapters (Nuke in ``host_plugin/nuke``, OpenFX notes in ``host_plugin/ofx``).

Nothing here needs a GPU or torch: hosts stay light and the render server does the model work.
"""

from host_plugin.client import RenderClient, RequestTimeout, ServerError, ServerUnavailable
from host_plugin.node import EditKnobs, EditNode, composite_over

__all__ = ["RenderClient", "RequestTimeout", "ServerError", "ServerUnavailable", "EditKnobs", "EditNode", "composite_over"]
