"""Names shared by the hosts, the server and the models (one owner each, pure Python).

- :data:`RENDER_MODES`: what the alpha of a frame render covers: the whole face (``identity``) or only
  the pixels the edits changed (``edit-only``).
- :data:`PASSES`: what a frame ``render`` request can return: the premultiplied RGBA render, or the
  edited label map in the exemplar's colours over the plate (``labels``, what the artist paints against).
- :data:`VIEWS`: what a host node shows: the composite, the render pass, the labels pass, or the
  model's exemplar frame.
"""

from __future__ import annotations

RENDER_MODES = ("identity", "edit-only")
PASSES = ("render", "labels")
VIEWS = ("comp", "render", "labels", "exemplar")
