"""ImageNet feature backbones for LPIPS, built without torchvision.

Why: torchvision does not import beside this CPU torch build, yet LPIPS needs AlexNet / VGG16 conv
features with ImageNet weights. These are the same layers as ``torchvision.models.alexnet().features``
and ``vgg16().features``, in an ``nn.Sequential`` with identical indices, so torchvision's published
weight files (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``; keys ``features.N.weight/bias``)
load unchanged. The ``classifier.*`` half of those files is ignored.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vq_models.errors import InputError

HUB_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
# index of the ReLU after which LPIPS taps each of its five feature levels
TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}

_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def alexnet_features() -> nn.Sequential:
    """torchvision AlexNet ``features`` (conv indices 0, 3, 6, 8, 10)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
    )


def vgg16_features() -> nn.Sequential:
    """torchvision VGG16 (config D, no batch norm) ``features``."""
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def build_features(net: str) -> nn.Sequential:
    if net == "alex":
        return alexnet_features()
    if net == "vgg":
        return vgg16_features()
    raise InputError(f"perceptual net {net!r}: unknown (choose 'alex' or 'vgg')")


def find_backbone_weights(net: str, explicit: str | Path | None = None) -> Path | None:
    """Locate torchvision-format ImageNet weights for ``net``.

    Order: ``explicit`` (must exist — a path the user named is never silently skipped), the torch hub
    cache (``$TORCH_HOME/hub/checkpoints`` or ``~/.cache/torch/hub/checkpoints``), then the vqedit
    weights folder (``$VQEDIT_WEIGHTS``). None when nothing is found.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InputError(f"{path}: backbone weights not found")
        return path
    from vq_models.nets.checkpoints import weights_dir

    name = HUB_FILES[net]
    for folder in (Path(torch.hub.get_dir()) / "checkpoints", weights_dir()):
        if (folder / name).is_file():
            return folder / name
    return None


def load_features(net: str, path: str | Path) -> nn.Sequential:
    """Backbone ``features`` with weights from a torchvision state dict (frozen, eval mode)."""
    from vq_models.nets.checkpoints import check_state_dict, read_checkpoint

    state = read_checkpoint(path)
    if not isinstance(state, dict):
        raise InputError(f"{path}: expected a torchvision state dict, got {type(state).__name__}")
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    model = build_features(net)
    check_state_dict(model, feats, f"{path}: features", f"torchvision {'AlexNet' if net == 'alex' else 'VGG16'}")
    model.load_state_dict(feats, strict=True)
    model.eval().requires_grad_(False)
    return model
