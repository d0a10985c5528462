"""A trained Stage I model: the inversion encoder + StyleGAN2 generator + the learnt codebook.

Why a separate module from the trainer: the runtime, the render server and ``vqedit labels`` only need
to *use* Stage I (read the labels it wrote, or label a frame it never saw), and must not pull in losses,
optimisers or discriminators. The trainer builds the same :class:`InversionNet` so training and
inference run one forward path: ĉ → encoder → W+ → generator → tapped features → quantizer → codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vq_models.errors import InputError
from vq_models.io.images import read_label_map
from vq_models.io.jsonfile import read_json
from vq_models.nets.e4e import Encoder4Editing
from vq_models.nets.light_encoder import LightEncoder
from vq_models.nets.stylegan2 import Generator
from vq_models.quantizer import VectorQuantizer
from vq_models.shot import FRAME_NAME, LABEL_DIR, META_FILE
from vq_models.train.checkpoint import load_weights, split_weights
from vq_models.vq_input import CONTEXT_SIGMA, build_vq_input

__all__ = ["InversionNet", "Stage1Model", "build_encoder", "build_generator", "to_network_tensor"]

MODEL_FILE = "model.safetensors"
CODEBOOK_FILE = "codebook.safetensors"
LABEL_NAME = FRAME_NAME  # the shot layout's (shot.py), named for Stage I's label maps


class InversionNet(nn.Module):
    """f(ĉ) = latent_avg + encoder(ĉ) ∈ W+, then G(w) with feature taps (paper Eq. 1 and r_i = G(f(ĉ_i))).

    One module so DistributedDataParallel sees a single ``forward`` that touches every trainable
    parameter (the generator's own ``synthesize`` would bypass DDP's gradient hooks).
    """

    latent_avg: Tensor

    def __init__(self, encoder: nn.Module, generator: nn.Module, latent_avg: Tensor,
                 feature_resolutions: tuple[int, ...], vq_multipliers: list[float] | None = None,
                 vq_rgb_multiplier: float = 0.0, vq_context_multiplier: float = 0.0,
                 vq_context_sigma: float = CONTEXT_SIGMA, vq_region_multiplier: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.generator = generator
        avg = latent_avg.detach().float().reshape(-1, generator.style_dim)
        if avg.shape[0] == 1:
            avg = avg.expand(generator.n_latent, -1)
        if avg.shape[0] != generator.n_latent:
            raise InputError(f"latent_avg has {avg.shape[0]} rows, generator has {generator.n_latent} W+ layers")
        self.register_buffer("latent_avg", avg.clone().contiguous())
        self.feature_resolutions = tuple(int(r) for r in feature_resolutions)
        # per-tap scale of X_VQ (vq_input.scale_multipliers); plain floats, not weights: meta.json keeps them
        self.vq_multipliers = [float(m) for m in vq_multipliers] if vq_multipliers else None
        if self.vq_multipliers is not None and len(self.vq_multipliers) != len(self.feature_resolutions):
            raise InputError(f"{len(self.vq_multipliers)} VQ scale multipliers for {len(self.feature_resolutions)} taps")
        # the generator's RGB output as one more X_VQ tap (vq_input.rgb_multiplier; 0 = features only, the paper)
        self.vq_rgb_multiplier = float(vq_rgb_multiplier)
        # the colour around each pixel as one more tap (vq_input.context_colour; 0 = off, the paper);
        # sigma is a fraction of the label width, so it covers the same part of the face at any label size
        self.vq_context_multiplier = float(vq_context_multiplier)
        self.vq_context_sigma = float(vq_context_sigma)
        # the ROI's eye and mouth parts as two more taps (vq_input.region_channels; 0 = off, the paper)
        self.vq_region_multiplier = float(vq_region_multiplier)

    @property
    def needs_roi(self) -> bool:
        """Whether X_VQ reads the ROI mask (the region tap is on): labelling a new image then needs one."""
        return self.vq_region_multiplier > 0

    @property
    def vq_dim(self) -> int:
        """Channels of X_VQ: the tapped layers' widths, plus 3 with the RGB tap, 3 with the context tap and 2
        with the region tap."""
        return (sum(self.generator.channels[r] for r in self.feature_resolutions)
                + (3 if self.vq_rgb_multiplier > 0 else 0) + (3 if self.vq_context_multiplier > 0 else 0)
                + (2 if self.needs_roi else 0))

    def vq_input(self, feats: dict[int, Tensor], label_size: int, fg: Tensor | None, image: Tensor | None = None,
                 roi: Tensor | None = None) -> Tensor:
        """X_VQ for this net's taps and scale multipliers (one definition for training and inference);
        ``image`` is the generator's output, used when the RGB or context tap is on; ``roi`` the ROI mask
        (B, 1, S, S), used when the region tap is on."""
        if self.needs_roi and roi is None:
            raise InputError("this Stage I model reads the ROI mask (its region tap is on); none was given")
        return build_vq_input(feats, self.feature_resolutions, label_size, fg, self.vq_multipliers,
                              image=image, image_multiplier=self.vq_rgb_multiplier,
                              context_multiplier=self.vq_context_multiplier, context_sigma=self.vq_context_sigma,
                              roi=roi, region_multiplier=self.vq_region_multiplier)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[int, Tensor], Tensor]:
        """x: (B, 3, S, S) in [-1, 1] → (image (B, 3, size, size), {res: feature map}, w (B, n_latent, d))."""
        noise = None
        if getattr(self.encoder, "noise_maps", False):
            offsets, maps = self.encoder.forward_with_noise(x)
            noise = self._generator_noise(maps)
        else:
            offsets = self.encoder(x)
        w = self.latent_avg.unsqueeze(0) + offsets
        img, feats = self.generator.synthesize(w, feature_resolutions=self.feature_resolutions, noise_mode="const",
                                               noise=noise)
        return img, feats, w

    def _generator_noise(self, maps: dict[int, Tensor]) -> list[Tensor | None]:
        """Encoder maps {r: (B, 2, r', r')} → the generator's per-layer noise list (layer 1 + 2k and 2 + 2k
        run at 8·2^k); resolutions the encoder lacks keep the stored noise (None)."""
        out: list[Tensor | None] = [None] * self.generator.num_layers
        for layer in range(1, self.generator.num_layers):
            res = 2 ** ((layer + 5) // 2)
            if res in maps:
                out[layer] = maps[res][:, (layer - 1) % 2 : (layer - 1) % 2 + 1]
        return out


def build_generator(gen_config: dict[str, Any]) -> nn.Module:
    cfg = dict(gen_config)
    if "channels" in cfg and cfg["channels"] is not None:
        cfg["channels"] = {int(k): int(v) for k, v in cfg["channels"].items()}
    return Generator(**cfg)


class SpatialEncoder(nn.Module):
    """A small from-scratch inversion encoder that keeps *where* things are: strided convs down to 8x8, then
    the flattened 8x8 map → W+ offsets from ``latent_avg`` (zero-initialised output, so it starts at the
    average face).

    Why, next to :class:`~vq_models.nets.light_encoder.LightEncoder`: that encoder pools its maps globally,
    so gaze, eyelid and mouth opening must be re-discovered through position-blind statistics; on a
    CPU budget of a few thousand steps its reconstructions stay the average face and the quantizer then
    only sees position patches. Flattening keeps the layout, so per-frame changes reach W+ within a few
    hundred steps. e4e does the same with its map2style blocks (strided convs down to 1x1).
    """

    def __init__(self, size: int, n_latent: int, style_dim: int, channels: int = 16, bottleneck: int = 16,
                 hidden: int = 256, noise_maps: bool = False):
        super().__init__()
        if size < 16 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 16, got {size}")
        self.size, self.n_latent, self.style_dim = size, n_latent, style_dim
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), nn.LeakyReLU(0.2)]
        c, res, k = channels, size, 0
        stage_channels = {size: channels}  # encoder resolution -> channels of its last map there
        while res > 8:
            cout = min(channels * 2 ** (k + 1), channels * 4)
            layers += [nn.Conv2d(c, cout, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 1, 1), nn.LeakyReLU(0.2)]
            c, res, k = cout, res // 2, k + 1
            stage_channels[res] = cout
        self._num_stage_layers = len(layers)
        layers += [nn.Conv2d(c, bottleneck, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(bottleneck * 64, hidden), nn.LeakyReLU(0.2))
        self.out = nn.Linear(hidden, n_latent * style_dim)
        # optional per-layer noise maps for the generator (see forward_with_noise): two per resolution, as
        # StyleGAN2 has two noise inputs per resolution from 8² up (the 4² layer keeps its stored noise)
        self.noise_maps = bool(noise_maps)
        self.noise_resolutions = sorted(stage_channels) if self.noise_maps else []
        self.noise_heads = nn.ModuleDict(
            {str(r): nn.Conv2d(stage_channels[r], 2, 3, 1, 1) for r in self.noise_resolutions})
        # He init for leaky ReLU and zero biases: PyTorch's default init shrinks the signal at every layer
        # until the biases dominate, and then every frame maps to the same W+ (measured: across-frame
        # feature std 1e-4 of the mean after nine default-initialised layers; the encoder never recovered)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_noise(x)[0]

    def forward_with_noise(self, x: Tensor) -> tuple[Tensor, dict[int, Tensor]]:
        """W+ offsets (B, n_latent, style_dim) and, with ``noise_maps``, {resolution: (B, 2, r, r)} maps.

        Why noise maps: a from-scratch generator driven by one W+ vector per frame renders small parts
        (a 3-pixel pupil, the gap between teeth) blurred and misplaced within a CPU budget, and the
        quantizer can only separate what the generator's features resolve. StyleGAN2's noise inputs are
        its per-pixel inputs; predicting them from the frame (as Image2StyleGAN++ optimises them per
        image) gives each resolution the layout directly. The paper's pretrained path keeps W+ only.
        """
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        maps: dict[int, Tensor] = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if self.noise_maps and i < self._num_stage_layers and isinstance(layer, nn.LeakyReLU):
                maps[int(h.shape[-1])] = h
        w = self.out(self.head(h)).view(x.shape[0], self.n_latent, self.style_dim)
        return w, {r: self.noise_heads[str(r)](maps[r]) for r in self.noise_resolutions}


def build_encoder(enc_config: dict[str, Any]) -> nn.Module:
    """``{"kind": "light" | "spatial", "size", "n_latent", "style_dim", "channels"}`` or
    ``{"kind": "e4e", "size", "input_size"}``."""
    kind = enc_config.get("kind")
    if kind == "spatial":
        return SpatialEncoder(int(enc_config["size"]), int(enc_config["n_latent"]), int(enc_config["style_dim"]),
                              channels=int(enc_config["channels"]), noise_maps=bool(enc_config.get("noise_maps", False)))
    if kind == "light":
        return LightEncoder(int(enc_config["size"]), int(enc_config["n_latent"]), int(enc_config["style_dim"]),
                            channels=int(enc_config["channels"]))
    if kind == "e4e":
        return Encoder4Editing(int(enc_config["size"]), int(enc_config["input_size"]))
    raise InputError(f"stage1 meta.json: encoder.kind {kind!r} unknown (expected 'light', 'spatial' or 'e4e')")


def resize_to_input(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (S, S[, C]) at ``size``² the way Stage I's frames are resized (area filter shrinking,
    bilinear growing): one rule for the image, its masks and ``ShotFrames``' copies of them."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def stored_8bit(image: np.ndarray) -> np.ndarray:
    """``image`` in [0, 1] as the uint8 Stage I keeps its frames and masks in (``ShotFrames``); labelling a
    new image rounds its masks the same way, so a training frame gives its stored labels again."""
    return np.clip(np.asarray(image, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_network_tensor(rgb: np.ndarray, fg_mask: np.ndarray | None, size: int) -> tuple[Tensor, Tensor]:
    """sRGB float (S, S, 3) [0, 1] + mask (S, S) → foreground-masked (1, 3, size, size) in [-1, 1] and the
    (1, 1, size, size) mask. Background is black before the [-1, 1] shift, as the paper masks c and ĉ."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(f"image must be (H, W, 3), got shape {rgb.shape}")
    rgb = rgb[..., :3]
    mask = np.ones(rgb.shape[:2], np.float32) if fg_mask is None else np.asarray(fg_mask, dtype=np.float32)
    if mask.shape != rgb.shape[:2]:
        raise InputError(f"fg_mask shape {mask.shape} does not match image {rgb.shape[:2]}")
    rgb, mask = resize_to_input(rgb, size), resize_to_input(mask, size)
    m = torch.from_numpy(np.clip(mask, 0, 1)).float()[None, None]
    x = torch.from_numpy(np.clip(rgb, 0, 1)).float().permute(2, 0, 1)[None]
    return (x * m) * 2.0 - 1.0, m


