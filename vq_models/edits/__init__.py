"""Label-map editing: artist priors, keyframed edit programs and the operations they run.

Everything here is a pure function on uint8 label maps (crop space), shared by ``vqedit render``, the
render server and the host plugin, so an edit looks the same wherever it is evaluated.
"""

from vq_models.edits.ops import pick_code
from vq_models.edits.prior import (
    STANDARD_SEGMENTS,
    Prior,
    load_prior,
    propose_prior,
    rasterize_regions,
    save_prior,
    validate_prior,
)
from vq_models.edits.program import (
    Edit,
    EditProgram,
    apply_edit,
    apply_program,
    parse_program,
    validate_program,
)
from vq_models.edits.spec import FrameContext

__all__ = [
    "STANDARD_SEGMENTS",
    "Edit",
    "EditProgram",
    "FrameContext",
    "Prior",
    "apply_edit",
    "apply_program",
    "load_prior",
    "parse_program",
    "pick_code",
    "propose_prior",
    "rasterize_regions",
    "save_prior",
    "validate_prior",
    "validate_program",
]
