"""One home for measurement: what every acceptance figure, the demo's results and ``vqedit eval`` compute.

- :mod:`.programs`: which ops a prior supports, and the constant program each synthetic what-if measures;
- :mod:`.whatif`: edits against the synthetic what-if frames, through the host node or :class:`InProcessNode`;
- :mod:`.checks`: held-out reconstruction against bounds, and locality (the plate bit for bit outside the alpha);
- :mod:`.plate`: what the compositor sees, at plate resolution, and the real clip's blinks and closed mouths
  as what-ifs;
- :mod:`.sheets`: contact-sheet building blocks.

The demo imports from here, never the reverse.
"""

from __future__ import annotations

from vq_models.evaluation.checks import locality, locality_of_files, reconstruction
from vq_models.evaluation.sheets import sheet_row, write_sheet, zoom_box
from vq_models.evaluation.whatif import (
    InProcessNode,
    NodeResult,
    box_psnr,
    finite,
    measure_edits,
    measure_whatifs,
    shot_facts,
)

__all__ = [
    "InProcessNode", "NodeResult", "box_psnr", "finite", "locality", "locality_of_files", "measure_edits",
    "measure_whatifs", "reconstruction", "sheet_row", "shot_facts", "write_sheet", "zoom_box",
]
