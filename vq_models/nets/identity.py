"""Identity loss L_sim: cosine distance between ArcFace (IR-SE50) embeddings, as in e4e / pSp.

Why: Stage I keeps the inverted face the same person. The embedding net is the InsightFace IR-SE50
(``model_ir_se50.pth``; keys ``input_layer.*``, ``body.N.*``, ``output_layer.*``) in the layout of
TreB1eN / e4e's ``Backbone(112, 50, 'ir_se')``. Without those weights the loss is switched off —
:meth:`IdentityLoss.from_path` returns None and the trainer records that — because an identity loss
from an untrained network would push the encoder in arbitrary directions while looking like it works.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor, nn
from torch.nn import functional as F

from vq_models.errors import InputError
from vq_models.nets.e4e import make_input_layer, make_ir_se50_body

log = logging.getLogger(__name__)


class ArcFaceIRSE50(nn.Module):
    """IR-SE50 face-embedding network for 112² crops; returns L2-normalised 512-d embeddings.

    ``width=64`` is the published network; smaller widths keep the key layout (tests).
    """

    def __init__(self, width: int = 64, embedding: int = 512, drop_ratio: float = 0.6):
        super().__init__()
        self.width = width
        top = width * 8
        self.input_layer = make_input_layer(width)
        self.body = make_ir_se50_body(width)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(top), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(top * 7 * 7, embedding), nn.BatchNorm1d(embedding, affine=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


class IdentityLoss(nn.Module):
    """``forward(pred, target) -> mean(1 - cos(emb(pred), emb(target)))`` for images in [-1, 1].

    Inputs of any size are resized to 256² and cropped to e4e's face box (rows 35:223, cols 32:220 of
    an FFHQ-aligned 256² crop), then pooled to 112² — the region ArcFace was trained on.
    """

    def __init__(self, facenet: ArcFaceIRSE50):
        super().__init__()
        self.facenet = facenet.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> IdentityLoss:
        return super().train(False)  # frozen: batch-norm statistics and dropout stay in eval mode

    @staticmethod
    def from_path(path: str | Path | None) -> IdentityLoss | None:
        """Load ``model_ir_se50.pth``; None (loss off, logged) when ``path`` is None or missing."""
        from vq_models.nets.checkpoints import materialize, read_checkpoint

        if path is None or not Path(path).expanduser().is_file():
            log.warning("identity loss off: ArcFace IR-SE50 weights %s", "not configured" if path is None
                        else f"not found at {path}")
            return None
        path = Path(path).expanduser()
        state = read_checkpoint(path)
        if not isinstance(state, dict) or not isinstance(state.get("input_layer.0.weight"), Tensor):
            raise InputError(f"{path}: not an IR-SE50 ArcFace state dict (no input_layer.0.weight)")
        width = int(state["input_layer.0.weight"].shape[0])
        net = materialize(lambda: ArcFaceIRSE50(width), state, str(path),
                          "an ArcFace IR-SE50 (model_ir_se50.pth layout)")
        return IdentityLoss(net)

    def embed(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (256, 256):
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        x = x[:, :, 35:223, 32:220]
        return self.facenet(F.adaptive_avg_pool2d(x, (112, 112)))

    def similarity(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image cosine similarity (B,); the target embedding is treated as a constant."""
        return (self.embed(pred) * self.embed(target).detach()).sum(1)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return (1 - self.similarity(pred, target)).mean()