def roi_tensor(roi_mask: np.ndarray, image_shape: tuple[int, ...], size: int) -> Tensor:
    """A crop's ROI mask (S, S) as the (1, 1, size, size) tensor training saw for it: resized as
    :func:`to_network_tensor` resizes the image and kept to 8 bits as ``ShotFrames`` stores it, so a training
    frame labelled again gives its stored labels (an ROI edge one level off can flip a near-tied code)."""
    roi = np.asarray(roi_mask, dtype=np.float32)
    if roi.shape != tuple(image_shape):
        raise InputError(f"roi_mask shape {roi.shape} does not match image {tuple(image_shape)}")
    roi = stored_8bit(resize_to_input(roi, size)).astype(np.float32) / 255.0
    return torch.from_numpy(roi)[None, None]


def read_meta(stage1_dir: Path) -> dict[str, Any]:
    path = stage1_dir / META_FILE
    if not path.is_file():
        raise InputError(f"{stage1_dir}: no trained Stage I model (missing {META_FILE}; run `vqedit train SHOT --stage 1`)")
    return read_json(path)


class Stage1Model:
    """Load a trained Stage I directory and produce label maps (uint8 codes, crop space, label_size²)."""

    def __init__(self, stage1_dir: Path, meta: dict[str, Any], net: InversionNet | None,
                 quantizer: VectorQuantizer, device: torch.device):
        self.stage1_dir = stage1_dir
        self.meta = meta
        self._net = net
        self.quantizer = quantizer
        self.device = device
        self._cache: dict[int, np.ndarray] = {}

    @classmethod
    def load(cls, stage1_dir: str | Path, device: str | torch.device = "cpu", load_networks: bool = True) -> Stage1Model:
        """Read meta.json, the codebook and (unless ``load_networks=False``) the encoder + generator."""
        stage1_dir = Path(stage1_dir)
        meta = read_meta(stage1_dir)
        dev = torch.device(device)
        try:
            vq = VectorQuantizer(num_codes=int(meta["num_codes"]), dim=int(meta["code_dim"]))
        except KeyError as exc:
            raise InputError(f"{stage1_dir / META_FILE}: missing key {exc.args[0]!r}") from None
        book = load_weights(stage1_dir / CODEBOOK_FILE)
        try:
            vq.load_state_dict(book)
        except RuntimeError as exc:
            raise InputError(f"{stage1_dir / CODEBOOK_FILE}: does not fit meta.json ({str(exc).splitlines()[0]})") from None
        vq.to(dev).eval()
        net = None
        if load_networks:
            flat = load_weights(stage1_dir / MODEL_FILE)
            gen = build_generator(meta["generator"])
            enc = build_encoder(meta["encoder"])
            if "latent_avg" not in flat:
                raise InputError(f"{stage1_dir / MODEL_FILE}: no latent_avg tensor")
            try:
                gen.load_state_dict(split_weights(flat, "generator"))
                enc.load_state_dict(split_weights(flat, "encoder"))
            except RuntimeError as exc:
                raise InputError(f"{stage1_dir / MODEL_FILE}: does not fit meta.json ({str(exc).splitlines()[0]})") from None
            net = InversionNet(enc, gen, flat["latent_avg"], tuple(meta["resolutions"]),
                               meta.get("vq_scale_multipliers"), float(meta.get("vq_rgb_multiplier", 0.0)),
                               float(meta.get("vq_context_multiplier", 0.0)),
                               float(meta.get("vq_context_sigma", CONTEXT_SIGMA)),
                               float(meta.get("vq_region_multiplier", 0.0))).to(dev).eval()
            if net.vq_dim != vq.dim:
                raise InputError(f"{stage1_dir / META_FILE}: code_dim {vq.dim} does not fit the taps ({net.vq_dim} channels)")
        return cls(stage1_dir, meta, net, vq, dev)

    # --- description -------------------------------------------------------------------------------
    @property
    def net(self) -> InversionNet:
        """Encoder + generator + quantizer taps: what ``vqedit recluster`` and the Stage I sweep benchmark
        refit a codebook on."""
        if self._net is None:
            raise InputError(f"{self.stage1_dir}: Stage I model loaded without its networks")
        return self._net

    @property
    def backbone(self) -> str:
        """Which StyleGAN backbone the model inverts into: "embedded" or "pretrained" (meta.json files
        written before the rename call the key "prior", which now means only the artist prior)."""
        return str(self.meta.get("backbone", self.meta.get("prior", "")))

    @property
    def num_codes(self) -> int:
        return int(self.meta["num_codes"])

    @property
    def label_size(self) -> int:
        return int(self.meta["label_size"])

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def frames(self) -> list[int]:
        return [int(f) for f in self.meta.get("frames", [])]

    # --- labels --------------------------------------------------------------------------------------
    def label_path(self, frame: int) -> Path:
        return self.stage1_dir / LABEL_DIR / FRAME_NAME.format(int(frame))

    def label_map(self, frame: int) -> np.ndarray:
        """The label map Stage I wrote for a training frame: uint8 (label_size, label_size), cached."""
        frame = int(frame)
        if frame not in self._cache:
            path = self.label_path(frame)
            if not path.is_file():
                raise InputError(f"{path}: no Stage I labels for frame {frame}")
            self._cache[frame] = read_label_map(path)
        return self._cache[frame]

    @property
    def needs_roi(self) -> bool:
        """Whether labelling a new image needs its ROI mask (the region tap is on; meta.json says so, so
        this works without the networks)."""
        return float(self.meta.get("vq_region_multiplier", 0.0)) > 0

    @torch.no_grad()
    def features(self, rgb_crop: np.ndarray, fg_mask: np.ndarray | None = None,
                 roi_mask: np.ndarray | None = None) -> tuple[Tensor, Tensor]:
        """VQ input X_VQ (1, d, L, L) and the mask at input size, for one aligned crop. ``roi_mask`` (crop-sized,
        soft) is the crop's ROI, required when the region tap is on (:attr:`needs_roi`)."""
        if self._net is None:
            raise RuntimeError("Stage1Model was loaded with load_networks=False")
        x, m = to_network_tensor(rgb_crop, fg_mask, self.input_size)
        x, m = x.to(self.device), m.to(self.device)
        roi = None
        if roi_mask is not None:
            roi = roi_tensor(roi_mask, np.shape(rgb_crop)[:2], self.input_size).to(self.device)
        img, feats, _ = self._net(x)
        return self._net.vq_input(feats, self.label_size, m, img, roi), m

    @torch.no_grad()
    def labels_from_image(self, rgb_crop: np.ndarray, fg_mask: np.ndarray | None = None,
                          roi_mask: np.ndarray | None = None) -> np.ndarray:
        """Label a frame that was not in training: encoder → generator → quantizer. Returns uint8 (L, L).
        ``roi_mask`` as in :meth:`features`."""
        x, _ = self.features(rgb_crop, fg_mask, roi_mask)
        return self.quantizer.assign(x)[0].cpu().numpy().astype(np.uint8)

    @torch.no_grad()
    def reconstruct(self, rgb_crop: np.ndarray, fg_mask: np.ndarray | None = None) -> np.ndarray:
        """The inversion r = G(f(ĉ)) as sRGB float32 (input_size, input_size, 3) in [0, 1], for previews."""
        if self._net is None:
            raise RuntimeError("Stage1Model was loaded with load_networks=False")
        x, _ = to_network_tensor(rgb_crop, fg_mask, self.input_size)
        img, _, _ = self._net(x.to(self.device))
        img = F.interpolate(img, size=(self.input_size,) * 2, mode="area") if img.shape[-1] != self.input_size else img
        return ((img[0].permute(1, 2, 0).cpu().numpy() + 1.0) / 2.0).clip(0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# label maps between crop space (label_size²) and plate space
# --------------------------------------------------------------------------------------------------


def plate_to_label_matrix(plate_to_crop: np.ndarray, crop_size: int, label_size: int) -> np.ndarray:
    """2x3 affine from plate pixel centres to label-map pixel centres (the crop rescaled to label_size)."""
    s = label_size / float(crop_size)
    scale = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    full = np.vstack([np.asarray(plate_to_crop, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    return (scale @ full)[:2]


def labels_to_plate(labels: np.ndarray, plate_to_crop: np.ndarray, crop_size: int,
                    plate_size: tuple[int, int], outside: int = 255) -> np.ndarray:
    """Crop-space codes → plate-space uint8 (H, W): nearest-neighbour inverse warp, ``outside`` where a
    plate pixel falls outside the face crop. ``plate_size`` is (width, height)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    m = plate_to_label_matrix(plate_to_crop, crop_size, labels.shape[0])
    return cv2.warpAffine(labels, m, (int(plate_size[0]), int(plate_size[1])),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=int(outside))


def plate_labels_to_crop(plate_labels: np.ndarray, plate_to_crop: np.ndarray, crop_size: int,
                         label_size: int, outside: int = 255) -> np.ndarray:
    """Plate-space labels (e.g. ground truth) → crop space at label_size², nearest-neighbour."""
    src = np.ascontiguousarray(plate_labels, dtype=np.uint8)
    m = plate_to_label_matrix(plate_to_crop, crop_size, label_size)
    return cv2.warpAffine(src, m, (label_size, label_size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=int(outside))


def plate_size_of(meta: dict[str, Any], where: str) -> tuple[int, int]:
    """(width, height) of the plate from shot.json (``plate.width/height`` or the display window)."""
    plate = meta.get("plate") or {}
    if "width" in plate and "height" in plate:
        return int(plate["width"]), int(plate["height"])
    win = plate.get("display_window")
    if isinstance(win, list | tuple) and len(win) == 4:
        return int(win[2]), int(win[3])
    raise InputError(f"{where}: plate has no width/height or display_window")
